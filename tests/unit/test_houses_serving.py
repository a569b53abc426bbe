"""The houses problem's serving pieces (cd4ml/problems/houses/serving.py): every field checked with a
message naming it, the form, the answer of a real fitted model, its OpenAPI document and events."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from werkzeug.datastructures import MultiDict

from cd4ml.events import JsonlSink
from cd4ml.request_fields import BadInput
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import LoadedModel, ModelStore
from cd4ml.problems.houses.serving import FIELDS, SERVING
from tests.serving_helpers import Registry, serving_settings

GOOD = {"sale_id": "s-000042", "sale_date": "2020-06-15", "zipcode": "94110", "square_feet": "1850",
        "lot_size_sf": "6000", "beds": "3", "baths": "2.5", "year_built": "1978", "style": "ranch",
        "parking": "garage", "pool": "true"}


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
    assert request == {"sale_id": "s-000042", "sale_date": "2020-06-15", "zipcode": "94110", "square_feet": 1850.0,
                       "lot_size_sf": 6000.0, "beds": 3, "baths": 2.5, "year_built": 1978, "style": "ranch",
                       "parking": "garage", "kitchen_refurbished": False, "pool": True, "multi_family": False}


@pytest.mark.parametrize("field, value, message", [
    ("zipcode", "9411", "zipcode must be five digits, e.g. 94110; got '9411'."),
    ("sale_date", "2020-02-30", "sale_date 2020-02-30 is not a day of the calendar; check the month and day."),
    ("square_feet", "big", "square_feet must be living area (sq ft), a number such as 1850; got 'big'."),
    ("square_feet", "10", "square_feet must be between 100 and 50000; got '10'."),
    ("beds", "2.5", "beds must be a whole number, e.g. 3; got '2.5'."),
    ("pool", "maybe", "pool must be true or false; got 'maybe'."),
    ("style", "igloo", "style 'igloo' is not one the deployed model knows; use one of colonial, ranch."),
    ("sale_id", "a b", "sale_id must be up to 40 letters, digits, '-' or '_', e.g. s-000042; got 'a b'."),
    ("square_feet", "nan", "square_feet must be between 100 and 50000; got 'nan'."),
])
def test_a_bad_field_is_named_with_the_fix(loaded, field, value, message):
    with pytest.raises(BadInput, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.") + "$") as err:
        SERVING.parse(MultiDict({**GOOD, field: value}), loaded)
    assert err.value.field == field


def test_a_missing_field_and_an_unknown_one_are_named(loaded):
    with pytest.raises(BadInput, match="^zipcode is required, e.g. zipcode=94110.$"):
        SERVING.parse(MultiDict({k: v for k, v in GOOD.items() if k != "zipcode"}), loaded)
    with pytest.raises(BadInput, match="^Unknown parameter 'price'"):
        SERVING.parse(MultiDict({**GOOD, "price": "1"}), loaded)


def test_the_answer_is_the_models_price_of_the_request(loaded):
    answer = SERVING.answer(loaded, SERVING.parse(MultiDict(GOOD), loaded))
    assert answer["prediction"] == pytest.approx(200.0 * 1850) and answer["sale_id"] == "s-000042"


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
    assert event["problem"] == "houses" and event["sale_id"] == "s-000042" and event["zipcode"] == "94110"
    assert set(SERVING.event_fields) <= set(event)
