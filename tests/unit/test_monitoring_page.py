"""The monitoring page rendered by Flask (test client), around a stand-in for the registry's fetch.

The page reads the event log the server writes and the last report of `monitor`; here the report is
built by the monitoring code itself from the events the app really wrote (tests/monitoring_helpers.py).
tests/browser/test_monitoring.py looks at the same page in a real browser against the real server.
"""

from __future__ import annotations

import json
import re

import pytest

from cd4ml.events import JsonlSink, prediction_event
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from tests.monitoring_helpers import forecast_all, tiny_profile, write_report
from tests.serving_helpers import Registry, loaded, model_a, serving_settings


@pytest.fixture(scope="module")
def v1(tiny_data):
    return loaded(model_a(tiny_data), "1")


@pytest.fixture(scope="module")
def profile(tiny_data, v1):
    return tiny_profile(tiny_data, v1.model)


@pytest.fixture
def app_and_log(v1, tmp_path):
    store = ModelStore(Registry(v1), poll_seconds=0)
    store.refresh()
    sink = JsonlSink(tmp_path / "data" / "predictions.jsonl")
    yield create_app(serving_settings(), store, sink), sink
    sink.close()


# --- server-side rendering -------------------------------------------------------------------------

def test_without_events_or_report_the_page_says_what_to_do(app_and_log):
    app, _ = app_and_log
    html = app.test_client().get("/monitoring").get_data(as_text=True)
    assert "No prediction in the last 7 days" in html
    assert "No monitoring report yet" in html and "run_python_script.py monitor" in html


def test_the_page_shows_traffic_drift_and_live_accuracy(app_and_log, tiny_data, profile, tmp_path):
    app, sink = app_and_log
    client = app.test_client()
    served = forecast_all(client.get)
    sink.close()  # flush the events
    report = write_report(tmp_path / "data", tiny_data, profile)
    response = client.get("/monitoring")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="events">{served}<' in html
    for chart in ("volume", "products", "latency", "versions", "psi", "forecast", "weekdays", "accuracy"):
        assert f'<svg class="chart" id="chart-{chart}"' in html, chart
    assert report["accuracy"]["rows"] == served  # every forecast has its actual in the tiny data
    assert f'id="live-r2">{report["accuracy"]["metrics"]["r2"]:.4f}<' in html
    assert "Milk" in html and "v1 100%" in html
    assert "<script" not in html  # charts are drawn on the server
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url


def test_names_from_the_log_are_escaped(app_and_log, tmp_path):
    app, sink = app_and_log
    sink.close()
    event = prediction_event(date="2016-08-01", item_nbr=7, item_name='<b onmouseover="x()">Evil</b>', store_nbr=47,
                             onpromotion=False, prediction=3.0, model_version="<i>9</i>", run_id="r", latency_ms=1.0)
    (tmp_path / "data" / "predictions.jsonl").write_text(json.dumps(event) + "\n")
    html = app.test_client().get("/monitoring").get_data(as_text=True)
    assert "<b onmouseover" not in html and "<i>9</i>" not in html
    assert "&lt;b onmouseover=&#34;x()&#34;&gt;Evil&lt;/b&gt;" in html


def test_a_server_sending_events_to_fluentd_points_at_kibana(v1):
    class Fluent:  # the page only asks a sink where it writes; fluentd's writes nowhere local
        def emit(self, event):
            pass

        def close(self, timeout=5.0):
            pass

        def stats(self):
            return {"sink": "fluentd"}

    store = ModelStore(Registry(v1), poll_seconds=0)
    store.refresh()
    html = create_app(serving_settings(), store, Fluent()).test_client().get("/monitoring").get_data(as_text=True)
    assert "sends its prediction events to fluentd" in html and "Kibana" in html
