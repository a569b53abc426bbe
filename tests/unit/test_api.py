"""The JSON API through Flask's test client: forecasts, readiness, versions, reload, every bad input."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.pipeline import Pipeline

from cd4ml.errors import Cd4mlError, ServiceUnreachable
from cd4ml.events import JsonlSink
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import LoadedModel, ModelStore
from tests.serving_helpers import ADMIN_TOKEN, MILK, Registry, loaded, model_a, model_b, serving_settings

GOOD = "date=2016-08-01&item_nbr=99197"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture(scope="module")
def v1(tiny_data):
    return loaded(model_a(tiny_data), "1")


@pytest.fixture
def sink(tmp_path):
    sink = JsonlSink(tmp_path / "predictions.jsonl")
    yield sink
    sink.close()


@pytest.fixture
def registry(v1):
    """Production points at version 1; a test may move it, break it or make it unreachable."""
    return Registry(v1)


@pytest.fixture
def store(registry):
    store = ModelStore(registry, poll_seconds=0)
    store.refresh()
    return store


@pytest.fixture
def app(store, sink):
    return create_app(serving_settings(), store, sink)


@pytest.fixture
def client(app, caplog):
    caplog.set_level(logging.ERROR, logger="cd4ml.serving.app")
    yield app.test_client()
    # No request in these tests may reach the catch-all handler for bugs.
    assert not [r for r in caplog.records if r.name == "cd4ml.serving.app"], "a request hit the 500 handler"


@pytest.fixture
def empty_client(sink):
    """A server with no model deployed yet (the registry has no production alias)."""
    return create_app(serving_settings(), ModelStore(Registry(None), poll_seconds=0), sink).test_client()


def assert_error(response, status: int, field: str | None, *words: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) >= {"error", "field"} and body["field"] == field, body
    for word in words:
        assert word in body["error"], (word, body["error"])
    return body


# --- forecasts -----------------------------------------------------------------------------------

def test_a_forecast_names_the_product_the_day_and_the_model_that_made_it(client, v1):
    response = client.get(f"/prediction?{GOOD}")
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        "prediction": float(v1.model.predict([MILK])[0]), "item_nbr": 99197, "item_name": "Milk",
        "date": "2016-08-01", "store_nbr": 47, "onpromotion": False, "model_version": "1", "run_id": "run-1",
    }
    assert body["prediction"] > 0


@pytest.mark.parametrize("query, store_nbr, promo", [
    ("store_nbr=44", 44, False),
    ("store_nbr=47&onpromotion=true", 47, True),
    ("onpromotion=TRUE", 47, True),
    ("onpromotion=1", 47, True),
    ("onpromotion=on", 47, True),
    ("onpromotion=false", 47, False),
    ("onpromotion=No", 47, False),
    ("store_nbr=%2047%20", 47, False),  # surrounding spaces are forgiven
])
def test_optional_store_and_promotion(client, v1, query, store_nbr, promo):
    body = client.get(f"/prediction?{GOOD}&{query}").get_json()
    assert (body["store_nbr"], body["onpromotion"]) == (store_nbr, promo)
    request = {**MILK, "store_nbr": store_nbr, "onpromotion": promo}
    assert body["prediction"] == float(v1.model.predict([request])[0])


def test_promotion_changes_the_forecast(client):
    plain = client.get(f"/prediction?{GOOD}").get_json()["prediction"]
    promoted = client.get(f"/prediction?{GOOD}&onpromotion=true").get_json()["prediction"]
    assert promoted != plain


@pytest.mark.parametrize("day", ["2000-01-01", "2100-12-31", "2016-02-29", "2030-06-15"])
def test_any_real_day_in_range_gets_a_non_negative_forecast(client, day):
    response = client.get(f"/prediction?date={day}&item_nbr=1963838")
    assert response.status_code == 200 and response.get_json()["prediction"] >= 0


def test_every_forecast_emits_one_event_with_the_answer(client, sink):
    answers = [client.get(f"/prediction?date=2016-08-0{d}&item_nbr=105574").get_json() for d in range(1, 4)]
    client.get("/prediction?date=2016-02-30&item_nbr=105574")  # a bad request emits nothing
    sink.close()
    events = [json.loads(line) for line in sink.path.read_text().splitlines()]
    assert len(events) == 3
    for answer, event in zip(answers, events):
        assert {k: event[k] for k in ("date", "item_nbr", "item_name", "store_nbr", "onpromotion", "prediction",
                                      "model_version", "run_id")} == answer
        assert event["latency_ms"] >= 0


@pytest.mark.parametrize("path", ["/prediction", "/"])
def test_an_events_latency_is_the_whole_request_in_the_worker_not_the_model_alone(app, sink, path):
    import time

    @app.before_request
    def slow_routing():  # 50 ms spent before the view, as a slow parse or middleware would
        time.sleep(0.05)

    assert app.test_client().get(f"{path}?{GOOD}").status_code == 200
    sink.close()
    (event,) = [json.loads(line) for line in sink.path.read_text().splitlines()]
    assert event["latency_ms"] >= 50  # a sleep lasts at least as long as asked: not a timing race


# --- bad input: 400 naming the field ----------------------------------------------------------------

BAD_QUERIES = [
    # (query, field, words in the error)
    ("", "date", ["date is required", "date=2016-08-01"]),
    ("item_nbr=99197", "date", ["date is required"]),
    ("date=2016-08-01", "item_nbr", ["item_nbr is required", "item_nbr=99197"]),
    ("date=&item_nbr=99197", "date", ["date is empty"]),
    ("date=%20%20&item_nbr=99197", "date", ["date is empty"]),
    ("date=2016-08-01&item_nbr=", "item_nbr", ["item_nbr is empty"]),
    ("date=2016-08-01&date=2016-08-02&item_nbr=99197", "date", ["once", "2 times"]),
    ("date=2016-08-01&item_nbr=99197&item_nbr=105574", "item_nbr", ["once"]),
    ("date=2016-02-30&item_nbr=99197", "date", ["2016-02-30", "not a day of the calendar"]),
    ("date=2015-02-29&item_nbr=99197", "date", ["not a day of the calendar"]),
    ("date=2016-13-01&item_nbr=99197", "date", ["not a day of the calendar"]),
    ("date=2016-00-10&item_nbr=99197", "date", ["not a day of the calendar"]),
    ("date=0000-01-01&item_nbr=99197", "date", ["not a day of the calendar"]),
    ("date=1999-12-31&item_nbr=99197", "date", ["between 2000-01-01 and 2100-12-31", "1999-12-31"]),
    ("date=2101-01-01&item_nbr=99197", "date", ["between 2000-01-01 and 2100-12-31"]),
    ("date=9999-12-31&item_nbr=99197", "date", ["between"]),
    ("date=20160801&item_nbr=99197", "date", ["YYYY-MM-DD", "'20160801'"]),
    ("date=2016-8-1&item_nbr=99197", "date", ["YYYY-MM-DD"]),
    ("date=01/08/2016&item_nbr=99197", "date", ["YYYY-MM-DD"]),
    ("date=2016-08-01T10:00&item_nbr=99197", "date", ["YYYY-MM-DD"]),
    ("date=tomorrow&item_nbr=99197", "date", ["YYYY-MM-DD", "'tomorrow'"]),
    ("date=%EF%BC%92%EF%BC%90%EF%BC%91%EF%BC%96-08-01&item_nbr=99197", "date", ["YYYY-MM-DD"]),  # full-width digits
    ("date=2016-08-01%00&item_nbr=99197", "date", ["YYYY-MM-DD"]),
    ("date=" + "9" * 5000 + "&item_nbr=99197", "date", ["YYYY-MM-DD", "…"]),
    ("date=2016-08-01&item_nbr=milk", "item_nbr", ["product number", "'milk'"]),
    ("date=2016-08-01&item_nbr=-99197", "item_nbr", ["product number"]),
    ("date=2016-08-01&item_nbr=%2B99197", "item_nbr", ["product number"]),  # +99197
    ("date=2016-08-01&item_nbr=99197.0", "item_nbr", ["product number"]),
    ("date=2016-08-01&item_nbr=1e5", "item_nbr", ["product number"]),
    ("date=2016-08-01&item_nbr=99_197", "item_nbr", ["product number"]),
    ("date=2016-08-01&item_nbr=0x1837D", "item_nbr", ["product number"]),
    ("date=2016-08-01&item_nbr=%D9%A9%D9%A9%D9%A1%D9%A9%D9%A7", "item_nbr", ["product number"]),  # Arabic-Indic 99197
    ("date=2016-08-01&item_nbr=" + "9" * 40, "item_nbr", ["product number"]),
    ("date=2016-08-01&item_nbr=99999999999999999999999999999999999999999999", "item_nbr", ["product number"]),
    ("date=2016-08-01&item_nbr=%F0%9F%A5%9B", "item_nbr", ["product number"]),  # an emoji
    ("date=2016-08-01&item_nbr=%FF%FE", "item_nbr", ["product number"]),  # not UTF-8
    ("date=2016-08-01&item_nbr=1", "item_nbr", ["item_nbr 1 is not a product", "99197 (Milk)", "/items", "20"]),
    ("date=2016-08-01&item_nbr=000099197", "item_nbr", None),  # leading zeros are the same number: ok
    ("date=2016-08-01&item_nbr=999999999", "item_nbr", ["not a product"]),
    ("date=2016-08-01&item_nbr=99197&store_nbr=1", "store_nbr", ["store_nbr 1 is not a store", "44, 47"]),
    ("date=2016-08-01&item_nbr=99197&store_nbr=", "store_nbr", ["store_nbr is empty", "leave it out"]),
    ("date=2016-08-01&item_nbr=99197&store_nbr=forty", "store_nbr", ["store number", "'forty'"]),
    ("date=2016-08-01&item_nbr=99197&store_nbr=-47", "store_nbr", ["store number"]),
    ("date=2016-08-01&item_nbr=99197&store_nbr=47&store_nbr=44", "store_nbr", ["once"]),
    ("date=2016-08-01&item_nbr=99197&store_nbr=" + "4" * 30, "store_nbr", ["store number"]),
    ("date=2016-08-01&item_nbr=99197&onpromotion=maybe", "onpromotion", ["true or false", "'maybe'"]),
    ("date=2016-08-01&item_nbr=99197&onpromotion=2", "onpromotion", ["true or false"]),
    ("date=2016-08-01&item_nbr=99197&onpromotion=", "onpromotion", ["onpromotion is empty"]),
    ("date=2016-08-01&item_nbr=99197&onpromotion=true&onpromotion=false", "onpromotion", ["once"]),
    ("date=2016-08-01&item_nbr=99197&itme_nbr=3", "itme_nbr", ["Unknown parameter 'itme_nbr'", "item_nbr"]),
    ("date=2016-08-01&item_nbr=99197&model=../../etc/passwd", "model", ["Unknown parameter"]),
    ("date=2016-08-01&item_nbr=99197&%E2%98%83=1", "\u2603", ["Unknown parameter"]),
]


@pytest.mark.parametrize("query, field, words", BAD_QUERIES, ids=[q[:60] for q, _, _ in BAD_QUERIES])
def test_bad_input_is_a_400_naming_the_field_and_the_fix(client, query, field, words):
    response = client.get(f"/prediction?{query}")
    if words is None:
        assert response.status_code == 200
        return
    assert_error(response, 400, field, *words)


def test_bad_input_is_checked_against_the_deployed_models_own_catalogue(client, store, registry):
    """An item the current model lacks is unknown even if another model knows it."""
    first = client.get("/prediction?date=2016-08-01&item_nbr=105574")
    assert first.status_code == 200
    catalogue = dict(store.current.catalogue)
    del catalogue[105574]
    smaller = LoadedModel("9", "run-9", "c", store.current.model, catalogue, 0.0)
    registry.outcome = smaller
    assert store.refresh()
    assert_error(client.get("/prediction?date=2016-08-01&item_nbr=105574"), 400, "item_nbr", "version 9")


# --- no model yet -------------------------------------------------------------------------------------

def test_without_a_model_prediction_is_503_and_says_how_to_deploy(empty_client):
    body = assert_error(empty_client.get(f"/prediction?{GOOD}"), 503, None, "No model is deployed",
                        "run_python_script.py pipeline", "acceptance", "deploy")
    assert "run_python_script.py deploy" in body["error"]
    assert_error(empty_client.get("/items"), 503, None, "No model is deployed")


def test_without_a_model_health_is_not_ready(empty_client):
    response = empty_client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "not ready" and "deploy" in response.get_json()["reason"]


def test_health_gives_the_reason_the_registry_failed(sink):
    store = ModelStore(Registry(ServiceUnreachable("MLflow is down.")), 0)
    store.refresh()
    client = create_app(serving_settings(), store, sink).test_client()
    assert "MLflow is down." in client.get("/health").get_json()["reason"]
    assert "MLflow is down." in client.get(f"/prediction?{GOOD}").get_json()["error"]


def test_the_server_becomes_ready_when_a_model_is_deployed(v1, sink):
    registry = Registry(None)
    store = ModelStore(registry, poll_seconds=0)
    client = create_app(serving_settings(), store, sink).test_client()
    store.refresh()
    assert client.get("/health").status_code == 503
    registry.outcome = v1
    store.refresh()
    assert client.get("/health").get_json() == {"status": "ready", "model_version": "1"}
    assert client.get(f"/prediction?{GOOD}").status_code == 200


# --- health, version, items -------------------------------------------------------------------------------

def test_health_is_ready_with_the_version(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ready", "model_version": "1"}


def test_version_tells_what_is_served_and_how_the_events_go(client):
    client.get(f"/prediction?{GOOD}")
    body = client.get("/version").get_json()
    assert body["app_version"] == "0.1.0"
    assert (body["model_version"], body["run_id"], body["git_commit"]) == ("1", "run-1", "abc1234")
    assert body["loaded_at"].endswith("Z") and body["last_error"] is None and body["last_check"].endswith("Z")
    assert body["events"]["sink"] == "jsonl" and body["events"]["dropped"] == 0
    assert body["events"]["sent"] + body["events"]["queued"] == 1


def test_version_reports_why_a_newer_model_could_not_be_loaded(client, store, registry):
    registry.outcome = Cd4mlError("model version 2 cannot be loaded: artifacts missing.", "Re-run the pipeline.")
    store.refresh()
    body = client.get("/version").get_json()
    assert body["model_version"] == "1" and "version 2 cannot be loaded" in body["last_error"]
    assert client.get(f"/prediction?{GOOD}").status_code == 200  # still serving version 1


def test_items_lists_the_deployed_models_products(client, v1):
    items = client.get("/items").get_json()
    assert len(items) == len(v1.catalogue) == 20
    assert {"item_nbr": 99197, "name": "Milk", "family": "DAIRY"} in items
    assert {row["item_nbr"] for row in items} == set(v1.catalogue)


# --- reload -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Bearer wrong", f"Basic {ADMIN_TOKEN}", f"Bearer {ADMIN_TOKEN}x",
    f"Bearer {ADMIN_TOKEN[:-1]}", "Bearer \u00e9\u00e9\u00e9", f"{ADMIN_TOKEN}",
])
def test_reload_needs_the_admin_token(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.post("/reload", headers=headers)
    assert_error(response, 401, "Authorization", "Bearer", "CD4ML_ADMIN_TOKEN")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_reload_with_the_token_checks_the_registry_now(client, registry, tiny_data):
    registry.outcome = loaded(model_b(tiny_data), "2")
    response = client.post("/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["swapped"] is True and body["version"] == "2" and body["last_error"] is None
    assert client.get(f"/prediction?{GOOD}").get_json()["model_version"] == "2"
    again = client.post("/reload", headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    assert again.status_code == 200 and again.get_json()["swapped"] is False


def test_reload_reports_an_unreachable_registry_and_keeps_the_model(client, registry):
    registry.outcome = ServiceUnreachable("MLflow did not answer.")
    response = client.post("/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    body = assert_error(response, 503, None, "MLflow did not answer.")
    assert body["version"] == "1"
    assert client.get(f"/prediction?{GOOD}").status_code == 200


def test_reload_is_disabled_without_an_admin_token(store, sink):
    client = create_app(serving_settings(admin_token=None), store, sink).test_client()
    for header in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        assert_error(client.post("/reload", headers=header), 403, "Authorization", "CD4ML_ADMIN_TOKEN")


def test_reload_is_post_only(client):
    assert_error(client.get("/reload"), 405, None, "GET is not allowed", "POST")


# --- HTTP-level errors and security ---------------------------------------------------------------------

@pytest.mark.parametrize("method, path, status", [
    ("POST", "/prediction", 405), ("PUT", "/prediction", 405), ("DELETE", "/health", 405),
    ("PATCH", "/items", 405), ("POST", "/version", 405), ("POST", "/", 405),
    ("GET", "/nope", 404), ("GET", "/prediction/", 404), ("GET", "/model", 404), ("POST", "/model", 404),
    ("GET", "/static/../app.py", 404), ("GET", "/static/nothing.js", 404),
])
def test_wrong_methods_and_paths_answer_json(client, method, path, status):
    response = client.open(path, method=method)
    body = assert_error(response, status, None)
    if status == 405:
        assert "Allow" in response.headers and method in body["error"]


@pytest.mark.parametrize("path", ["/reload", "/prediction", "/model"])
def test_an_oversized_body_is_a_413(client, path):
    response = client.post(path, data=b"x" * (17 * 1024), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert_error(response, 413, None, "larger than 16384 bytes")


def test_no_endpoint_accepts_a_pickle(client):
    payload = pickle.dumps({"model": "evil"})
    for path in ("/reload", "/prediction", "/", "/model", "/items"):
        response = client.post(path, data=payload, content_type="application/octet-stream",
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code in (200, 404, 405), path
        if path == "/reload":  # the body is ignored: reload only asks the registry
            assert response.get_json()["version"] == "1"


@pytest.mark.parametrize("path", [f"/prediction?{GOOD}", "/prediction?date=x", "/health", "/nope", "/",
                                  "/static/style.css"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy


def test_a_real_bug_is_a_json_500_and_is_logged(app, caplog):
    """The catch-all exists for genuine bugs; this route is added here to be one."""

    @app.get("/bug")
    def bug():
        raise ZeroDivisionError("a bug")

    with caplog.at_level(logging.ERROR, logger="cd4ml.serving.app"):
        response = app.test_client().get("/bug")
    body = assert_error(response, 500, None, "bug in the model server")
    assert "ZeroDivisionError" not in body["error"]  # no internals leak to the client
    assert any("unexpected error on GET /bug" in r.getMessage() for r in caplog.records)


def test_store_nbr_is_required_when_the_model_knows_several_stores_but_not_47(sink):
    encoder = DictVectorizer().fit([{"store_nbr": "44"}, {"store_nbr": "45"}])
    model = LoadedModel("5", "run-5", "c", Pipeline([("encode", encoder)]), {99197: {"name": "Milk"}}, 0.0)
    store = ModelStore(Registry(model), 0)
    store.refresh()
    client = create_app(serving_settings(), store, sink).test_client()
    assert_error(client.get(f"/prediction?{GOOD}"), 400, "store_nbr", "store_nbr is required")
    assert_error(client.get(f"/prediction?{GOOD}&store_nbr=47"), 400, "store_nbr", "use one of 44, 45")
