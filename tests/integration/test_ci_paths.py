"""`ci` with the Jenkins job's parameters, against a real `mlflow server`: an experiment's build
reports the gate's verdict, never fails on it, and never deploys."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from mlflow import MlflowClient

from tests.conftest import ROOT
from tests.integration.test_workshop_story import venv_python_or_fail


def test_an_experiment_build_reports_a_rejection_succeeds_and_deploys_nothing(mlflow_server, workshop_data, tmp_path):
    venv_python_or_fail()  # the stages run .venv/bin/python, as Jenkins does
    name = f"ci-{tmp_path.name}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "CD4ML_DATA_DIR": str(tmp_path / "data"),
           "CD4ML_DATA_SOURCE": str(workshop_data / "store47-2016.csv"), "CD4ML_TRACKING_REGISTERED_MODEL": name}
    done = subprocess.run([sys.executable, "run_python_script.py", "ci", "--from", "Pipeline",
                           "--set", "model.gradient_boosting.max_iter=1"],  # one tree: the gate rejects it
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert done.stdout.splitlines()[0] == ("build kind: experiment (OVERRIDES='model.gradient_boosting.max_iter=1'): "
                                   "Install, Test, Pipeline, Acceptance (experiment); no Deploy")
    assert "run kind: experiment (--set model.gradient_boosting.max_iter=1); deploy refuses it" in log
    assert "REJECTED" in log and "caught: the build goes on" in log
    assert 'Stage "Acceptance" skipped due to when conditional' in log
    assert 'Stage "Deploy" skipped due to when conditional' in log
    assert re.search(r"Acceptance \(experiment\)\s+UNSTABLE", log) and re.search(r"Deploy\s+SKIPPED", log)
    assert done.stdout.rstrip().endswith("Finished: SUCCESS")
    assert MlflowClient(mlflow_server).search_model_versions(f"name = '{name}'") == []


def test_a_bad_override_stops_ci_before_any_stage(tmp_path):
    done = subprocess.run([sys.executable, "run_python_script.py", "ci", "--set", "model.nme=lasso"], cwd=ROOT,
                          env={**os.environ, "CD4ML_DATA_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: --set model.nme: ") and done.stderr.count("\n") == 1
