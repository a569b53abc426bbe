"""The synthetic Favorita generator: layout, determinism, Kaggle's quirks and its own truth."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from cd4ml.errors import ConfigError
from cd4ml.problems.favorita import schema
from cd4ml.problems.favorita.generate import (
    SIZES,
    Cells,
    Process,
    SizeSpec,
    day_off_dates,
    easter_sunday,
    expected_sales,
    generate,
    simulate_day,
)

TINY = SIZES["tiny"]
ALL_FILES = (
    schema.TRAIN_FILE, schema.ITEMS_FILE, schema.STORES_FILE, schema.HOLIDAYS_FILE,
    schema.EXPECTED_FILE, schema.WORKSHOP_FILE,
)
BY_WEIGHT_FAMILIES = {"PRODUCE", "MEATS", "POULTRY", "SEAFOOD", "DELI"}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny")
    calls: list[int] = []
    summary = generate("tiny", out, seed=42, on_progress=calls.append)
    summary["progress_calls"] = calls
    return out, summary


@pytest.fixture(scope="module")
def train(tiny) -> list[dict[str, str]]:
    return read_rows(tiny[0] / schema.TRAIN_FILE)


@pytest.fixture(scope="module")
def items(tiny) -> dict[str, dict[str, str]]:
    return {row["item_nbr"]: row for row in read_rows(tiny[0] / schema.ITEMS_FILE)}


@pytest.fixture(scope="module")
def workshop(tiny) -> list[dict[str, str]]:
    return read_rows(tiny[0] / schema.WORKSHOP_FILE)


@pytest.fixture(scope="module")
def holidays(tiny) -> list[dict[str, str]]:
    return read_rows(tiny[0] / schema.HOLIDAYS_FILE)


# --- determinism ----------------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(tiny, tmp_path):
    generate("tiny", tmp_path, seed=42)
    for name in ALL_FILES:
        assert (tmp_path / name).read_bytes() == (tiny[0] / name).read_bytes(), name


def test_different_seed_gives_different_sales(tiny, tmp_path):
    generate("tiny", tmp_path, seed=7)
    assert (tmp_path / schema.TRAIN_FILE).read_bytes() != (tiny[0] / schema.TRAIN_FILE).read_bytes()


def test_unknown_size_raises_config_error_naming_the_allowed_sizes(tmp_path):
    with pytest.raises(ConfigError, match=r"tiny.*workshop.*full.*'huge'"):
        generate("huge", tmp_path)


def test_spec_without_the_workshop_products_is_rejected():
    with pytest.raises(ConfigError, match="n_items"):
        SizeSpec("custom", stores=(47,), n_items=2, start=date(2016, 1, 1), end=date(2016, 1, 2))


# --- layout ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "columns"),
    [
        (schema.TRAIN_FILE, schema.TRAIN_COLUMNS),
        (schema.ITEMS_FILE, schema.ITEMS_COLUMNS),
        (schema.STORES_FILE, schema.STORES_COLUMNS),
        (schema.HOLIDAYS_FILE, schema.HOLIDAYS_COLUMNS),
        (schema.EXPECTED_FILE, schema.EXPECTED_COLUMNS),
        (schema.WORKSHOP_FILE, schema.WORKSHOP_COLUMNS),
    ],
)
def test_header_is_exactly_the_schema(tiny, name, columns):
    with (tiny[0] / name).open(encoding="utf-8") as f:
        assert f.readline() == ",".join(columns) + "\n"


def test_summary_counts_rows_dates_stores_and_items(tiny, train, workshop):
    _, summary = tiny
    assert summary["size"] == "tiny"
    assert summary["rows"] == len(train)
    assert summary["workshop_rows"] == len(workshop)
    assert summary["dates"] == (TINY.end - TINY.start).days + 1 == 731
    assert (summary["stores"], summary["items"]) == (2, 20)


def test_progress_is_reported_after_each_date_and_ends_at_the_row_count(tiny):
    _, summary = tiny
    calls = summary["progress_calls"]
    assert len(calls) == summary["dates"]
    assert calls == sorted(calls) and calls[-1] == summary["rows"]


def test_train_rows_are_in_date_store_item_order_with_sequential_ids(train):
    assert [int(row["id"]) for row in train] == list(range(len(train)))
    keys = [(row["date"], int(row["store_nbr"]), int(row["item_nbr"])) for row in train]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {row["store_nbr"] for row in train} == {"44", "47"}
    assert train[0]["date"] == "2015-01-01" and train[-1]["date"] == "2016-12-31"


def test_zero_sales_are_omitted_and_returns_are_negative(train):
    sales = [float(row["unit_sales"]) for row in train]
    assert 0.0 not in sales
    assert any(value < 0 for value in sales)


def test_unit_items_are_integers_and_by_weight_items_have_three_decimals(train, items):
    for row in train:
        by_weight = items[row["item_nbr"]]["family"] in BY_WEIGHT_FAMILIES
        pattern = r"-?\d+\.\d{3}" if by_weight else r"-?\d+"
        assert re.fullmatch(pattern, row["unit_sales"]), row
    weights = [float(r["unit_sales"]) for r in train if items[r["item_nbr"]]["family"] == "PRODUCE"]
    assert weights and any(value != round(value) for value in weights)


def test_onpromotion_is_true_or_false_from_april_2014(train):
    assert {row["onpromotion"] for row in train} == {"True", "False"}


def test_onpromotion_is_empty_before_april_2014(tmp_path):
    spec = SizeSpec(
        "custom", stores=(44, 47), n_items=20, start=date(2014, 3, 25), end=date(2014, 4, 3)
    )
    summary = generate(spec, tmp_path)
    rows = read_rows(tmp_path / schema.TRAIN_FILE)
    assert summary["workshop_rows"] == 0 and not (tmp_path / schema.WORKSHOP_FILE).exists()
    before = {row["onpromotion"] for row in rows if row["date"] < "2014-04-01"}
    after = {row["onpromotion"] for row in rows if row["date"] >= "2014-04-01"}
    assert before == {""}
    assert after == {"True", "False"}


# --- items and stores -----------------------------------------------------------------------

def test_liquor_family_is_quoted_and_round_trips(tiny, items):
    text = (tiny[0] / schema.ITEMS_FILE).read_text(encoding="utf-8")
    assert ',"LIQUOR,WINE,BEER",' in text
    assert "LIQUOR,WINE,BEER" in {row["family"] for row in items.values()}


def test_items_include_the_workshop_products_as_in_the_workshop(items):
    assert set(schema.WORKSHOP_PRODUCTS) <= {int(nbr) for nbr in items}
    got = {nbr: tuple(items[str(nbr)][c] for c in ("family", "class", "perishable"))
           for nbr in schema.WORKSHOP_PRODUCTS}
    assert got == {
        99197: ("DAIRY", "2112", "1"),
        105574: ("DAIRY", "2124", "1"),
        1963838: ("CLEANING", "3034", "0"),
    }


def test_items_are_distinct_in_kaggle_range_with_perishable_families(items):
    assert len(items) == 20
    assert all(96995 <= int(nbr) <= 2134244 for nbr in items)
    perishable = {"PRODUCE", "MEATS", "POULTRY", "SEAFOOD", "DELI", "DAIRY", "BREAD/BAKERY", "EGGS"}
    for row in items.values():
        assert row["perishable"] == ("1" if row["family"] in perishable else "0"), row
    assert {row["family"] for row in items.values()} & BY_WEIGHT_FAMILIES


def test_store_47_is_a_big_quito_store(tiny):
    stores = {row["store_nbr"]: row for row in read_rows(tiny[0] / schema.STORES_FILE)}
    assert set(stores) == {"44", "47"}
    got = [stores["47"][c] for c in ("city", "state", "type", "cluster")]
    assert got == ["Quito", "Pichincha", "A", "14"]


# --- holidays -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("year", "easter"),
    [(2000, date(2000, 4, 23)), (2013, date(2013, 3, 31)), (2014, date(2014, 4, 20)),
     (2015, date(2015, 4, 5)), (2016, date(2016, 3, 27)), (2017, date(2017, 4, 16)),
     (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22))],
)
def test_easter_sunday_follows_the_gregorian_computus(year, easter):
    assert easter_sunday(year) == easter


def test_holidays_cover_the_range_with_easter_based_dates(holidays):
    national = {(row["date"], row["description"]) for row in holidays
                if row["type"] == "Holiday" and row["locale"] == "National"}
    assert ("2016-03-25", "Viernes Santo") in national
    assert {("2016-02-08", "Carnaval"), ("2016-02-09", "Carnaval")} <= national
    assert ("2015-01-01", "Primer dia del ano") in national
    assert ("2016-12-25", "Navidad") in national
    assert all(TINY.start.isoformat() <= row["date"] <= TINY.end.isoformat() for row in holidays)


def test_day_off_dates_are_exactly_the_days_off_the_file_describes(holidays):
    described = {
        date.fromisoformat(row["date"]) for row in holidays
        if row["locale"] == "National" and row["type"] in schema.DAY_OFF_TYPES
        and row["transferred"] == "False"
    }
    assert day_off_dates(TINY.start, TINY.end) == frozenset(described)


@pytest.mark.parametrize(
    ("day", "kind", "off"),
    [
        (date(2016, 8, 10), "Holiday", False),   # transferred
        (date(2016, 8, 12), "Transfer", True),
        (date(2016, 11, 4), "Bridge", True),
        (date(2016, 11, 12), "Work Day", False),
        (date(2016, 11, 25), "Event", False),    # Black Friday
        (date(2016, 12, 6), "Holiday", False),   # Fundacion de Quito: local, not national
        (date(2016, 5, 24), "Holiday", True),
    ],
)
def test_only_national_untransferred_day_off_types_are_days_off(holidays, day, kind, off):
    assert kind in {row["type"] for row in holidays if row["date"] == day.isoformat()}
    assert (day in day_off_dates(TINY.start, TINY.end)) is off


# --- the workshop file ----------------------------------------------------------------------

def test_workshop_file_holds_store_47_in_2016_with_the_train_ids(train, workshop):
    expected = [
        (row["id"], row["date"], row["item_nbr"], row["unit_sales"]) for row in train
        if row["store_nbr"] == "47" and row["date"].startswith("2016-")
    ]
    got = [(row["id"], row["date"], row["item_nbr"], row["unit_sales"]) for row in workshop]
    assert got == expected and len(got) > 1000


def test_workshop_calendar_columns_are_right(workshop, items):
    days_off = day_off_dates(date(2016, 1, 1), date(2016, 12, 31))
    for row in workshop:
        day = date.fromisoformat(row["date"])
        assert [int(row[c]) for c in ("year", "month", "day")] == [day.year, day.month, day.day]
        assert int(row["dayofweek"]) == day.weekday()
        assert int(row["days_til_end_of_data"]) == (date(2016, 12, 31) - day).days
        assert row["dayoff"] == str(day in days_off)
        item = items[row["item_nbr"]]
        assert all(row[c] == item[c] for c in ("family", "class", "perishable"))
    monday = [row for row in workshop if row["date"] == "2016-01-04"]
    assert {row["dayoff"] for row in monday} == {"False"}
    assert {row["dayofweek"] for row in monday} == {"0"}


# --- the truth: expected.csv ----------------------------------------------------------------

def test_expected_has_one_row_per_train_row(tiny, train):
    expected = read_rows(tiny[0] / schema.EXPECTED_FILE)
    assert [row["id"] for row in expected] == [row["id"] for row in train]
    assert all(re.fullmatch(r"\d+\.\d{4}", row["expected"]) for row in expected)


@pytest.mark.parametrize(("low", "high"), [(0.0, 2.0), (2.0, float("inf"))])
def test_mean_clipped_sales_match_mean_expected(tiny, train, low, high):
    """Statistical: sales given presence average to the written expectation (tolerance 3%)."""
    expected_rows = read_rows(tiny[0] / schema.EXPECTED_FILE)
    expected = {row["id"]: float(row["expected"]) for row in expected_rows}
    pairs = [(max(float(row["unit_sales"]), 0.0), expected[row["id"]]) for row in train
             if low <= expected[row["id"]] < high]
    sales = sum(p[0] for p in pairs) / len(pairs)
    truth = sum(p[1] for p in pairs) / len(pairs)
    assert len(pairs) > 1000
    assert sales == pytest.approx(truth, rel=0.03)


@pytest.mark.parametrize(
    ("lam", "by_weight", "want"),
    [
        (1.0, False, 1.5745),   # 0.997 / (0.003 + 0.997 (1 - e^-1)): a sale of at least one unit
        (0.01, False, 0.7717),  # mostly returns: 0.00997 / (0.003 + 0.997 (1 - e^-0.01))
        (40.0, False, 39.88),   # 0.997 · 40 / (0.003 + 0.997 · 1.0)
        (2.0, True, 1.994),     # by weight: a row is always written, returns count as 0
    ],
)
def test_expected_sales_is_the_mean_given_a_row_is_written(lam, by_weight, want):
    got = expected_sales(np.array([lam]), np.array([by_weight]))
    assert got[0] == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("by_weight", [False, True])
def test_simulated_sales_average_to_their_expectation(by_weight):
    """Statistical, on 100,000 cells of a low-demand item (tolerance 1%, ~5 standard errors)."""
    n = 100_000
    cells = Cells(store=np.full(n, 47), item=np.zeros(n, dtype=int), base=np.full(n, 0.3),
                  by_weight=np.full(n, by_weight))
    day = simulate_day(cells, date(2016, 3, 2), day_off=False, seed=1)
    written = day.sales != 0
    mean_sales = np.mean(np.maximum(day.sales[written], 0))
    assert mean_sales == pytest.approx(np.mean(day.expected[written]), rel=0.01)


def test_milk_sells_about_40_a_day_in_store_47(train):
    milk = [float(r["unit_sales"]) for r in train
            if (r["store_nbr"], r["item_nbr"]) == ("47", "99197")]
    assert 37 <= sum(milk) / 731 <= 43


def test_rows_before_and_after_a_date_do_not_depend_on_the_range(tmp_path, train):
    """Each date has its own random stream, so a shorter range reproduces the same rows."""
    spec = SizeSpec("custom", stores=TINY.stores, n_items=TINY.n_items,
                    start=date(2016, 3, 1), end=date(2016, 3, 3))
    generate(spec, tmp_path)
    rows = read_rows(tmp_path / schema.TRAIN_FILE)
    got = [{k: v for k, v in row.items() if k != "id"} for row in rows]
    want = [{k: v for k, v in row.items() if k != "id"} for row in train
            if "2016-03-01" <= row["date"] <= "2016-03-03"]
    assert got == want


def test_generate_creates_a_missing_output_folder(tmp_path):
    spec = SizeSpec(
        "custom", stores=(47,), n_items=5, start=date(2016, 12, 30), end=date(2017, 1, 2)
    )
    out = tmp_path / "a" / "b"
    summary = generate(spec, out)
    assert summary["dates"] == 4 and summary["workshop_rows"] > 0
    last_day = {row["days_til_end_of_data"] for row in read_rows(out / schema.WORKSHOP_FILE)
                if row["date"] == "2016-12-31"}
    assert last_day == {"0"}
    assert date(2017, 1, 1) in day_off_dates(spec.start, spec.end)


# --- other generating processes (the model matrix's unlike data) -------------------------------

def _sales_by_day(folder: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Milk's sales and expected sales in store 47, by date, on dates it is not on promotion."""
    expected = {r["id"]: float(r["expected"]) for r in read_rows(folder / schema.EXPECTED_FILE)}
    sales, means = {}, {}
    for row in read_rows(folder / schema.TRAIN_FILE):
        if row["item_nbr"] == "99197" and row["onpromotion"] == "False":
            sales[row["date"]], means[row["date"]] = float(row["unit_sales"]), expected[row["id"]]
    return sales, means


def test_a_trend_grows_the_expected_sales_year_on_year(tmp_path):
    spec = SizeSpec("custom", stores=(47,), n_items=3, start=date(2015, 1, 1), end=date(2016, 12, 31))
    generate(spec, tmp_path, process=Process(trend=0.5))
    _, means = _sales_by_day(tmp_path)
    off = day_off_dates(spec.start, spec.end)
    plain = [d for d in (date(2015, 6, 1) + timedelta(k) for k in range(60))  # 52 weeks later: same weekday
             if not {d, d + timedelta(364)} & off and d.day not in (15, 30, 31) and (d + timedelta(364)).day not in (15, 30, 31)]
    ratios = [means[(d + timedelta(364)).isoformat()] / means[d.isoformat()] for d in plain
              if {d.isoformat(), (d + timedelta(364)).isoformat()} <= means.keys()]
    assert len(ratios) > 30 and all(1.45 <= r <= 1.55 for r in ratios), ratios


def test_dispersion_widens_sales_around_the_same_expected_sales(tmp_path):
    spec = SizeSpec("custom", stores=(47,), n_items=3, start=date(2016, 1, 1), end=date(2016, 12, 31))
    spread = {}
    for dispersion in (0.0, 0.3):
        folder = tmp_path / str(dispersion)
        generate(spec, folder, process=Process(dispersion=dispersion))
        sales, means = _sales_by_day(folder)
        errors = np.array([sales[d] - means[d] for d in sales])
        assert abs(errors.mean()) < 0.05 * np.mean(list(means.values()))  # unbiased either way
        spread[dispersion] = errors.std()
    assert spread[0.3] > 2 * spread[0.0]


def test_the_default_process_draws_what_it_always_drew(tmp_path, train):
    spec = SizeSpec("custom", stores=TINY.stores, n_items=TINY.n_items, start=date(2016, 3, 1), end=date(2016, 3, 3))
    generate(spec, tmp_path, process=Process())
    got = [{k: v for k, v in row.items() if k != "id"} for row in read_rows(tmp_path / schema.TRAIN_FILE)]
    assert got == [{k: v for k, v in row.items() if k != "id"} for row in train if "2016-03-01" <= row["date"] <= "2016-03-03"]


@pytest.mark.parametrize("field, value", [("season_amplitude", 1.0), ("trend", -1.0), ("dispersion", -0.1)])
def test_a_process_out_of_range_is_a_config_error_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=f"{field} must be in"):
        Process(**{field: value})
