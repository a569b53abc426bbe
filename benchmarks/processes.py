"""Real processes on this machine, for the benchmarks and the tests alike: a free localhost port,
waiting until a server answers, and a local `mlflow server` with its own stores. No cd4ml import."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Iterator

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    """Poll url until it answers 200, or fail saying whether the process exited or timed out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {seconds} s")


def start_mlflow(folder: Path, port: int, log: IO | int = subprocess.DEVNULL, new_session: bool = False) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port, its SQLite store and artifacts in folder (not waited for)."""
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    return subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{Path(folder) / 'mlflow.db'}",
         "--artifacts-destination", str(Path(folder) / "artifacts"), "--serve-artifacts"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session,
        # No job runner (a second process importing MLflow, for GenAI jobs we never start): seconds less to start.
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )


@contextlib.contextmanager
def mlflow_server(folder: Path, log: IO | int = subprocess.DEVNULL, seconds: float = 120) -> Iterator[str]:
    """A local `mlflow server` on a free port with its stores in folder; yields its URL once /health answers."""
    port = free_port()
    process = start_mlflow(folder, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", process, seconds)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
