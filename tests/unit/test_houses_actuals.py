"""The houses problem's actual sales: write_actuals (generate-data --problem houses --actuals-for) prices
the sales the server was asked about by the generator's own process, and `feedback` (add_actuals)
appends a drop of them to the training data, each sale_id once, zipcodes.csv kept consistent."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import pytest
from werkzeug.datastructures import MultiDict

from cd4ml.config import DataSettings
from cd4ml.errors import DataError
from cd4ml.events import prediction_event
from cd4ml.problems.houses import schema
from cd4ml.problems.houses.actuals import write_actuals
from cd4ml.problems.houses.generate import NOISE_SIGMA, expected_prices, generate, log_price, make_sales, make_zipcodes
from cd4ml.problems.houses.problem import HousesProblem
from cd4ml.problems.houses.serving import SERVING

EXAMPLE = SERVING.parse(MultiDict(parse_qsl(SERVING.example)), None)  # the form's example, as the server parses it


def houses_event(at: float = 1_700_000_000.0, prediction: float = 400_000.0, **changes) -> dict:
    """A prediction event of the houses server: the form's example request, with `changes`."""
    return prediction_event(problem="houses", **{**EXAMPLE, **changes}, prediction=prediction, model_version="1",
                            run_id="run-1", latency_ms=1.0, at=at)


def write_log(path: Path, *lines: dict | str) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def read_back(folder: Path) -> list[dict]:
    """The sales of a folder through the houses reader and processing, as the pipeline reads them."""
    problem = HousesProblem()
    data = DataSettings(source=folder, items=None, stores=None, max_bad_rows=0)
    return list(problem.rows(problem.open(data), data))


# --- the generator's pricing, factored out: generate() writes the same bytes ----------------------

def test_generate_writes_the_same_files_for_a_seed_as_before_the_pricing_was_factored_out(tmp_path):
    generate(500, tmp_path, seed=42)
    digest = hashlib.sha256()
    for name in (schema.SALES_FILE, schema.ZIPCODES_FILE, schema.EXPECTED_FILE):
        digest.update((tmp_path / name).read_bytes())
    # recorded from the generator before log_price existed (merge15, c083dbf)
    assert digest.hexdigest() == "32ead42a617b23bff9d65463a37fb162177129952e2b56c129e4acfbce868deb"


def test_the_pricing_function_gives_each_generated_sales_expected_price():
    zipcodes = make_zipcodes(42)
    sales = make_sales(300, zipcodes, 42)
    level = zipcodes.set_index("zipcode")["level"].reindex(sales["zipcode"]).to_numpy()
    assert expected_prices(log_price(sales, level)).tolist() == sales["expected_price"].tolist()


# --- write_actuals: the asked sales, priced by the generator --------------------------------------

def test_actuals_of_the_asked_sales_are_read_back_by_the_houses_reader_at_the_generators_prices(tmp_path):
    zipcodes = make_zipcodes(42)
    sold = make_sales(5, zipcodes, 42).iloc[3]  # a generated house, asked about as a new sale
    columns = ("zipcode", "square_feet", "lot_size_sf", "beds", "baths", "year_built", "style", "parking",
               "kitchen_refurbished", "pool", "multi_family")
    house = {name: value.item() if hasattr(value, "item") else value for name, value in sold[list(columns)].items()}
    events = write_log(tmp_path / "predictions.jsonl",
                       houses_event(sale_id="100001", **house),
                       houses_event(sale_id="100002", sale_date="2018-01-20"),
                       {"problem": "favorita", "event": "prediction", "date": "2016-08-01", "item_nbr": 1},
                       "{not json",
                       houses_event(sale_id="100003", zipcode="99999"))
    summary = write_actuals(events, tmp_path / "actuals", seed=42)
    assert summary == {"rows": 2, "first": EXAMPLE["sale_date"], "last": "2018-01-20", "unknown_zipcodes": 1,
                       "malformed": 1}
    rows = {row["sale_id"]: row for row in read_back(tmp_path / "actuals")}
    assert sorted(rows) == [100001, 100002]
    assert {k: rows[100001][k] for k in house} == house
    assert rows[100001]["state"] == zipcodes.set_index("zipcode").loc[house["zipcode"], "state"]
    expected = pd.read_csv(tmp_path / "actuals" / schema.EXPECTED_FILE).set_index("sale_id")["expected_price"]
    assert expected[100001] == sold["expected_price"]  # the generator's own noise-free price of this house
    noise = np.log([rows[i]["price"] / expected[i] for i in rows]) + NOISE_SIGMA**2 / 2
    assert (np.abs(noise) < 5 * NOISE_SIGMA).all() and len(set(noise)) == 2


def test_the_same_seed_gives_the_same_prices_and_another_seed_others(tmp_path):
    events = write_log(tmp_path / "predictions.jsonl", houses_event(sale_id="100001"))
    prices = {}
    for name, seed in (("first", 42), ("again", 42), ("other", 7)):
        write_actuals(events, tmp_path / name, seed=seed)
        prices[name] = read_back(tmp_path / name)[0]["price"]
    assert prices["first"] == prices["again"] != prices["other"]


def test_a_sale_asked_twice_is_written_once_with_its_latest_request(tmp_path):
    events = write_log(tmp_path / "predictions.jsonl",
                       houses_event(at=2_000.0, sale_id="7", beds=4),
                       houses_event(at=1_000.0, sale_id="7", beds=2))
    assert write_actuals(events, tmp_path / "out", seed=42)["rows"] == 1
    assert [row["beds"] for row in read_back(tmp_path / "out")] == [4]


def test_no_event_log_or_no_houses_sale_in_it_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="does not exist.*Serve the houses model"):
        write_actuals(tmp_path / "nowhere.jsonl", tmp_path / "out", seed=42)
    events = write_log(tmp_path / "favorita.jsonl", {"problem": "favorita", "event": "prediction"})
    with pytest.raises(DataError, match="no houses prediction events"):
        write_actuals(events, tmp_path / "out", seed=42)


# --- feedback: a drop of actual sales appended to the training data ------------------------------

@pytest.fixture
def training(tmp_path) -> Path:
    folder = tmp_path / "houses"
    generate(50, folder, seed=42)
    return folder


def a_drop(tmp_path: Path, name: str, *sale_ids: str, **changes) -> Path:
    events = write_log(tmp_path / f"{name}.jsonl", *(houses_event(sale_id=i, **changes) for i in sale_ids))
    write_actuals(events, tmp_path / name, seed=42)
    return tmp_path / name


def test_feedback_appends_new_sales_once_by_sale_id(tmp_path, training):
    drop = a_drop(tmp_path, "drop", "49", "50", "51", "52")  # 49 and 50 are in the training data already
    before = read_back(training)
    result = HousesProblem().add_actuals(drop, training / schema.SALES_FILE)
    assert (result.added, result.duplicates) == (2, 2)
    after = read_back(training)
    assert after[:len(before)] == before and [row["sale_id"] for row in after[len(before):]] == [51, 52]
    expected = pd.read_csv(training / schema.EXPECTED_FILE)
    assert expected["sale_id"].tolist()[-2:] == [51, 52]  # the best achievable score stays known
    again = HousesProblem().add_actuals(drop, training)
    assert (again.added, again.duplicates) == (0, 4) and "nothing new" in str(again)
    assert len(read_back(training)) == len(after)


def test_a_new_zip_code_of_the_drop_joins_the_training_zip_code_table(tmp_path, training):
    table = pd.read_csv(training / schema.ZIPCODES_FILE, dtype=str)
    (training / schema.ZIPCODES_FILE).write_text(table[table["zipcode"] != EXAMPLE["zipcode"]].to_csv(index=False))
    result = HousesProblem().add_actuals(a_drop(tmp_path, "drop", "60"), training)
    assert result.new_zipcodes == [EXAMPLE["zipcode"]]
    assert read_back(training)[-1]["zipcode"] == EXAMPLE["zipcode"]


def test_a_bad_drop_fails_in_one_line_and_changes_nothing(tmp_path, training):
    drop = a_drop(tmp_path, "drop", "60", "61")
    sales = drop / schema.SALES_FILE
    sales.write_text(sales.read_text().replace(",ranch,", ",igloo,", 1))
    files = {p.name: p.read_bytes() for p in training.iterdir()}
    with pytest.raises(DataError) as err:
        HousesProblem().add_actuals(drop, training)
    assert "sales.csv line 2" in str(err.value) and "style" in str(err.value) and "\n" not in str(err.value)
    assert {p.name: p.read_bytes() for p in training.iterdir()} == files


def test_a_drop_that_puts_a_known_zip_code_in_another_state_is_refused(tmp_path, training):
    drop = a_drop(tmp_path, "drop", "60")
    table = pd.read_csv(drop / schema.ZIPCODES_FILE, dtype=str)
    table.loc[table["zipcode"] == EXAMPLE["zipcode"], "state"] = "ZZ"
    (drop / schema.ZIPCODES_FILE).write_text(table.to_csv(index=False))
    files = {p.name: p.read_bytes() for p in training.iterdir()}
    with pytest.raises(DataError, match=f"zip code {EXAMPLE['zipcode']} is in ZZ in the drop but in CA"):
        HousesProblem().add_actuals(drop, training)
    assert {p.name: p.read_bytes() for p in training.iterdir()} == files


def test_feedback_without_training_data_says_how_to_make_it(tmp_path):
    drop = a_drop(tmp_path, "drop", "60")
    with pytest.raises(DataError, match="does not exist.*generate-data --problem houses"):
        HousesProblem().add_actuals(drop, tmp_path / "nowhere" / schema.SALES_FILE)
