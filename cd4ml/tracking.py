"""MLflow runs: the only module that logs params, metrics, tags, models and plots.

MLflow is imported when a run starts, not at import time, so commands that track nothing
stay fast.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

from cd4ml.config import TrackingSettings
from cd4ml.errors import ServiceUnreachable

PID_TAG = "cd4ml.pid"
HOST_TAG = "cd4ml.host"


def check_reachable(tracking: TrackingSettings, timeout: float = 3.0) -> None:
    """Fail fast, with the fix, when a remote tracking server does not answer."""
    if not tracking.uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(f"{tracking.uri.rstrip('/')}/health", timeout=timeout).raise_for_status()
    except requests.RequestException as err:
        raise ServiceUnreachable(
            f"MLflow at {tracking.uri} did not answer ({type(err).__name__}).",
            "Start it (docker compose up -d mlflow), or unset MLFLOW_TRACKING_URI to use the local store.",
        ) from None


def configure(tracking: TrackingSettings):
    """Import mlflow, point it at the store (fast-failing HTTP), and return the module."""
    check_reachable(tracking)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline-friendly, and no stray threads
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    if not tracking.remote:
        Path(tracking.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    return mlflow


def experiment_id(mlflow, tracking: TrackingSettings) -> str:
    """The experiment's id, creating it (with local artifacts for the embedded store) if new."""
    found = mlflow.get_experiment_by_name(tracking.experiment)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(tracking.experiment, artifact_location=tracking.artifact_location)


def git_tags(root: Path) -> dict[str, str]:
    """The commit and whether the work tree differs from it ("unknown" outside a checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git.commit": "unknown", "git.dirty": "unknown"}
    return {"git.commit": commit, "git.dirty": str(dirty).lower()}


class Run:
    """One MLflow run of ours: everything logged to it goes through here."""

    def __init__(self, mlflow, run) -> None:
        self.mlflow = mlflow
        self.id = run.info.run_id
        self.experiment_id = run.info.experiment_id

    def log(self, params: Mapping[str, Any] = {}, metrics: Mapping[str, float] = {}, tags: Mapping[str, Any] = {}) -> None:
        if params:
            self.mlflow.log_params({k: _short(v) for k, v in params.items()})
        if metrics:
            self.mlflow.log_metrics(dict(metrics))
        if tags:
            self.mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_figure(self, figure, path: str) -> None:
        self.mlflow.log_figure(figure, path)

    def log_dict(self, data: Mapping[str, Any], path: str) -> None:
        self.mlflow.log_dict(dict(data), path)

    def log_model(self, model, input_example, predictions, trusted_types: list[str]) -> str:
        """Log the sklearn Pipeline (skops format, not pickle) with its signature and explicit
        requirements; returns its URI. trusted_types: the non-sklearn types it holds."""
        from mlflow.models import infer_signature

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            signature = infer_signature(input_example, predictions)
        info = self.mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=input_example,
            pip_requirements=model_requirements(),
            serialization_format="skops",
            skops_trusted_types=trusted_types,
        )
        return info.model_uri


@contextlib.contextmanager
def start_run(tracking: TrackingSettings, run_name: str | None = None) -> Iterator[Run]:
    """A run that ends FINISHED, or FAILED on any error or interrupt; stale runs of dead
    processes on this host are marked FAILED first."""
    mlflow = configure(tracking)
    try:
        exp = experiment_id(mlflow, tracking)
        fail_abandoned_runs(mlflow, exp)
        active = mlflow.start_run(experiment_id=exp, run_name=run_name)
    except Exception as err:
        raise ServiceUnreachable(
            f"could not start an MLflow run at {tracking.uri}: {err}",
            "Check that the tracking server is up and MLFLOW_TRACKING_URI is right.",
        ) from None
    mlflow.set_tags({PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
    try:
        yield Run(mlflow, active)
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


def fail_abandoned_runs(mlflow, exp: str) -> list[str]:
    """Mark FAILED the RUNNING runs whose process on this host no longer exists (killed runs)."""
    client = mlflow.MlflowClient()
    host = socket.gethostname()
    stale = []
    for run in client.search_runs([exp], filter_string="attributes.status = 'RUNNING'", max_results=100):
        pid = run.data.tags.get(PID_TAG)
        if run.data.tags.get(HOST_TAG) == host and pid and pid.isdigit() and not _alive(int(pid)):
            client.set_terminated(run.info.run_id, status="FAILED")
            stale.append(run.info.run_id)
    return stale


def model_requirements() -> list[str]:
    """The model's pip requirements, given explicitly (inferring them is slow)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "numpy", "scipy", "pandas")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."
