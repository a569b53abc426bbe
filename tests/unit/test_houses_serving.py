"""The houses problem's serving pieces (cd4ml/problems/houses/serving.py): every field checked with a
message naming it, the form, the answer of a real fitted model, its OpenAPI document and events."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl

import pandas as pd
import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from werkzeug.datastructures import MultiDict

from cd4ml.config import DataSettings, load_settings
from cd4ml.events import JsonlSink
from cd4ml.monitoring.accuracy import LatestForecasts, actuals_by_key
from cd4ml.pipeline.run import fit_and_validate
from cd4ml.request_fields import BadInput
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import LoadedModel, ModelStore
from cd4ml.problems.houses import schema
from cd4ml.problems.houses.actuals import write_actuals
from cd4ml.problems.houses.generate import expected_prices, generate, log_price, make_zipcodes
from cd4ml.problems.houses.problem import HousesProblem
from cd4ml.problems.houses.serving import FIELDS, SERVING
from tests.serving_helpers import Registry, serving_settings

GOOD = {"sale_id": "100001", "sale_date": "2018-01-15", "zipcode": "10004", "square_feet": "1850",
        "lot_size_sf": "6000", "beds": "3", "baths": "2.5", "year_built": "1978", "style": "ranch",
        "parking": "2", "pool": "true"}


def rows(frame: pd.DataFrame) -> list[dict]:
    return frame[["square_feet", "style"]].to_dict("records")


@pytest.fixture(scope="module")
def loaded():
    frame = pd.DataFrame({"square_feet": [1000.0, 2000.0, 3000.0, 1500.0], "style": ["ranch", "colonial", "ranch", "colonial"]})
    model = Pipeline([("features", FunctionTransformer(rows)), ("encode", DictVectorizer()), ("model", Ridge(alpha=1e-6))])
    model.fit(frame, 200.0 * frame["square_feet"])
    return LoadedModel("2", "run-h", "c", model, serving=SERVING)


def test_a_good_request_parses_to_typed_columns_with_the_optional_flags_false(loaded):
    request = SERVING.parse(MultiDict(GOOD), loaded)
    assert request == {"sale_id": "100001", "sale_date": "2018-01-15", "zipcode": "10004", "square_feet": 1850.0,
                       "lot_size_sf": 6000.0, "beds": 3, "baths": 2.5, "year_built": 1978, "style": "ranch",
                       "parking": 2, "kitchen_refurbished": False, "pool": True, "multi_family": False}


@pytest.mark.parametrize("field, value, message", [
    ("zipcode", "9411", "zipcode must be five digits, e.g. 10004; got '9411'."),
    ("sale_date", "2020-02-30", "sale_date 2020-02-30 is not a day of the calendar; check the month and day."),
    ("square_feet", "big", "square_feet must be living area (sq ft), a number such as 1850; got 'big'."),
    ("square_feet", "10", "square_feet must be between 100 and 50000; got '10'."),
    ("beds", "2.5", "beds must be a whole number, e.g. 3; got '2.5'."),
    ("pool", "maybe", "pool must be true or false; got 'maybe'."),
    ("style", "igloo", "style 'igloo' is not one the deployed model knows; use one of colonial, ranch."),
    ("sale_id", "s-42", "sale_id must be a whole number of up to 12 digits, e.g. 100001; got 's-42'."),
    ("sale_id", "0", "sale_id must be a whole number of up to 12 digits, e.g. 100001; got '0'."),
    ("parking", "garage", "parking must be parking spaces, a number such as 2; got 'garage'."),
    ("parking", "1.5", "parking must be a whole number, e.g. 2; got '1.5'."),
    ("square_feet", "nan", "square_feet must be between 100 and 50000; got 'nan'."),
])
def test_a_bad_field_is_named_with_the_fix(loaded, field, value, message):
    with pytest.raises(BadInput, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.") + "$") as err:
        SERVING.parse(MultiDict({**GOOD, field: value}), loaded)
    assert err.value.field == field


def test_a_missing_field_and_an_unknown_one_are_named(loaded):
    with pytest.raises(BadInput, match="^zipcode is required, e.g. zipcode=10004.$"):
        SERVING.parse(MultiDict({k: v for k, v in GOOD.items() if k != "zipcode"}), loaded)
    with pytest.raises(BadInput, match="^Unknown parameter 'price'"):
        SERVING.parse(MultiDict({**GOOD, "price": "1"}), loaded)


def test_the_answer_is_the_models_price_of_the_request(loaded):
    answer = SERVING.answer(loaded, SERVING.parse(MultiDict(GOOD), loaded))
    assert answer["prediction"] == pytest.approx(200.0 * 1850) and answer["sale_id"] == "100001"


def test_the_server_answers_the_houses_form_api_and_events(loaded, tmp_path):
    store = ModelStore(Registry(loaded), poll_seconds=0)
    store.refresh()
    sink = JsonlSink(tmp_path / "events.jsonl")
    client = create_app(serving_settings(), store, sink).test_client()
    form = client.get("/").get_data(as_text=True)
    assert all(f'name="{f.name}"' in form for f in FIELDS) and '<option value="colonial"' in form
    page = client.get("/", query_string=GOOD)
    assert page.status_code == 200 and ">$370,000</span>" in page.get_data(as_text=True)
    bad = client.get("/", query_string={**GOOD, "zipcode": "x"})
    assert bad.status_code == 400 and "zipcode must be five digits" in bad.get_data(as_text=True)
    assert client.get("/prediction", query_string=GOOD).get_json()["prediction"] == pytest.approx(370000.0)
    assert json.loads(client.get("/openapi.json").get_data())["servers"] == [{"url": "/houses"}]
    sink.close()
    event = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[-1])
    assert event["problem"] == "houses" and event["sale_id"] == "100001" and event["zipcode"] == "10004"
    assert set(SERVING.event_fields) <= set(event)


# --- a real model, trained by the pipeline's code on generated sales, behind the server ------------

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = dict(parse_qsl(SERVING.example))  # the form's example query


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "houses"
    generate(3_000, folder, seed=42)  # the workshop's zip-code table: the seed's, whatever the size
    return folder


@pytest.fixture(scope="module")
def trained(data):
    settings = load_settings(ROOT / "params-houses.toml", environ={"CD4ML_DATA_DIR": str(data.parent)},
                             overrides={"data.source": str(data / schema.SALES_FILE)})
    return LoadedModel("7", "run-houses", "c", fit_and_validate(settings)[0].model, serving=SERVING)


@pytest.fixture
def client(trained, tmp_path):
    store = ModelStore(Registry(trained), poll_seconds=0)
    store.refresh()
    sink = JsonlSink(tmp_path / "predictions.jsonl")
    yield create_app(serving_settings(), ModelStore(Registry(None), poll_seconds=0), sink,
                     problems={"houses": store}).test_client(), sink
    sink.close()


def test_the_forms_example_is_a_house_the_workshop_data_could_hold():
    zipcodes = make_zipcodes(42).set_index("zipcode")  # data/houses/zipcodes.csv of the default seed
    assert EXAMPLE["zipcode"] in zipcodes.index and EXAMPLE["style"] in schema.STYLES
    assert 0 <= int(EXAMPLE["parking"]) <= 3 and "state" not in SERVING.fields
    assert SERVING.parse(MultiDict(EXAMPLE), None)["sale_id"] == EXAMPLE["sale_id"]


def test_a_request_without_state_takes_its_zip_codes_state_learned_in_training(trained):
    model = trained.model
    request = SERVING.parse(MultiDict(EXAMPLE), trained)
    state = make_zipcodes(42).set_index("zipcode").loc[EXAMPLE["zipcode"], "state"]
    assert model.named_steps["features"].zip_states_[EXAMPLE["zipcode"]] == state
    with_state = model.predict(pd.DataFrame([{**request, "state": state}]))
    assert model.predict(pd.DataFrame([request])) == pytest.approx(with_state)
    assert model.predict(pd.DataFrame([{**request, "state": "NY" if state != "NY" else "CA"}])) != pytest.approx(with_state)


def test_an_unseen_zip_code_gets_an_unknown_state_so_its_level_is_the_overall_mean(trained):
    steps = trained.model.named_steps
    request = {**SERVING.parse(MultiDict(EXAMPLE), trained), "zipcode": "00001"}
    row = steps["levels"].transform(steps["features"].transform(pd.DataFrame([request])))[0]
    assert row["level"] == row["state_mean"] == steps["levels"].means_.mean_


def test_houses_prediction_answers_the_forms_example_with_a_price_in_dollars(client):
    client, sink = client
    answer = client.get("/houses/prediction", query_string=EXAMPLE)
    assert answer.status_code == 200, answer.get_json()
    request = SERVING.parse(MultiDict(EXAMPLE), None)
    zipcodes = make_zipcodes(42).set_index("zipcode")
    expected = expected_prices(log_price(pd.DataFrame([request]), zipcodes.loc[[EXAMPLE["zipcode"]], "level"].to_numpy()))[0]
    assert 0.7 * expected < answer.get_json()["prediction"] < 1.3 * expected  # the generator's price of this house
    page = client.get("/houses/", query_string=EXAMPLE)
    assert page.status_code == 200 and re.search(r">\$[0-9]{3},[0-9]{3}</span>", page.get_data(as_text=True))
    assert client.get("/houses/").status_code == 200  # the empty form, with the example values


def test_a_word_for_parking_is_a_400_naming_parking(client):
    client, _ = client
    answer = client.get("/houses/prediction", query_string={**EXAMPLE, "parking": "garage"})
    assert answer.status_code == 400 and answer.get_json()["field"] == "parking"
    assert "parking must be parking spaces, a number such as 2" in answer.get_json()["error"]


def test_the_events_sale_id_joins_the_actual_sale_written_for_it(client, tmp_path):
    client, sink = client
    for sale_id in ("100001", "100002"):
        assert client.get("/houses/prediction", query_string={**EXAMPLE, "sale_id": sale_id}).status_code == 200
    sink.close()
    write_actuals(sink.path, tmp_path / "actuals", seed=42)
    problem = HousesProblem()
    settings = DataSettings(source=tmp_path / "actuals", items=None, stores=None, max_bad_rows=0)
    actuals, _ = actuals_by_key(problem.rows(problem.open(settings), settings), SERVING.join_key, SERVING.actual)
    forecasts = LatestForecasts(actuals)
    for line in sink.path.read_text().splitlines():
        forecasts.add(json.loads(line))
    assert (forecasts.matched_events, forecasts.unmatched_events) == (2, 0)
