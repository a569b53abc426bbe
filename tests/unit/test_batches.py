"""The batch path gives the row path's rows: random Kaggle-layout files through both (hypothesis).

The row path is the reference: KaggleSource.rows (the readers' join), process_rows, filter_rows,
feature_row. The batch path cuts train.csv into byte ranges and runs parse_train, process_batch,
filter_batch and join_batch on each (cd4ml/problems/favorita/partitions.py).
"""

from __future__ import annotations

import csv
import io
import random
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cd4ml.config import DataSettings
from cd4ml.errors import DataError
from cd4ml.problems.favorita.batches import ItemTable, Rejected, parse_train, process_batch
from cd4ml.problems.favorita.compact import FEATURES, CompactSalesFeatures
from cd4ml.problems.favorita.features import WEEKDAYS, calendar_columns, days_of, feature_row
from cd4ml.problems.favorita.problem import FavoritaProblem
from cd4ml.problems.favorita.process import filter_rows, process_rows
from cd4ml.problems.favorita.readers import open_source

FAMILIES = ("DAIRY", "LIQUOR,WINE,BEER", "GROCERY I", "BREAD/BAKERY", 'SAY "CHEESE"')
TRUE = ("True", "true", "TRUE", "1", "t", "T", "yes", "Yes", "tRuE")
FALSE = ("False", "false", "FALSE", "0", "f", "F", "no", "No", "fAlSe")
TRAIN_COLUMNS = ("id", "date", "store_nbr", "item_nbr", "unit_sales", "onpromotion")
HOLIDAY_TYPES = ("Holiday", "Transfer", "Additional", "Bridge", "Event", "Work Day")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def kaggle_folders(draw, quirks: bool = False):
    """The files of a Kaggle-layout folder as text, and the filters and batch size to read it with.

    Valid data with the layout's known variations: columns in any order, no id or onpromotion
    column, empty ids and onpromotion, flags in any spelling, negative and fractional sales,
    "7.0" for 7, quoted fields, a byte-order mark, CRLF, no newline at the end. quirks: also
    what Arrow refuses but the row functions read ("47.0" as a store, spaces around numbers)."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    items = draw(st.lists(st.integers(1, 2_200_000), min_size=1, max_size=6, unique=True))
    stores = draw(st.lists(st.integers(1, 54), min_size=1, max_size=4, unique=True))
    start = draw(st.dates(date(2013, 1, 1), date(2017, 6, 1)))
    days = draw(st.integers(1, 40))
    item_lines = [
        (str(item), rng.choice(FAMILIES), str(rng.randint(1000, 7000)), rng.choice(TRUE + FALSE))
        for item in items
    ]
    holiday_lines = [
        ((start + timedelta(rng.randrange(days))).isoformat(), rng.choice(HOLIDAY_TYPES),
         rng.choice(("National", "National", "Local")), "Ecuador", "Fiesta", rng.choice(("False", "False", "True")))
        for _ in range(rng.randint(0, 5))
    ]
    columns = [c for c in TRAIN_COLUMNS if c not in ("id", "onpromotion") or rng.random() < 0.85]
    rng.shuffle(columns)
    if rng.random() < 0.2:
        columns.insert(rng.randrange(len(columns) + 1), "extra")
    train_lines = []
    for n in range(draw(st.integers(0, 80))):
        sales = rng.choice((
            str(rng.randint(-3, 60)), f"{rng.randint(-2000, 90000) / 1000:.3f}", f"{rng.randint(0, 40)}.0",
            f"{rng.randint(1, 9)}e1",
        ))
        values = {
            "id": rng.choice((str(n), str(n), "")),
            "date": (start + timedelta(rng.randrange(days))).isoformat(),
            "store_nbr": str(rng.choice(stores)),
            "item_nbr": str(rng.choice(items)),
            "unit_sales": sales,
            "onpromotion": rng.choice(("",) + TRUE + FALSE),
            "extra": rng.choice(("x", "a,b", "")),
        }
        if quirks:
            column = rng.choice(("store_nbr", "item_nbr", "unit_sales", "id"))
            value = values[column]
            if value and rng.random() < 0.3:
                values[column] = rng.choice((f" {value} ", f"{value}.0" if value.lstrip("-").isdigit() else value))
        train_lines.append([values[c] for c in columns])
    quote_all = rng.random() < 0.2
    newline = rng.choice(("\n", "\r\n"))
    text = {
        "train.csv": _csv(columns, train_lines, quote_all, newline, bom=rng.random() < 0.2, final=rng.random() < 0.9),
        "items.csv": _csv(("item_nbr", "family", "class", "perishable"), item_lines, False, "\n"),
        "holidays_events.csv": _csv(("date", "type", "locale", "locale_name", "description", "transferred"),
                                    holiday_lines, False, "\n"),
    }
    chosen_items = frozenset(rng.sample(items, rng.randint(1, len(items)))) if rng.random() < 0.4 else None
    chosen_stores = frozenset(rng.sample(stores, rng.randint(1, len(stores)))) if rng.random() < 0.4 else None
    part_bytes = draw(st.sampled_from((24, 64, 200, 1000, 1 << 20)))
    return text, chosen_items, chosen_stores, part_bytes


def _csv(columns, rows, quote_all: bool, newline: str, bom: bool = False, final: bool = True) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    writer.writerows(rows)
    text = out.getvalue()
    if not final and text.endswith(newline) and rows:
        text = text[: -len(newline)]
    return ("\ufeff" if bom else "") + text


def both_paths(files: dict[str, str], items, stores, part_bytes: int):
    """(row path rows, batch path rows, how many batches Arrow refused) of the same folder."""
    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            Path(folder, name).write_bytes(text.encode("utf-8"))
        data = DataSettings(source=Path(folder), items=items, stores=stores, max_bad_rows=0)
        problem = FavoritaProblem()
        source = open_source(Path(folder), items=items)
        expected = list(filter_rows(process_rows(source.rows(), str(source.path)), items, stores))
        partitions = problem.partitions(open_source(Path(folder)), data, part_bytes)
        batches = [partitions.batch(i) for i in range(len(partitions))]
        got = [row for b in batches for row in b.table.to_pylist()]
        return expected, got, sum(b.by_rows for b in batches), partitions, batches


@SETTINGS
@given(kaggle_folders())
def test_the_batch_path_gives_the_row_paths_rows(folder):
    files, items, stores, part_bytes = folder
    expected, got, by_rows, _, _ = both_paths(files, items, stores, part_bytes)
    assert got == expected
    assert by_rows == 0, "Arrow read every batch of valid data itself"


@SETTINGS
@given(kaggle_folders(quirks=True))
def test_what_arrow_refuses_the_row_functions_read_with_the_same_result(folder):
    files, items, stores, part_bytes = folder
    expected, got, _, _, _ = both_paths(files, items, stores, part_bytes)
    assert got == expected


@SETTINGS
@given(kaggle_folders())
def test_batches_cover_every_line_once(folder):
    files, items, stores, part_bytes = folder
    _, _, _, partitions, batches = both_paths(files, items, stores, part_bytes)
    ranges = partitions.parts.ranges
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    train = files["train.csv"].encode()
    assert sum(b.lines for b in batches) == train.count(b"\n") - 1 + (0 if train.endswith(b"\n") else 1)


@SETTINGS
@given(st.lists(st.dates(date(2012, 1, 1), date(2018, 12, 31)), min_size=1, max_size=50),
       st.sets(st.dates(date(2012, 1, 1), date(2018, 12, 31)), max_size=20))
def test_calendar_columns_are_feature_rows_date_features(dates, days_off):
    days = np.array([d.toordinal() - date(1970, 1, 1).toordinal() for d in dates], dtype=np.int32)
    got = calendar_columns(days, days_of(days_off))
    for k, day in enumerate(dates):
        row = feature_row({"date": day, "item_nbr": 1, "store_nbr": 1}, {}, frozenset(days_off))
        assert WEEKDAYS[got["dayofweek"][k]] == row["dayofweek"]
        for name in ("month", "day", "dayofyear", "payday", "dayoff"):
            assert float(got[name][k]) == row[name], name


@SETTINGS
@given(st.lists(st.tuples(st.dates(date(2015, 1, 1), date(2017, 12, 31)), st.sampled_from((10, 20, 30, 99)),
                          st.sampled_from((1, 2, 3)), st.booleans()), min_size=1, max_size=30))
def test_compact_features_match_feature_row_and_the_scale_columns(requests):
    catalogue = {10: {"family": "DAIRY", "perishable": True}, 20: {"family": "CLEANING", "perishable": False},
                 30: {"family": "DAIRY", "perishable": False}}
    days_off = (date(2016, 1, 1), date(2016, 12, 25))
    features = CompactSalesFeatures(
        catalogue=catalogue, calendar=tuple(d.isoformat() for d in days_off),
        item_nbr=np.array([10, 20, 30]), family=("DAIRY", "CLEANING", "DAIRY"),
        perishable=np.array([True, False, False]),
    ).fit_totals(np.arange(12.0), np.ones(12))  # 4 stores (0..3) x 3 items
    asked = [{"date": d.isoformat(), "item_nbr": i, "store_nbr": s, "onpromotion": p} for d, i, s, p in requests]
    matrix = features.transform(asked)
    for k, request in enumerate(asked):
        row = feature_row(request, catalogue, frozenset(days_off))
        got = dict(zip(FEATURES, matrix[k]))
        assert WEEKDAYS[int(got["dayofweek"])] == row["dayofweek"]
        for name in ("month", "day", "dayofyear", "payday", "dayoff", "onpromotion", "perishable"):
            assert got[name] == row[name], name
        known = request["item_nbr"] != 99
        assert np.isnan(got["item_mean"]) is not known
        if known:
            position = [10, 20, 30].index(request["item_nbr"])
            assert got["level"] == got["store_item_mean"] == request["store_nbr"] * 3 + position
            assert features.families_[int(got["family"])] == catalogue[request["item_nbr"]]["family"]
        else:
            assert got["level"] == got["store_mean"]  # the best known mean
    import pandas as pd

    assert np.array_equal(features.transform(pd.DataFrame(asked)), matrix, equal_nan=True)


def test_parse_train_refuses_what_the_row_functions_must_judge():
    columns = list(TRAIN_COLUMNS)
    for line in (b"1,2016-01-01,47,99197,nan,True\n", b"1,2016-01-01,47,99197,inf,True\n",
                 b"1,2016-02-30,47,99197,3,True\n", b"1,,47,99197,3,True\n", b"1,2016-01-01,47.0,99197,3,\n",
                 b"1,2016-01-01,+47,99197,3,\n", b"1,20160101,47,99197,3,\n", b"1,2016-01-01,47,99197,3, True\n"):
        with pytest.raises(Rejected):
            parse_train(line, columns)


def test_process_batch_clips_returns_and_reads_empty_promotions_as_false():
    raw = parse_train(b"7,2016-01-01,47,99197,-3,\n8,2016-01-01,47,99197,1.5,yes\n", list(TRAIN_COLUMNS))
    rows = process_batch(raw).to_pylist()
    assert [(r["unit_sales"], r["onpromotion"]) for r in rows] == [(0.0, False), (1.5, True)]


def test_item_table_lets_the_last_row_of_an_item_win_as_the_join_does():
    table = ItemTable.of([
        {"item_nbr": "5", "family": "A", "class": "1", "perishable": "1"},
        {"item_nbr": "5.0", "family": "B", "class": "2", "perishable": "0"},
    ])
    assert table.family == ("B",) and not table.perishable[0]
    with pytest.raises(Rejected):
        table.positions(np.array([5, 6]))


@pytest.mark.parametrize("bad, fragment", [
    ("unit_sales=ten", "'ten'"), ("date=2016-13-01", "'2016-13-01'"), ("item_nbr=123", "items.csv"),
    ("fields", "fields"),
])
def test_bad_lines_fail_with_the_row_paths_error(tmp_path, bad, fragment):
    lines = [f"{n},2016-01-0{1 + n % 5},47,99197,{n},True" for n in range(40)]
    column, _, value = bad.partition("=")
    at = 23
    if column == "fields":
        lines[at] = "23,2016-01-01,47"
    else:
        fields = lines[at].split(",")
        fields[list(TRAIN_COLUMNS).index(column)] = value
        lines[at] = ",".join(fields)
    (tmp_path / "train.csv").write_text(",".join(TRAIN_COLUMNS) + "\n" + "\n".join(lines) + "\n")
    (tmp_path / "items.csv").write_text("item_nbr,family,class,perishable\n99197,DAIRY,2112,1\n")
    (tmp_path / "holidays_events.csv").write_text("date,type,locale,locale_name,description,transferred\n")
    data = DataSettings(source=tmp_path, items=None, stores=None, max_bad_rows=0)
    with pytest.raises(DataError) as row_path:
        list(process_rows(open_source(tmp_path).rows(), str(tmp_path / "train.csv")))
    partitions = FavoritaProblem().partitions(open_source(tmp_path), data, 200)
    with pytest.raises(DataError) as batch_path:
        for i in range(len(partitions)):
            partitions.batch(i)
    assert str(batch_path.value) == str(row_path.value)
    assert row_path.value.line == at + 2 and fragment in str(row_path.value)
