"""The whole pipeline through the CLI, tracked in a real `mlflow server` and in the embedded store."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from cd4ml.cli import main
from tests.conftest import free_port


def run_json(capsys, *argv: str) -> dict:
    assert main(["pipeline", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def folder_sha256(folder) -> str:
    """The documented fingerprint of a Kaggle folder, computed independently here."""
    lines = "".join(
        f"{name}:{hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n"
        for name in sorted(["holidays_events.csv", "items.csv", "stores.csv", "train.csv"])
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def test_a_run_on_a_real_mlflow_server_logs_everything(remote, tiny_data, capsys, monkeypatch):
    monkeypatch.setenv("BUILD_NUMBER", "17")
    result = run_json(capsys, "--data", str(tiny_data), "--items", "all")
    client = MlflowClient(remote)
    run = client.get_run(result["run_id"])

    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "gradient_boosting"
    assert run.data.params["model.loss"] == "poisson"
    assert run.data.params["data.items"] == "all"
    for name in ("r2", "nwrmsle", "mae", "baseline_r2", "baseline_nwrmsle", "best_r2", "rows_valid"):
        assert name in run.data.metrics
    assert run.data.metrics["r2"] == pytest.approx(result["metrics"]["r2"])
    tags = run.data.tags
    assert len(tags["git.commit"]) in (40, len("unknown")) and tags["git.dirty"] in ("true", "false", "unknown")
    assert tags["data.sha256"] == folder_sha256(tiny_data)
    assert int(tags["data.rows_read"]) == sum(1 for _ in open(tiny_data / "train.csv")) - 1
    assert tags["build_number"] == "17"

    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/predicted_vs_actual.png", "plots/residuals_by_date.png", "plots/feature_importance.png"}

    mlflow.set_tracking_uri(remote)
    model = mlflow.sklearn.load_model(result["model_uri"])
    request = pd.DataFrame([{"date": "2017-01-02", "item_nbr": 99197, "store_nbr": 47, "onpromotion": False}])
    assert model.predict(request)[0] > 0
    info = mlflow.models.get_model_info(result["model_uri"])
    assert {c["name"] for c in info.signature.inputs.to_dict()} == {"date", "item_nbr", "store_nbr", "onpromotion"}
    requirements = mlflow.pyfunc.get_model_dependencies(result["model_uri"])
    pinned = open(requirements).read().split()
    assert {line.split("==")[0] for line in pinned} == {"mlflow", "scikit-learn", "numpy", "scipy", "pandas"}
    assert f"scikit-learn=={version('scikit-learn')}" in pinned


def test_a_failing_run_is_marked_failed_not_left_running(remote, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    text = (
        "id,date,item_nbr,unit_sales,family,class,perishable,year,month,day,dayofweek,days_til_end_of_data,dayoff\n"
        "1,2016-01-04,99197,ten,DAIRY,2112,1,2016,1,4,0,9,False\n"
    )
    bad.write_text(text)
    assert main(["pipeline", "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv line 2" in err and "unit_sales" in err and "'ten'" in err and "Traceback" not in err
    client = MlflowClient(remote)
    (experiment,) = [e for e in client.search_experiments() if e.name == "sales-forecast"]
    latest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert latest.info.status == "FAILED"


def test_same_commit_data_and_params_give_the_same_metrics_and_predictions(embedded, tiny_data, capsys):
    first = run_json(capsys, "--data", str(tiny_data))
    second = run_json(capsys, "--data", str(tiny_data))
    assert first["run_id"] != second["run_id"]
    assert first["metrics"] == second["metrics"]
    requests = pd.DataFrame({
        "date": [f"2017-01-{d:02d}" for d in range(1, 29)], "item_nbr": [99197, 105574, 1963838, 99197] * 7,
        "store_nbr": [47, 44] * 14, "onpromotion": [False, True] * 14,
    })
    mlflow.set_tracking_uri(first["tracking_uri"])
    a = mlflow.sklearn.load_model(first["model_uri"]).predict(requests)
    b = mlflow.sklearn.load_model(second["model_uri"]).predict(requests)
    assert np.array_equal(a, b)


def test_the_run_id_is_recorded_for_the_acceptance_gate(embedded, tiny_data, capsys):
    result = run_json(capsys, "--data", str(tiny_data / "store47-2016.csv"))
    recorded = json.loads((embedded / "last_run.json").read_text())
    assert recorded["run_id"] == result["run_id"]


def test_an_unreachable_tracking_server_is_exit_code_3(tiny_data, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CD4ML_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    assert main(["pipeline", "--data", str(tiny_data)]) == 3
    err = capsys.readouterr().err
    assert "did not answer" in err and "MLFLOW_TRACKING_URI" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "missing.csv"], "missing.csv does not exist"),
        (["--model", "forest"], "error: --model must be one of"),  # the flag, not params.toml
        (["--items", "milk"], 'error: --items must be "all" or a list of numbers'),
    ],
)
def test_bad_input_ends_in_one_line_and_exit_code_2(embedded, capsys, argv, message):
    assert main(["pipeline", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_missing_columns_name_the_file_and_the_columns(embedded, tmp_path, capsys):
    path = tmp_path / "s.csv"
    path.write_text("id,date,unit_sales\n1,2016-01-01,2\n")
    assert main(["pipeline", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "s.csv line 1" in err and "item_nbr" in err and "needs columns" in err
