"""One server, several problems (docs/serving.md): the default problem at today's routes, each problem
at /<problem>/..., the pages link the deployed ones, events name their problem. Flask's test client
with real models: Favorita's trained by the pipeline's code, the toy problem's (tests/toy) fitted here."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from cd4ml.events import JsonlSink
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import LoadedModel, ModelStore
from tests.serving_helpers import Registry, loaded, model_a, serving_settings
from tests.toy import ToyFeatures, ToyServing


def toy_model() -> Pipeline:
    k = np.array([1, 2, 3] * 10)
    return Pipeline([("features", ToyFeatures()), ("encode", DictVectorizer()), ("model", Ridge(alpha=1e-6))]).fit(
        pd.DataFrame({"k": k}), 10.0 * k)


@pytest.fixture
def stores(tiny_data):
    favorita = ModelStore(Registry(loaded(model_a(tiny_data), "1")), poll_seconds=0)
    toy = ModelStore(Registry(LoadedModel("4", "run-toy", "c", toy_model(), serving=ToyServing())), poll_seconds=0)
    nothing = ModelStore(Registry(None), poll_seconds=0)
    for store in (favorita, toy, nothing):
        store.refresh()
    return {"favorita": favorita, "toy": toy, "houses": nothing}


@pytest.fixture
def served(stores, tmp_path):
    sink = JsonlSink(tmp_path / "predictions.jsonl")
    yield create_app(serving_settings(), stores["favorita"], sink, problems=stores).test_client(), sink
    sink.close()


def events(sink) -> list[dict]:
    sink.close()
    return [json.loads(line) for line in sink.path.read_text().splitlines()]


def test_todays_routes_answer_for_the_default_problem_and_each_problem_has_its_own(served):
    client, _ = served
    assert client.get("/prediction?date=2016-08-01&item_nbr=99197").status_code == 200
    assert client.get("/favorita/prediction?date=2016-08-01&item_nbr=99197").get_json()["prediction"] == \
        client.get("/prediction?date=2016-08-01&item_nbr=99197").get_json()["prediction"]
    toy = client.get("/toy/prediction?k=2").get_json()
    assert toy == {"prediction": pytest.approx(20.0), "k": 2, "model_version": "4", "run_id": "run-toy"}
    assert client.get("/toy/version").get_json()["model_version"] == "4"
    assert client.get("/version").get_json()["model_version"] == "1"


def test_bad_input_names_the_problems_field(served):
    client, _ = served
    answer = client.get("/toy/prediction?k=9")
    assert answer.status_code == 400 and answer.get_json()["field"] == "k"
    answer = client.get("/toy/prediction?k=2&item_nbr=1")
    assert answer.status_code == 400 and answer.get_json() == {
        "error": "Unknown parameter 'item_nbr'; this endpoint takes k.", "field": "item_nbr"}


def test_a_problem_without_a_model_answers_503_and_an_unknown_problem_404(served):
    client, _ = served
    assert client.get("/houses/prediction?sale_id=s-1").status_code == 503
    assert client.get("/houses/").status_code == 503
    assert client.get("/nosuch/prediction").status_code == 404


def test_every_page_links_the_deployed_problems_and_each_form_posts_to_its_own_page(served):
    client, _ = served
    page = client.get("/").get_data(as_text=True)
    assert 'href="/problem/' not in page
    assert '<a href="/favorita/">favorita</a>' in page and '<a href="/toy/">toy</a>' in page
    assert "/houses/" not in page  # served, but nothing deployed
    toy = client.get("/toy/?k=3")
    text = toy.get_data(as_text=True)
    assert toy.status_code == 200 and 'action="/toy/"' in text and '>30.00</span>' in text and 'href="/toy/version"' in text
    assert 'action="/"' in client.get("/").get_data(as_text=True)  # Favorita's form at / stays at /


def test_each_problems_openapi_document_is_its_own(served):
    client, _ = served
    assert "/prediction" in client.get("/openapi.json").get_json()["paths"]
    assert client.get("/toy/openapi.json").get_json()["servers"] == [{"url": "/toy"}]


def test_events_name_their_problem_and_carry_its_fields(served):
    client, sink = served
    client.get("/prediction?date=2016-08-01&item_nbr=99197")
    client.get("/toy/prediction?k=1")
    first, second = events(sink)
    assert first["problem"] == "favorita" and first["item_nbr"] == 99197
    assert list(second)[:5] == ["@timestamp", "schema_version", "event", "problem", "k"]
    assert second["problem"] == "toy" and second["k"] == 1 and second["model_version"] == "4"
