"""deploy and rollback reach a model server of the same data folder at once, not at its next poll:
a real `mlflow server`, the CLI in fresh processes and `serve` under gunicorn with two workers
polling only every hour."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from benchmarks.workshop import with_trees
from tests.conftest import ROOT, committed_params, served


def cli(env: dict, *argv: str) -> str:
    done = subprocess.run([sys.executable, "run_python_script.py", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def every_worker_serves(url: str, version: str, seconds: float = 30) -> bool:
    """20 answers in a row from this version (so from every worker) within `seconds`; the poll is an hour."""
    deadline, streak = time.monotonic() + seconds, 0
    while streak < 20 and time.monotonic() < deadline:
        streak = streak + 1 if requests.get(f"{url}/version", timeout=5).json().get("model_version") == version else 0
        if not streak:
            time.sleep(0.05)
    return streak >= 20


def test_deploy_and_rollback_nudge_the_local_server(mlflow_server, tiny_data, tmp_path):
    team = tmp_path / "team"  # the team's defaults, committed twice (50, then 100 trees): two candidates
    params = {trees: with_trees((ROOT / "params.toml").read_text(), trees) for trees in (50, 100)}
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "CD4ML_DATA_DIR": str(tmp_path / "data"),
           "CD4ML_DATA_SOURCE": str(tiny_data), "CD4ML_TRACKING_REGISTERED_MODEL": f"nudge-{tmp_path.name}",
           "CD4ML_SERVING_POLL_SECONDS": "3600"}
    env.pop("CD4ML_ADMIN_TOKEN", None)  # no POST /reload: only the nudge can move the server
    defaults = committed_params(team, params[50], "50 trees")
    for command in ("pipeline", "acceptance", "deploy"):
        cli({**env, "CD4ML_PARAMS": str(defaults)}, command)

    with served(env) as url:
        assert every_worker_serves(url, "1")

        committed_params(team, params[100], "100 trees")
        for command in ("pipeline", "acceptance"):
            cli({**env, "CD4ML_PARAMS": str(defaults)}, command)
        out = cli({**env, "CD4ML_PARAMS": str(defaults)}, "deploy")
        assert "v1 -> v2" in out and "the local model server follows now" in out
        assert every_worker_serves(url, "2"), "deploy did not reach the server before its next poll"

        out = cli(env, "rollback")
        assert "v2 -> v1" in out and "the local model server follows now" in out
        assert every_worker_serves(url, "1"), "rollback did not reach the server before its next poll"
        assert len(list((tmp_path / "data").glob("reload-*.stamp"))) == 1  # workers come and go; the stamp stays
    assert not list((tmp_path / "data").glob("reload-*.stamp"))  # a stopped server is not nudged
    assert "a model server picks it up within 3600 s" in cli(env, "rollback", "--to", "2")
