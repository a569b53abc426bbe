"""Real processes for the reliability tests: an `mlflow server` that a test can kill and bring back
on the same port, the CLI's delivery commands, and `serve` (gunicorn) following the registry."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import requests

from benchmarks.processes import free_port, start_mlflow, wait_until_up
from tests.conftest import ROOT

ADMIN_TOKEN = "reliability-admin-token-0123456789"


class MlflowServer:
    """`mlflow server` with its own stores in `folder`, on one port for its whole life."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def artifacts(self) -> Path:
        return self.folder / "artifacts"

    def start(self) -> "MlflowServer":
        self.process = start_mlflow(self.folder, self.port, open(self.folder / "server.log", "ab"), new_session=True)
        wait_until_up(f"{self.url}/health", self.process)
        return self

    def stop(self) -> None:
        """Kill the server and everything it started (its own process group), and wait until the port is free."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/health", timeout=0.5)
            except requests.RequestException:
                return
            time.sleep(0.1)


def cli_env(tmp_path: Path, tracking_uri: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI command run by a user: its own data folder and registered model."""
    env = {**os.environ, "CD4ML_DATA_DIR": str(tmp_path / "data"), "MLFLOW_TRACKING_URI": tracking_uri,
           "CD4ML_TRACKING_REGISTERED_MODEL": f"forecast-{tmp_path.name}", "CD4ML_ADMIN_TOKEN": ADMIN_TOKEN,
           "CD4ML_SERVING_POLL_SECONDS": "0.5", "MLFLOW_DISABLE_TELEMETRY": "true", **extra}
    env.pop("BUILD_NUMBER", None)
    env.pop("FLUENTD_HOST", None)
    return env


def cli(env: dict[str, str], *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """run_python_script.py ARGV in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, str(ROOT / "run_python_script.py"), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def cli_here(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """run_python_script.py ARGV through cd4ml.cli.main in this process, in `env`: the exit code and
    what it printed, as cli() returns them, without a new interpreter importing MLflow and
    scikit-learn (seconds per command). For commands whose process is not what a test is about.

    What a fresh process would print is all caught: stdout and stderr, MLflow's own log stream
    (it writes to whatever sys.stderr is), and warnings of our loggers (logging's last resort).
    """
    from cd4ml.cli import main

    saved, out, err = dict(os.environ), io.StringIO(), io.StringIO()
    warnings = logging.StreamHandler(err)
    warnings.setLevel(logging.WARNING)
    os.environ.clear()
    os.environ.update(env)
    logging.getLogger().addHandler(warnings)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        logging.getLogger().removeHandler(warnings)
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["run_python_script.py", *argv], code, out.getvalue(), err.getvalue())


def deliver(env: dict[str, str], data: Path, *params: str, run=cli_here) -> str:
    """pipeline, acceptance, deploy on `data` (in this process unless `run` is cli); returns the run
    id that went to production."""
    for argv in (["pipeline", "--data", str(data)], ["acceptance"], ["deploy"]):
        done = run(env, *params, *argv)
        assert done.returncode == 0, f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
    import json

    return json.loads((Path(env["CD4ML_DATA_DIR"]) / "last_run.json").read_text())["run_id"]


class Server:
    """`run_python_script.py serve` (gunicorn, 2 workers unless told) on a free port; its log in `log`."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "run_python_script.py"), "serve", "--port", str(self.port),
             "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_listening(self, seconds: float = 60) -> None:
        """Until the server answers at all (ready or not)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                requests.get(f"{self.url}/version", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError(f"serve did not listen within {seconds} s:\n{self.log.read_text()}")

    def wait_ready(self, seconds: float = 60) -> None:
        try:
            wait_until_up(f"{self.url}/health", self.process, seconds)
        except RuntimeError as err:
            raise AssertionError(f"{err}:\n{self.log.read_text()}") from None

    def wait_logged(self, text: str, workers: int = 2, seconds: float = 60) -> None:
        """Until `workers` different worker processes have logged a line containing text."""
        line = re.compile(r"\[(\d+)\] \w+ .*" + re.escape(text))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(set(line.findall(self.log.read_text(errors="replace")))) >= workers:
                return
            time.sleep(0.1)
        raise AssertionError(f"{workers} workers did not log {text!r} within {seconds} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # gunicorn's graceful stop
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextlib.contextmanager
def deployed_server(folder: Path, tracking_uri: str, data: Path, workers: int = 2,
                    **serve_env: str) -> Iterator[Server]:
    """The product's own path to a model server: pipeline, acceptance and deploy of `data` into the
    registry at tracking_uri (its own registered model and data folder under `folder`), then
    `run_python_script.py serve` (gunicorn) following it, with serve_env added; ready, stopped after."""
    env = cli_env(folder, tracking_uri)
    deliver(env, data)
    server = Server({**env, **serve_env}, folder / "server.log", workers)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def production_model(env: dict[str, str]):
    """The LoadedModel the registry's production alias points at, loaded as `serve` loads it."""
    from cd4ml.cli import _allowed_types
    from cd4ml.config import load_settings
    from cd4ml.serving.registry_source import production_fetcher

    settings = load_settings(environ=env)
    return production_fetcher(settings.tracking, _allowed_types(settings))(None)


def every_worker(url: str, path: str, condition, seconds: float = 30, streak: int = 10):
    """Until `streak` answers in a row (so every worker) satisfy condition(response); returns the last."""
    deadline, found, last = time.monotonic() + seconds, 0, None
    while time.monotonic() < deadline and found < streak:
        last = requests.get(f"{url}{path}", timeout=5)
        found = found + 1 if condition(last) else 0
        if not found:
            time.sleep(0.05)
    assert found >= streak, f"GET {path} never satisfied the condition; last answer {last.status_code}: {last.text}"
    return last
