"""MLflow down, and a production version whose artifacts are gone or corrupt, against real processes:
an `mlflow server` killed and started again on the same port, and `serve` (gunicorn, two workers,
polling the registry every 0.5 s). The CLI runs in this process (cd4ml.cli.main, everything it
prints caught, see tests.real_stack.cli_here), and once in a fresh one, as a user runs it. One run,
trained and accepted once for the module, is each test's v1 of a registered model of its own.

What is guaranteed:
  pipeline, acceptance, deploy   one line `error: ...`, exit 3; the gate fails closed (no verdict is
                                 written, nothing is deployed), production is unchanged
  serve starting, MLflow down    it starts, answers /health 503 "not ready" with the reason, and
                                 becomes ready by itself when MLflow is back
  serving, MLflow down           every worker keeps its model and answers; /version says why
  production -> broken version   the server keeps the model it has; /version and its log say why
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.real_stack import MlflowServer, Server, cli, cli_env, cli_here, every_worker

MILK = {"date": "2016-08-01", "item_nbr": 99197}


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-faults")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def accepted(mlflow, tiny_data, tmp_path_factory) -> str:
    """The id of a run the CLI trained on the tiny data and the gate accepted (training takes seconds)."""
    env = cli_env(tmp_path_factory.mktemp("accepted"), mlflow.url)
    for argv in (["pipeline", "--data", str(tiny_data)], ["acceptance"]):
        done = cli_here(env, *argv)
        assert done.returncode == 0, f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
    return json.loads((Path(env["CD4ML_DATA_DIR"]) / "last_run.json").read_text())["run_id"]


def deploy_v1(env: dict[str, str], run_id: str) -> None:
    """`deploy --run-id`: the accepted run becomes v1, in production, of this test's registered model."""
    done = cli_here(env, "deploy", "--run-id", run_id)
    assert done.returncode == 0 and "nothing -> v1" in done.stdout, f"{done.stdout}{done.stderr}"


@pytest.fixture
def up(mlflow):
    """The server is up at the start of each test, and again after it, whatever the test did to it."""
    if mlflow.process is None:
        mlflow.start()
    yield mlflow
    if mlflow.process is None:
        mlflow.start()


def one_line_exit_3(done) -> str:
    err = done.stderr.strip()
    assert done.returncode == 3, f"exit {done.returncode}: {done.stdout}{done.stderr}"
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "MLflow" in err or "MLFLOW_TRACKING_URI" in err, err
    return err


def test_pipeline_acceptance_and_deploy_with_mlflow_down_end_in_one_line_and_exit_3(up, accepted, tiny_data, tmp_path):
    env = cli_env(tmp_path, up.url)
    deploy_v1(env, accepted)
    assert cli_here(env, "pipeline", "--data", str(tiny_data)).returncode == 0  # a second run, not yet judged
    waiting = json.loads((tmp_path / "data/last_run.json").read_text())["run_id"]

    up.stop()
    one_line_exit_3(cli(env, "pipeline", "--data", str(tiny_data)))  # a fresh process, as a user runs it
    one_line_exit_3(cli_here(env, "acceptance"))  # fails closed: no verdict, not 0
    one_line_exit_3(cli_here(env, "deploy"))
    one_line_exit_3(cli_here(env, "rollback"))

    up.start()
    client = MlflowClient(up.url)
    assert "acceptance.verdict" not in client.get_run(waiting).data.tags
    name = env["CD4ML_TRACKING_REGISTERED_MODEL"]
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    # Nothing was left RUNNING by the attempts either.
    experiment = client.get_experiment_by_name("sales-forecast")
    assert not client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")


def test_serve_through_mlflow_outages_not_ready_then_ready_then_keeps_its_model(up, accepted, tmp_path):
    env = cli_env(tmp_path, up.url)
    deploy_v1(env, accepted)
    up.stop()
    server = Server(env, tmp_path / "server.log")
    try:
        # Started while MLflow is down: it runs, and says it is not ready and why.
        server.wait_listening()
        health = requests.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "not ready"
        assert "did not answer" in health.json()["reason"], health.json()
        prediction = requests.get(f"{server.url}/prediction", params=MILK, timeout=5)
        assert prediction.status_code == 503 and "No model is deployed yet" in prediction.json()["error"]

        # MLflow back on the same port: every worker becomes ready by itself.
        up.start()
        server.wait_logged("serving model version 1")  # both workers
        every_worker(server.url, "/health", lambda r: r.status_code == 200 and r.json()["model_version"] == "1")

        # MLflow down while serving: every worker keeps answering with its model and says why.
        up.stop()
        server.wait_logged("did not answer", workers=2)
        server.wait_logged("still serving version 1", workers=2)
        every_worker(server.url, "/version", lambda r: "did not answer" in (r.json()["last_error"] or ""))
        for _ in range(20):
            answer = requests.get(f"{server.url}/prediction", params=MILK, timeout=5)
            assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200

        # And back: the error clears.
        up.start()
        every_worker(server.url, "/version", lambda r: r.json()["last_error"] is None)
    finally:
        server.stop()
    assert "still serving version 1" in server.log.read_text()


def break_missing(model_dir: Path) -> None:
    shutil.rmtree(model_dir)


def break_corrupt(model_dir: Path) -> None:
    (skops,) = model_dir.rglob("model.skops")
    skops.write_bytes(b"\x00garbage, not a zip archive\xff" * 100)


def test_production_moved_to_a_version_with_missing_or_corrupt_artifacts_keeps_the_served_model(
    up, accepted, tiny_data, tmp_path
):
    env = cli_env(tmp_path, up.url)
    deploy_v1(env, accepted)
    server = Server(env, tmp_path / "server.log")
    try:
        server.wait_ready()
        server.wait_logged("serving model version 1")
        name = env["CD4ML_TRACKING_REGISTERED_MODEL"]
        for version, damage, words in (("2", break_missing, "cannot read"), ("3", break_corrupt, "cannot load")):
            assert cli_here(env, "pipeline", "--data", str(tiny_data)).returncode == 0
            assert cli_here(env, "acceptance").returncode == 0
            model_id = json.loads((tmp_path / "data/last_run.json").read_text())["model_uri"].rsplit("/", 1)[1]
            (model_dir,) = [p for p in up.artifacts.rglob(model_id) if p.is_dir()]
            damage(model_dir)
            done = cli_here(env, "deploy")
            assert done.returncode == 0, done.stderr  # the registry takes it: only loading can tell
            assert f"-> v{version}" in done.stdout

            server.wait_logged(f"{words} models:/{name}/{version}")  # both workers tried, and kept v1
            status = every_worker(
                server.url, "/version",
                lambda r, v=version, w=words: r.json()["model_version"] == "1" and w in (r.json()["last_error"] or "")
                and f"/{v}" in r.json()["last_error"],
            ).json()
            assert "roll back or redeploy" in status["last_error"]
            answer = requests.get(f"{server.url}/prediction", params=MILK, timeout=5)
            assert answer.status_code == 200 and answer.json()["model_version"] == "1"

            if version == "2":
                # The gate cannot compare a challenger with a champion it cannot load: it fails closed,
                # in one line, exit 2, naming the fix.
                assert cli_here(env, "pipeline", "--data", str(tiny_data)).returncode == 0  # a challenger
                gate = cli_here(env, "acceptance")
                err = gate.stderr.strip()
                assert gate.returncode == 2 and len(err.splitlines()) == 1, err
                assert f"{words} models:/{name}/{version}" in err and "roll back or redeploy" in err
                assert cli_here(env, "rollback", "--to", "1").returncode == 0
    finally:
        server.stop()
    log = server.log.read_text()
    assert "model refresh failed: cannot read models:/" in log and "cannot load models:/" in log
    assert "still serving version 1" in log
