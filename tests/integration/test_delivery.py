"""The delivery loop against a real `mlflow server`: gate, registry, deploy, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from cd4ml.cli import main
from tests import conftest
from tests.conftest import free_port


def params_file(tmp_path: Path, max_iter: int = 50) -> Path:
    """Gradient boosting with max_iter trees, whatever the working tree's params say: 50 are accepted, 1 is rejected."""
    changes = {"model.name": "gradient_boosting", "model.gradient_boosting.max_iter": max_iter}
    return conftest.params_file(tmp_path, changes, name=f"params-{max_iter}.toml")


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def delivery(remote, workshop_data, tmp_path, monkeypatch):
    """A fresh registered-model name per test on the shared server, and the workshop data."""
    monkeypatch.setenv("CD4ML_TRACKING_REGISTERED_MODEL", f"forecast-{tmp_path.name}")
    monkeypatch.setenv("CD4ML_DATA_SOURCE", str(workshop_data / "store47-2016.csv"))
    monkeypatch.setenv("BUILD_NUMBER", "42")
    return MlflowClient(remote), f"forecast-{tmp_path.name}"


def test_an_accepted_model_is_registered_with_its_lineage_and_deployed(delivery, tmp_path, capsys):
    client, name = delivery
    assert cli(capsys, "--params", params_file(tmp_path), "pipeline")[0] == 0
    run_id = json.loads((tmp_path / "data/last_run.json").read_text())["run_id"]
    code, out, _ = cli(capsys, "--params", params_file(tmp_path), "acceptance")
    assert code == 0 and "ACCEPTED" in out and run_id in out and "no production model yet" in out
    assert client.get_run(run_id).data.tags["acceptance.verdict"] == "accepted"

    code, out, _ = cli(capsys, "--params", params_file(tmp_path), "deploy")
    assert code == 0 and "nothing -> v1" in out
    assert client.get_run(run_id).data.tags["cd4ml.run_kind"] == "candidate"
    version = client.get_model_version_by_alias(name, "production")
    assert version.version == "1" and version.run_id == run_id
    tags = version.tags
    assert tags["accepted"] == "true" and tags["build_number"] == "42"
    assert len(tags["data.sha256"]) == 64 and tags["git.commit"]


def test_a_rejected_model_is_never_deployed(delivery, tmp_path, capsys):
    client, name = delivery
    good, bad = params_file(tmp_path), params_file(tmp_path, max_iter=1)  # one tree: hardly the baseline
    for step in ("pipeline", "acceptance", "deploy"):
        assert cli(capsys, "--params", good, step)[0] == 0
    assert cli(capsys, "--params", bad, "pipeline")[0] == 0
    code, out, _ = cli(capsys, "--params", bad, "acceptance")
    assert code == 4 and "REJECTED" in out and "less than min_gain" in out and "worse than production v1" in out
    code, _, err = cli(capsys, "--params", bad, "deploy")
    assert code == 4 and "rejected by the acceptance gate" in err
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert len(client.search_model_versions(f"name = '{name}'")) == 1


def test_rollback_moves_production_back_and_forth_without_retraining(delivery, tmp_path, capsys):
    client, name = delivery
    for _ in range(2):  # two builds of the defaults (the data could have grown between them): two versions
        for step in ("pipeline", "acceptance", "deploy"):
            assert cli(capsys, "--params", params_file(tmp_path), step)[0] == 0
    assert client.get_model_version_by_alias(name, "production").version == "2"
    code, out, _ = cli(capsys, "rollback")
    assert code == 0 and "v2 -> v1" in out
    assert client.get_model_version_by_alias(name, "production").version == "1"
    code, out, _ = cli(capsys, "rollback", "--to", "2")
    assert code == 0 and "v1 -> v2" in out
    code, _, err = cli(capsys, "rollback", "--to", "7")
    assert code == 2 and "no accepted version 7" in err


@pytest.mark.parametrize("argv, reason", [
    (["--set", "model.gradient_boosting.max_iter=100"], "--set model.gradient_boosting.max_iter=100"),
    (["--model", "gradient_boosting"], "--model gradient_boosting"),  # the default model, yet a flag: an experiment
])
def test_an_experiment_is_tracked_and_judged_but_never_deployed(delivery, tmp_path, capsys, argv, reason):
    client, name = delivery
    for step in ("pipeline", "acceptance", "deploy"):
        assert cli(capsys, "--params", params_file(tmp_path), step)[0] == 0
    code, out, err = cli(capsys, "--params", params_file(tmp_path), "pipeline", *argv)
    assert code == 0 and f"run kind: experiment ({reason}); deploy refuses it" in err
    run_id = json.loads((tmp_path / "data/last_run.json").read_text())["run_id"]
    tags = client.get_run(run_id).data.tags
    assert tags["cd4ml.run_kind"] == "experiment" and tags["cd4ml.run_kind_reason"] == reason
    code, out, _ = cli(capsys, "--params", params_file(tmp_path), "acceptance")
    assert code == 0 and "ACCEPTED" in out  # judged by the gate as any run
    code, _, err = cli(capsys, "--params", params_file(tmp_path), "deploy")
    assert code == 6 and err.count("\n") == 1
    assert f"run {run_id} is an experiment ({reason}); deploy takes only production candidates." in err
    assert "commit the change to the problem's params file on main" in err
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert len(client.search_model_versions(f"name = '{name}'")) == 1


def test_compare_shows_the_experiments_beside_production_and_links_the_mlflow_ui(delivery, tmp_path, capsys,
                                                                               monkeypatch):
    from urllib.parse import unquote

    client, name = delivery
    monkeypatch.setenv("CD4ML_TRACKING_EXPERIMENT", f"compare-{tmp_path.name}")  # this test's runs only
    for step in ("pipeline", "acceptance", "deploy"):
        assert cli(capsys, "--params", params_file(tmp_path), step)[0] == 0
    production = json.loads((tmp_path / "data/last_run.json").read_text())["run_id"]
    assert cli(capsys, "--params", params_file(tmp_path), "pipeline", "--set", "model.gradient_boosting.max_iter=60")[0] == 0
    assert cli(capsys, "--params", params_file(tmp_path), "acceptance")[0] == 0
    experiment = json.loads((tmp_path / "data/last_run.json").read_text())["run_id"]
    code, out, _ = cli(capsys, "--params", params_file(tmp_path), "compare")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["run", "id", "model", "verdict", "r2", "nwrmsle"]
    assert lines[1].startswith(f"production v1   {production[:8]}  gradient_boosting   accepted")
    assert lines[2].startswith(f"experiment      {experiment[:8]}  gradient_boosting   accepted")
    assert lines[2].endswith("--set model.gradient_boosting.max_iter=60")
    r2 = client.get_run(experiment).data.metrics
    assert f"{r2['r2']:10.4f}" in lines[2] and f"{r2['acceptance.production_r2']:19.4f}" in lines[2]
    assert len(lines) == 5  # no other run: the candidate that is production is not an experiment
    experiment_id = client.get_run(experiment).info.experiment_id
    search, pair = (unquote(line) for line in lines[3:])
    assert search == f"{client.tracking_uri}/#/experiments/{experiment_id}?searchFilter=tags.`cd4ml.run_kind` = 'experiment'"
    assert pair == f'{client.tracking_uri}/#/compare-runs?runs=["{production}", "{experiment}"]&experiments=["{experiment_id}"]'
    assert [r.info.run_id for r in client.search_runs([experiment_id], "tags.`cd4ml.run_kind` = 'experiment'")] == [experiment]


def test_a_run_off_main_is_an_experiment(delivery, tmp_path, capsys, monkeypatch):
    client, name = delivery
    monkeypatch.setenv("CD4ML_BRANCH", "my-idea")
    code, _, err = cli(capsys, "--params", params_file(tmp_path), "pipeline")
    assert code == 0 and "run kind: experiment (branch my-idea, not main)" in err
    assert cli(capsys, "--params", params_file(tmp_path), "acceptance")[0] == 0
    assert cli(capsys, "--params", params_file(tmp_path), "deploy")[0] == 6
    assert not client.search_model_versions(f"name = '{name}'")


def test_the_gate_fails_closed_when_mlflow_cannot_be_reached(delivery, tmp_path, capsys, monkeypatch):
    assert cli(capsys, "--params", params_file(tmp_path), "pipeline")[0] == 0
    recorded = json.loads((tmp_path / "data/last_run.json").read_text())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    code = main(["acceptance", "--run-id", recorded["run_id"]])
    assert code == 3 and "did not answer" in capsys.readouterr().err


def test_the_delivery_commands_use_explicit_clients_not_mlflows_global_uri(delivery, tmp_path, capsys, monkeypatch):
    """A decoy global tracking URI is neither used (registering, loading production for the gate)
    nor changed: the registry and the gate talk to the configured store through their own clients."""
    import mlflow

    client, name = delivery
    decoy = f"sqlite:///{tmp_path / 'decoy.db'}"
    mlflow.set_tracking_uri(decoy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)  # set_tracking_uri exports it: configure the real one
    try:
        for step in ("pipeline", "acceptance", "deploy", "pipeline", "acceptance"):
            code, out, err = cli(capsys, "--params", params_file(tmp_path), step)
            assert code == 0, err
        assert "production v1 scores" in out  # the gate loaded production from the configured store
        assert mlflow.get_tracking_uri() == decoy
    finally:
        mlflow.set_tracking_uri(None)
    assert client.get_model_version_by_alias(name, "production").version == "1"
