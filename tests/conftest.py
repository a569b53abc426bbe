"""Shared fixtures: generated data sets, an embedded store per test, and a real `mlflow server`.

Every test runs from tests/params.toml, the params.toml the workshop hands out, not from the working
tree's: changing params.toml is what the exercises ask an attendee to do, and must not change what the
tests test. When the defaults in params.toml change, copy it there (tests/unit/test_handed_out_params.py
fails until then).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from benchmarks.processes import free_port, wait_until_up  # noqa: F401 (tests import them from here)
from benchmarks.processes import mlflow_server as local_mlflow_server
from cd4ml.problems.favorita.generate import generate

ROOT = Path(__file__).resolve().parent.parent
HANDED_OUT_PARAMS = ROOT / "tests" / "params.toml"


def pytest_configure(config) -> None:
    """Point every command a test runs (in this process or a child) at the handed-out params, on main:
    the tests test what main does, whichever branch this checkout is on (cd4ml/run_kind.py: a run
    elsewhere is an experiment, which deploy refuses; tests of that rule set the branch themselves)."""
    os.environ["CD4ML_PARAMS"] = str(HANDED_OUT_PARAMS)
    os.environ["CD4ML_BRANCH"] = "main"


def params_text(changes: dict[str, object] | None = None) -> str:
    """The handed-out params.toml with some values changed: {"model.gradient_boosting.max_iter": 5}."""
    text = HANDED_OUT_PARAMS.read_text()
    for dotted, value in (changes or {}).items():
        table, _, key = dotted.rpartition(".")
        start = 0 if not table else text.index(f"\n[{table}]") + 1
        end = re.compile(r"^\[", re.M).search(text, start + 1)
        end = end.start() if end else len(text)
        literal = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
        section, count = re.subn(rf"(?m)^({re.escape(key)}\s*=\s*)(?:\"[^\"]*\"|[^\s#]+)",
                                 lambda m: m.group(1) + literal, text[start:end], count=1)
        assert count == 1, f"no {key} in [{table}] of {HANDED_OUT_PARAMS}"
        text = text[:start] + section + text[end:]
    return text


def params_file(folder: Path, changes: dict[str, object] | None = None, name: str = "params.toml") -> Path:
    """A params file of the test's own: the handed-out one with `changes` (see params_text)."""
    path = folder / name
    path.write_text(params_text(changes))
    return path


def committed_params(repo: Path, text: str, message: str = "the team's defaults") -> Path:
    """params.toml with this text, committed on main in a git repository of the test's own: the
    defaults of a team whose params differ from the handed-out ones. Name it with CD4ML_PARAMS and
    the runs built from it are production candidates (cd4ml/run_kind.py); commit again to change them."""
    repo.mkdir(parents=True, exist_ok=True)
    path = repo / "params.toml"
    path.write_text(text)

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args], cwd=repo,
                       check=True, capture_output=True, timeout=30)

    if not (repo / ".git").exists():
        git("init", "-q", "-b", "main")
    git("add", path.name)
    git("commit", "-qm", message)
    return path


@contextlib.contextmanager
def served(env: dict, workers: int = 2) -> Iterator[str]:
    """`run_python_script.py serve` on a free port in a fresh process with this environment;
    yields its URL once /health answers, and stops it after the block."""
    url = f"http://127.0.0.1:{free_port()}"
    server = subprocess.Popen([sys.executable, "run_python_script.py", "serve", "--port", url.rsplit(":", 1)[1],
                               "--workers", str(workers)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"{url}/health", server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The tiny generated data set (two stores, twenty items, two years), both layouts."""
    folder = tmp_path_factory.mktemp("tiny")
    generate("tiny", folder, seed=42)
    return folder


@pytest.fixture(scope="session")
def workshop_data(tmp_path_factory) -> Path:
    """The workshop-size generated data set (one store, one year, 4,000 items)."""
    folder = tmp_path_factory.mktemp("workshop")
    generate("workshop", folder, seed=42)
    return folder


@pytest.fixture
def embedded(tmp_path, monkeypatch) -> Path:
    """The embedded default (local SQLite store) in a fresh data folder of this test's own."""
    monkeypatch.setenv("CD4ML_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` process on a free localhost port, with its own stores."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    with open(folder / "server.log", "wb") as log, local_mlflow_server(folder, log, seconds=90) as url:
        yield url


@pytest.fixture
def remote(mlflow_server, tmp_path, monkeypatch) -> str:
    """This test tracks to the real mlflow server (and keeps its own data folder)."""
    monkeypatch.setenv("CD4ML_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return mlflow_server
