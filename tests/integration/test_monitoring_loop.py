"""The feedback loop on the embedded default, with real processes and files: serve -> log -> label ->
monitor -> feed back -> retrain -> gate -> deploy.

The generator plays the world: a data set for January..June is the training data, the same seed's
first two weeks of July are the sales that arrive later (two date ranges of one seed give the same
rows on the dates they share). The model server is the real Flask app with the real registry and
the real JSONL sink; the commands are the real CLI, tracking to a local MLflow store.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, timedelta

import numpy as np
import pytest
from mlflow import MlflowClient

from cd4ml.cli import _allowed_types, main
from cd4ml.config import load_settings
from cd4ml.events import JsonlSink
from cd4ml.metrics import evaluate
from cd4ml.problems.favorita import schema
from cd4ml.problems.favorita.generate import SizeSpec, generate
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from cd4ml.serving.registry_source import production_fetcher
from tests.conftest import HANDED_OUT_PARAMS, committed_params

TRAINING = SizeSpec("loop-training", (47,), 20, date(2016, 1, 1), date(2016, 6, 30))
ARRIVING = SizeSpec("loop-actuals", (47,), 20, date(2016, 7, 1), date(2016, 7, 14))


@pytest.fixture
def world(embedded, tmp_path, monkeypatch):
    generate(TRAINING, tmp_path / "generated", seed=42)
    generate(ARRIVING, tmp_path / "july", seed=42)
    training = tmp_path / "training" / schema.WORKSHOP_FILE
    training.parent.mkdir()
    shutil.copy(tmp_path / "generated" / schema.WORKSHOP_FILE, training)
    monkeypatch.setenv("CD4ML_DATA_SOURCE", str(training))
    every_item = HANDED_OUT_PARAMS.read_text().replace("items = [99197, 105574, 1963838]", 'items = "all"')
    assert 'items = "all"' in every_item
    monkeypatch.setenv("CD4ML_PARAMS", str(committed_params(tmp_path / "team", every_item)))  # the team's defaults
    return {"data": embedded, "training": training, "july": tmp_path / "july"}


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def serve_july(settings) -> int:
    """Every product of the deployed model for every day of July 1..14, through the real app; the
    first week asked twice. Returns the number of forecasts served."""
    store = ModelStore(production_fetcher(settings.tracking, _allowed_types(settings)), poll_seconds=0)
    store.refresh()
    sink = JsonlSink(settings.paths.prediction_log)
    client = create_app(settings.serving, store, sink).test_client()
    served = 0
    try:
        items = [row["item_nbr"] for row in store.current.items]
        days = [ARRIVING.start + timedelta(days=n) for n in range(14)] + \
               [ARRIVING.start + timedelta(days=n) for n in range(7)]
        for day in days:
            for item in items:
                response = client.get(f"/prediction?date={day.isoformat()}&item_nbr={item}")
                assert response.status_code == 200, response.json
                served += 1
        assert client.get("/monitoring").status_code == 200
    finally:
        sink.close()
    return served


def by_hand(events_path, actuals_path) -> tuple[dict[str, float], int]:
    """Live accuracy computed here without the monitoring code: the latest forecast of each
    (date, item, store) joined to the actual sales of the drop's workshop file."""
    latest: dict[tuple, tuple[str, float]] = {}
    for line in events_path.read_text().splitlines():
        e = json.loads(line)
        key = (e["date"], e["item_nbr"], e["store_nbr"])
        if key not in latest or e["@timestamp"] >= latest[key][0]:
            latest[key] = (e["@timestamp"], e["prediction"])
    actual = {}
    with actuals_path.open(newline="") as f:
        for row in csv.DictReader(f):
            actual[(row["date"], int(row["item_nbr"]), schema.WORKSHOP_STORE)] = (
                max(float(row["unit_sales"]), 0.0), row["perishable"] == "1")
    keys = sorted(set(latest) & set(actual))
    metrics = evaluate(np.array([actual[k][0] for k in keys]), np.array([latest[k][1] for k in keys]),
                       np.array([actual[k][1] for k in keys]))
    return metrics, len(keys)


def test_serve_log_label_monitor_feed_back_retrain_gate_deploy(world, capsys):
    # train, gate and deploy a first model on January..June
    for step in ("pipeline", "acceptance", "deploy"):
        code, out, err = cli(capsys, step)
        assert code == 0, out + err
    settings = load_settings()
    client = MlflowClient(settings.tracking.uri)
    v1 = client.get_model_version_by_alias(settings.tracking.registered_model, "production")
    assert client.list_artifacts(v1.run_id, "profile")[0].path == "profile/training.json"

    # serve the first two weeks of July: every forecast is an event in data/predictions.jsonl
    served = serve_july(settings)
    events_path = settings.paths.prediction_log
    assert len(events_path.read_text().splitlines()) == served

    # July's sales arrive; monitor scores what production said against them
    code, out, err = cli(capsys, "monitor", "--actuals", world["july"])
    assert code in (0, 5), out + err
    report = json.loads(settings.paths.monitoring_report.read_text())
    expected, rows = by_hand(events_path, world["july"] / schema.WORKSHOP_FILE)
    accuracy = report["accuracy"]
    assert accuracy["rows"] == rows > 200
    assert accuracy["metrics"] == pytest.approx(expected, rel=1e-12)
    assert accuracy["matched_events"] + accuracy["unmatched_events"] == served
    assert report["events"]["events"] == served and report["skipped"] == {}
    assert report["model"]["version"] == str(v1.version) and report["model"]["run_id"] == v1.run_id
    validation = client.get_run(v1.run_id).data.metrics
    assert report["model"]["validation"] == {k: validation[k] for k in ("r2", "nwrmsle", "mae")}
    assert set(report["drift"]) == {"items", "weekdays", "forecast"}
    assert (code == 5) == bool(report["alerts"])
    assert f"live accuracy on {rows:,} forecasts with actuals" in out
    # ... logged as a monitoring run, linked to the deployed version
    runs = client.search_runs([client.get_experiment_by_name("sales-forecast-monitoring").experiment_id])
    assert runs[0].info.run_id == report["mlflow_run_id"]
    assert runs[0].data.tags["model.version"] == str(v1.version) and runs[0].data.tags["model.run_id"] == v1.run_id
    assert runs[0].data.metrics["live_r2"] == pytest.approx(expected["r2"])

    # feed the arrived sales back into the training data, retrain, gate, deploy
    code, out, err = cli(capsys, "feedback", "--actuals", world["july"])
    assert code == 0, out + err
    assert f"added {rows:,} rows (2016-07-01 .. 2016-07-14" in out  # the drop has exactly the rows we scored
    code, out, err = cli(capsys, "feedback", "--actuals", world["july"])
    assert code == 0 and "nothing new" in out and f"skipped {rows:,} already present" in out
    for step in ("pipeline", "acceptance", "deploy"):
        code, out, err = cli(capsys, step)
        assert code == 0, out + err
    v2 = client.get_model_version_by_alias(settings.tracking.registered_model, "production")
    assert int(v2.version) == int(v1.version) + 1
    first, second = client.get_run(v1.run_id).data.tags, client.get_run(v2.run_id).data.tags
    assert first["data.sha256"] != second["data.sha256"]
    assert int(second["data.rows_read"]) == int(first["data.rows_read"]) + rows
