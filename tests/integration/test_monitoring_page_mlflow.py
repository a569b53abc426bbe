"""/monitoring on a server whose events go to fluentd (the Docker stack): the latest report from MLflow.

Such a server has no local event log, so the report `monitor` logged to MLflow (the artifact
monitoring/report.json of its monitoring run) is what the page shows. Everything here is real:
an `mlflow server` process (tests/conftest.py), the `monitor` command, the Flask app (its test
client) and, in the last test, gunicorn. fluentd is simply absent: the sink points at a port
nobody listens on and counts its dropped events, as it does when fluentd is down.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from cd4ml.cli import _allowed_types, main
from cd4ml.config import load_settings
from cd4ml.events import FluentSink, prediction_event
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from cd4ml.serving.registry_source import production_fetcher
from cd4ml.serving.reports import mlflow_report_cache
from tests.conftest import free_port
from tests.real_stack import deployed_server
from tests.serving_helpers import wait_for

FIRST_DAY = datetime(2026, 11, 16, tzinfo=timezone.utc).timestamp()


def write_events(path: Path, n: int) -> Path:
    """n events, one an hour from 2026-11-16 00:00 UTC."""
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps(prediction_event(
                date="2026-11-30", item_nbr=100 + i % 3, item_name=f"Item {100 + i % 3}", store_nbr=47,
                onpromotion=False, prediction=2.0 + i % 5, model_version="1", run_id="run-1", latency_ms=0.5,
                at=FIRST_DAY + 3600 * i)) + "\n")
    return path


def monitor(capsys, events: Path, until: str) -> dict:
    """`monitor` over the events from 2026-11-16 to `until` (a day, included); its report."""
    code = main(["monitor", "--events", str(events), "--since", "2026-11-16", "--until", until, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out[out.index("{"):])


@pytest.fixture(scope="module")
def first(mlflow_server, tmp_path_factory) -> tuple[str, dict]:
    """(experiment, report): a monitoring experiment of this module's own on the shared mlflow server,
    holding one report of `monitor` over 6 days of 150 events (144 in the window)."""
    folder = tmp_path_factory.mktemp("monitoring-page")
    name = f"monitoring-{folder.name}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CD4ML_DATA_DIR", str(folder / "data"))
        env.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        env.setenv("CD4ML_MONITORING_EXPERIMENT", name)
        code = main(["monitor", "--events", str(write_events(folder / "elsewhere.jsonl", 150)), "--since", "2026-11-16",
                     "--until", "2026-11-21", "--json"])
    assert code == 0
    report = json.loads((folder / "data" / "monitoring" / "latest.json").read_text())
    assert report["events"]["events"] == 144
    return name, report


@pytest.fixture
def experiment(first, remote, monkeypatch) -> str:
    """The module's monitoring experiment, for this test (its own data folder, the real mlflow server)."""
    monkeypatch.setenv("CD4ML_MONITORING_EXPERIMENT", first[0])
    return first[0]


@pytest.fixture
def empty_experiment(remote, monkeypatch, tmp_path) -> str:
    """A monitoring experiment of this test's own, without a report."""
    name = f"monitoring-{tmp_path.name}"
    monkeypatch.setenv("CD4ML_MONITORING_EXPERIMENT", name)
    return name


def fluentd_app(settings):
    """The model server as gunicorn builds it when FLUENTD_HOST is set: no local log, a ReportCache."""
    store = ModelStore(production_fetcher(settings.tracking, _allowed_types(settings)), poll_seconds=0)
    sink = FluentSink("127.0.0.1", free_port(), timeout=0.2)
    reports = mlflow_report_cache(settings)
    return create_app(settings.serving, store, sink, reports), reports, sink


def test_an_experiment_without_a_report_says_how_to_make_one(empty_experiment, remote):
    app, reports, sink = fluentd_app(load_settings())
    try:
        assert reports.refresh()
        html = app.test_client().get("/monitoring").get_data(as_text=True)
        assert 'id="no-report"' in html
        assert f"No monitoring report in MLflow at {remote}, experiment {empty_experiment}" in html
    finally:
        sink.close(0.5)


def test_the_page_shows_the_latest_report_logged_to_mlflow(experiment, first, remote, tmp_path, capsys):
    events = write_events(tmp_path / "elsewhere.jsonl", 150)
    first = first[1]
    app, reports, sink = fluentd_app(load_settings())
    client = app.test_client()
    try:
        assert reports.refresh()
        html = client.get("/monitoring").get_data(as_text=True)
        assert f"The latest report in MLflow at {remote}" in html and first["mlflow_run_id"] in html
        assert "(144 events" in html and 'id="report-status"' in html
        assert "sends its prediction events to fluentd" in html  # the traffic is Kibana's

        second = monitor(capsys, events, "2026-11-17")  # a newer run, 2 days: 48 events
        html = client.get("/monitoring").get_data(as_text=True)
        assert first["mlflow_run_id"] in html  # cached until the next refresh
        reports.refresh()
        html = client.get("/monitoring").get_data(as_text=True)
        assert second["mlflow_run_id"] in html and "(48 events" in html and first["mlflow_run_id"] not in html
    finally:
        sink.close(0.5)


def test_an_unreachable_mlflow_is_said_on_the_page(empty_experiment, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    app, reports, sink = fluentd_app(load_settings())
    try:
        assert not reports.refresh()
        response = app.test_client().get("/monitoring")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert f"MLflow at {url}, experiment {empty_experiment} cannot be reached" in html
        assert "did not answer" in html and 'id="mlflow-unreachable"' in html
    finally:
        sink.close(0.5)


def test_a_hanging_mlflow_never_holds_up_the_page(empty_experiment, monkeypatch):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{silent.getsockname()[1]}")
        app, reports, sink = fluentd_app(load_settings())
        try:
            reports.start()  # its first check now waits for an answer that never comes
            html = app.test_client().get("/monitoring").get_data(as_text=True)
            assert "Asking MLflow at" in html
        finally:
            reports.stop(10)
            sink.close(0.5)
    assert reports.state.error and "did not answer" in reports.state.error


def test_gunicorn_with_fluentd_shows_the_mlflow_report(experiment, remote, tiny_data, tmp_path):
    # the first test of this module may have logged a newer report: the latest is what the page shows
    from mlflow import MlflowClient

    client = MlflowClient(remote)
    (latest,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id],
                                   order_by=["attributes.start_time DESC"], max_results=1)
    report = json.loads(Path(client.download_artifacts(latest.info.run_id, "monitoring/report.json",
                                                       str(tmp_path))).read_text())
    with deployed_server(tmp_path, remote, tiny_data, workers=1, FLUENTD_HOST="127.0.0.1", FLUENTD_PORT=str(free_port()),
                         CD4ML_MONITORING_EXPERIMENT=experiment) as server:
        url = server.url
        forecast = requests.get(f"{url}/prediction?date=2016-08-01&item_nbr=99197&store_nbr=47", timeout=10)
        assert forecast.status_code == 200  # fluentd is down: the event is dropped, the forecast is not
        html = wait_for(lambda: (lambda text: report["mlflow_run_id"] in text and text)(
            requests.get(f"{url}/monitoring", timeout=10).text), seconds=60, what="the report from MLflow on the page")
        assert f"({report['events']['events']} events" in html and "sends its prediction events to fluentd" in html
        assert not (tmp_path / "data" / "predictions.jsonl").exists()
