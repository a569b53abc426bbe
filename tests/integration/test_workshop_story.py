"""The workshop story end to end, against real processes: an `mlflow server`, the gunicorn model
server started by `serve`, and the Jenkinsfile's stages run by `ci`, with params.toml in git.

baseline accepted and deployed -> more trees, better, deployed -> 1 tree, hardly better than the
naive baseline and worse than production: the gate rejects it and the server keeps answering with
the old version -> git revert: the same metrics as before, deployed -> rollback moves production
back without retraining.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, params_file, served

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
TOKEN = "story-admin-token"
MILK = {"date": "2017-01-02", "item_nbr": 99197}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def change_trees(repo: Path, trees: int, message: str) -> None:
    path = repo / "params.toml"
    text, count = re.subn(r"(?m)^max_iter = \d+", f"max_iter = {trees}", path.read_text(), count=1)
    assert count == 1
    path.write_text(text)
    git(repo, "commit", "-qam", message)


def ci(env: dict) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "run_python_script.py", "ci", "--from", "Pipeline"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def last_run(data: Path) -> dict:
    return json.loads((data / "last_run.json").read_text())


def wait_for_version(url: str, version: str, seconds: float = 60, workers: int = 2) -> None:
    """Until 10 answers in a row come from this version, from every worker (/version names the one that answers)."""
    deadline, streak, seen = time.monotonic() + seconds, 0, set()
    while time.monotonic() < deadline and (streak < 10 or len(seen) < workers):
        answer = requests.get(f"{url}/version", timeout=2).json()
        if answer.get("model_version") == version:
            streak, seen = streak + 1, seen | {answer["worker"]}
        else:
            streak, seen = 0, set()
            time.sleep(0.1)
    assert streak >= 10 and len(seen) >= workers, f"the server did not move to version {version} within {seconds} s"


def wait_for_a_check_after(url: str, moment: float, seconds: float = 30) -> None:
    """Until every worker that answers has checked the registry since `moment`."""
    from datetime import datetime

    deadline, fresh = time.monotonic() + seconds, 0
    while time.monotonic() < deadline and fresh < 10:
        checked = requests.get(f"{url}/version", timeout=2).json()["last_check"]
        at = datetime.fromisoformat(checked.replace("Z", "+00:00")).timestamp()
        fresh = fresh + 1 if at > moment else 0
    assert fresh >= 10, "the server did not check the registry again"


def venv_python_or_fail() -> None:
    """The story runs in CI (.github/workflows/cd4ml.yml) and never skips: without .venv it fails, saying why."""
    if not VENV_PYTHON.exists():
        pytest.fail(f"{VENV_PYTHON} is missing: the Jenkinsfile's stages run it; create it with `make install-dev`.",
                    pytrace=False)


@pytest.fixture
def story(mlflow_server, workshop_data, tmp_path):
    venv_python_or_fail()
    repo = tmp_path / "repo"
    repo.mkdir()
    params_file(repo, {"model.name": "gradient_boosting", "model.gradient_boosting.max_iter": 50})
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=Attendee", "-c", "user.email=a@example.org", "commit", "-q", "--allow-empty", "-m", "start")
    git(repo, "config", "user.name", "Attendee")
    git(repo, "config", "user.email", "a@example.org")
    git(repo, "add", "params.toml")
    git(repo, "commit", "-qm", "baseline: 50 trees")
    data = tmp_path / "data"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "CD4ML_PARAMS": str(repo / "params.toml"),
        "CD4ML_DATA_DIR": str(data),
        "CD4ML_DATA_SOURCE": str(workshop_data / "store47-2016.csv"),
        "CD4ML_TRACKING_REGISTERED_MODEL": f"story-{tmp_path.name}",
        "CD4ML_SERVING_POLL_SECONDS": "1",
        "CD4ML_ADMIN_TOKEN": TOKEN,
    }
    return repo, data, env


def test_the_workshop_story(story):
    repo, data, env = story

    # 1. The baseline is accepted and deployed.
    code, log = ci(env)
    assert code == 0 and "Finished: SUCCESS" in log and "nothing -> v1" in log, log
    baseline = last_run(data)["metrics"]

    with served(env) as url:
        first = requests.get(f"{url}/prediction", params=MILK, timeout=5).json()
        assert first["model_version"] == "1"

        # 2. More trees: better, accepted, deployed; the server follows the alias by itself.
        change_trees(repo, 100, "more trees")
        code, log = ci(env)
        assert code == 0 and "v1 -> v2" in log, log
        more = last_run(data)["metrics"]
        assert more["r2"] > baseline["r2"]
        wait_for_version(url, "2")
        v2_answer = requests.get(f"{url}/prediction", params=MILK, timeout=5).json()
        assert v2_answer["model_version"] == "2"

        # 3. One tree: hardly the baseline; the gate rejects it, Deploy does not run, production is unchanged.
        change_trees(repo, 1, "only 1 tree")
        code, log = ci(env)
        assert code == 4, log
        assert re.search(r"Acceptance\s+FAILURE", log) and re.search(r"Deploy\s+NOT_BUILT", log), log
        assert "REJECTED" in log and "less than min_gain" in log and "worse than production v2" in log
        assert last_run(data)["metrics"]["r2"] < more["r2"] - 0.02
        wait_for_a_check_after(url, time.time())  # the server looked at the registry again ...
        assert requests.get(f"{url}/prediction", params=MILK, timeout=5).json() == v2_answer  # ... and kept v2

        # 4. git revert and run again: the same metrics as the accepted run, deployed.
        git(repo, "revert", "--no-edit", "HEAD")
        code, log = ci(env)
        assert code == 0 and "v2 -> v3" in log, log
        assert last_run(data)["metrics"] == more
        wait_for_version(url, "3")
        reverted = requests.get(f"{url}/prediction", params=MILK, timeout=5).json()
        assert reverted["prediction"] == v2_answer["prediction"]

        # 5. Rollback moves production back without retraining; POST /reload makes every worker follow now.
        done = subprocess.run([sys.executable, "run_python_script.py", "rollback"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "v3 -> v2" in done.stdout, done.stderr
        reload = requests.post(f"{url}/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert reload.status_code == 200 and reload.json()["version"] == "2"
        deadline, streak = time.monotonic() + 60, 0
        while streak < 30 and time.monotonic() < deadline:  # every worker: 30 answers in a row from v2
            answer = requests.get(f"{url}/prediction", params=MILK, timeout=5).json()["model_version"]
            streak = streak + 1 if answer == "2" else 0
        assert streak >= 30, "not every worker followed the rollback"
