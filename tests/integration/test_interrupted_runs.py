"""A pipeline killed in the middle leaves no run RUNNING: its tracking process ends the run FAILED,
and a run whose tracking process died too is marked FAILED when the next run starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mlflow import MlflowClient

from tests.conftest import ROOT


def running_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("sales-forecast")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'")


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_pipeline_leaves_no_run_running(embedded, workshop_data):
    uri = f"sqlite:///{embedded / 'mlflow/mlflow.db'}"
    env = {**os.environ, "CD4ML_DATA_DIR": str(embedded)}
    (embedded / "mlflow").mkdir(parents=True)
    client = MlflowClient(uri)
    client.search_experiments()  # create the store first, so that we never read it half-made
    # All 4,000 items: training takes long enough to be killed in the middle of it.
    pipeline = subprocess.Popen(
        [sys.executable, "run_python_script.py", "pipeline", "--data", str(workshop_data), "--items", "all"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        (run,) = wait_for(lambda: running_runs(client), 60, "a RUNNING run")
        pipeline.send_signal(signal.SIGKILL)  # the pipeline process only; its tracking process lives on
        pipeline.wait(timeout=30)
        ended = wait_for(lambda: client.get_run(run.info.run_id).info.status != "RUNNING" and client.get_run(run.info.run_id),
                         30, "the run to end")
        assert ended.info.status == "FAILED"
        assert not running_runs(client)
        # Nothing half-written is deployed: the killed run is not recorded as the last run, and
        # deploy refuses it by id (the gate never judged it, and --items all makes it an experiment: exit 6).
        from cd4ml.cli import main

        assert not (embedded / "last_run.json").exists()
        assert main(["deploy", "--run-id", run.info.run_id]) == 6
        assert not client.search_registered_models()
    finally:
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)


def test_a_run_abandoned_by_a_dead_process_is_failed_when_the_next_run_starts(embedded, tiny_data, capsys):
    from cd4ml.cli import main
    from cd4ml.tracking import HOST_TAG, PID_TAG

    uri = f"sqlite:///{embedded / 'mlflow/mlflow.db'}"
    assert main(["pipeline", "--data", str(tiny_data)]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sales-forecast")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    stale = client.create_run(experiment.experiment_id, tags={PID_TAG: dead.stdout.strip(), HOST_TAG: socket.gethostname()})
    assert client.get_run(stale.info.run_id).info.status == "RUNNING"
    assert main(["pipeline", "--data", str(tiny_data)]) == 0
    assert client.get_run(stale.info.run_id).info.status == "FAILED"
