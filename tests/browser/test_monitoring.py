"""The monitoring page: rendered by Flask (test client) and looked at in a real browser.

The page reads the event log the server writes and the last report of `monitor`; here the
report is built by the monitoring code itself (gather, build, write_latest) from the events the
server really wrote, a training profile of the tiny data and its actual sales, without MLflow.
The browser test drives Debian's chromium through Playwright against the real gunicorn server.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from cd4ml.config import DataSettings, load_settings
from cd4ml.events import JsonlSink, prediction_event
from cd4ml.monitoring.jsonl_events import JsonlEvents
from cd4ml.monitoring.window import Window
from cd4ml.monitoring.profile import training_profile
from cd4ml.monitoring.run import Deployed, build, gather, read_actuals, write_latest
from cd4ml.problems import get_problem
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from tests.browser.test_form import CHROMIUM, needs_chromium, open_page
from tests.serving_helpers import Registry, loaded, model_a, serving_settings, start_server, stop_server, wait_for

DAYS = ["2016-08-01", "2016-08-02", "2016-08-03"]
ITEMS = [99197, 105574, 1963838]


@pytest.fixture(scope="module")
def v1(tiny_data):
    return loaded(model_a(tiny_data), "1")


@pytest.fixture(scope="module")
def profile(tiny_data, v1):
    problem = get_problem("favorita")
    data = DataSettings(source=tiny_data, items=None, stores=None, max_bad_rows=0)
    table = problem.collect(problem.rows(problem.open(data), data))
    return training_profile(table.inputs["item_nbr"].to_numpy(), table.dates, table.target,
                            v1.model.predict(table.inputs.tail(3000)))


def write_report(data_dir: Path, tiny_data: Path, profile: dict) -> dict:
    """What `monitor --actuals tiny_data` writes, from the events in data_dir (MLflow left out)."""
    settings = load_settings(environ={"CD4ML_DATA_DIR": str(data_dir)})
    now = datetime.now(timezone.utc)
    window = Window(now - timedelta(days=7), now + timedelta(minutes=1))
    source = JsonlEvents(settings.paths.prediction_log)
    actuals, repeated = read_actuals(settings, tiny_data)
    stats, joined = gather(source, window, actuals)
    deployed = Deployed("sales-forecast", "1", "run-1", {"r2": 0.8, "nwrmsle": 0.5, "mae": 3.0}, profile, None)
    report = build(settings, window, source, stats, joined, actuals, repeated, deployed, now)
    write_latest(settings.paths.monitoring_report, report)
    return report


@pytest.fixture
def app_and_log(v1, tmp_path):
    store = ModelStore(Registry(v1), poll_seconds=0)
    store.refresh()
    sink = JsonlSink(tmp_path / "data" / "predictions.jsonl")
    yield create_app(serving_settings(), store, sink), sink
    sink.close()


def forecast_all(get) -> int:
    for day in DAYS:
        for item in ITEMS:
            assert get(f"/prediction?date={day}&item_nbr={item}&store_nbr=47").status_code == 200
    return len(DAYS) * len(ITEMS)


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


# --- a real browser against the real server ----------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.browser.test_form import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield found
        found.close()


@needs_chromium
def test_the_monitoring_page_in_a_browser(browser, v1, tiny_data, profile, tmp_path):
    process, url, log = start_server(tmp_path, {"1": v1.model})
    try:
        served = forecast_all(lambda path: requests.get(url + path, timeout=10))
        events = tmp_path / "data" / "predictions.jsonl"
        wait_for(lambda: events.exists() and len(events.read_text().splitlines()) >= served, what="the events written")
        write_report(tmp_path / "data", tiny_data, profile)
        context, page = open_page(browser, url)
        try:
            page.goto(url + "/monitoring")
            assert page.inner_text("#events") == str(served)
            assert page.inner_text("#serving-version") == "1"
            for chart in ("volume", "products", "latency", "versions", "psi", "forecast", "weekdays", "accuracy"):
                box = page.locator(f"#chart-{chart}").bounding_box()
                assert box and box["width"] > 300 and box["height"] > 100, chart  # drawn, two by two
            assert page.locator("#chart-volume rect").count() >= 3
            assert "Live accuracy on 9 forecasts" in page.inner_text("#accuracy")
            shot = tmp_path / "monitoring.png"
            page.screenshot(path=str(shot), full_page=True)
            shutil.copy(shot, tmp_path.parent / "monitoring-latest.png")  # to look at after a run
            assert page.outside == [] and page.problems == []
        finally:
            context.close()
    finally:
        stop_server(process)
