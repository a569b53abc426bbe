"""MLflow runs: what each run records, under which names, and how to read it back.

The one owner of MLflow's vocabulary here: every param, metric, tag and artifact name a run
writes or a command reads is a constant below. A pipeline run records
  params   problem, seed, model, model.<hyperparameter>, data.source (and items/stores for
           Favorita), split.by and split.validation_days or split.validation_fraction,
           features.set (and scale.* on the scale path);
  metrics  the problem's (Favorita: r2, nwrmsle, mae; houses: r2, rmse, mae, mape), baseline_*,
           best_* and r2_gap_closed (when the data knows the expected targets), rows_train,
           rows_valid, seconds_<stage>;
  tags     git.commit, git.dirty, build_number, problem, cd4ml.run_kind and cd4ml.run_kind_reason
           (experiment or candidate: cd4ml/run_kind.py), data.sha256, data.rows_read,
           data.rows_kept, data.source, validation.split, validation.first_date (by date;
           pipeline.path and scale.engine on
           the scale path), and the gate's acceptance.verdict and acceptance.message;
  artifacts the model (an sklearn Pipeline in skops format), VALIDATION_ROWS for the gate,
           PROFILE_ARTIFACT for monitoring, and three PLOTS.
How it is logged (in a helper process, while the pipeline reads and trains) is
cd4ml/tracking_process.py's detail; what is logged is a RunRecord.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from cd4ml.config import TrackingSettings
from cd4ml.errors import DataError, ServiceUnreachable

# tags of a pipeline run
GIT_COMMIT = "git.commit"
GIT_DIRTY = "git.dirty"
BUILD_NUMBER = "build_number"
PROBLEM = "problem"
PIPELINE_PATH = "pipeline.path"
DATA_SHA256 = "data.sha256"
DATA_ROWS_READ = "data.rows_read"
DATA_ROWS_KEPT = "data.rows_kept"
DATA_SOURCE = "data.source"
VALIDATION_FIRST_DATE = "validation.first_date"
VALIDATION_SPLIT = "validation.split"  # [split] by: "date", or "hash <fraction> of ids (seed <seed>)"
SCALE_ENGINE = "scale.engine"
RUN_KIND = "cd4ml.run_kind"  # CANDIDATE or EXPERIMENT: the experiment rule of cd4ml/run_kind.py
CANDIDATE, EXPERIMENT = "candidate", "experiment"
RUN_KIND_REASON = "cd4ml.run_kind_reason"  # why, in one line
PID_TAG = "cd4ml.pid"  # with HOST_TAG: which process runs it, so a killed run can be marked FAILED
HOST_TAG = "cd4ml.host"
# the acceptance gate's record on the run
VERDICT = "acceptance.verdict"  # ACCEPTED or REJECTED
ACCEPTED, REJECTED = "accepted", "rejected"
VERDICT_MESSAGE = "acceptance.message"
PRODUCTION_VERSION = "acceptance.production_version"
PRODUCTION_METRIC = "acceptance.production_{metric}"  # production's score on the run's validation rows
# what a registered version carries from its run
LINEAGE_TAGS = (GIT_COMMIT, GIT_DIRTY, BUILD_NUMBER, DATA_SHA256, DATA_ROWS_READ, DATA_SOURCE, RUN_KIND)
# artifacts
MODEL = "model"
VALIDATION_ROWS = "validation/rows.parquet"  # every validation row: model inputs, target, weight
PROFILE_ARTIFACT = "profile/training.json"  # what monitoring compares live events with
REPORT_ARTIFACT = "monitoring/report.json"  # a monitoring run's report
PLOTS = ("plots/predicted_vs_actual.png", "plots/residuals_by_date.png", "plots/feature_importance.png")
# the tags of a monitoring run
MONITORING_STATUS = "monitoring.status"
MONITORING_SOURCE = "monitoring.source"
MONITORED_MODEL = ("model.name", "model.version", "model.run_id")


@dataclass
class LoggedModel:
    """The fitted sklearn Pipeline, an input example and its predictions (the signature), and the
    non-sklearn types it holds (for skops)."""

    model: Any
    example: Any
    predictions: Any
    trusted_types: list[str]


@dataclass
class RunRecord:
    """Everything one run logs, prepared before any of it is sent: one function tracks it."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)  # path -> content
    model: LoggedModel | None = None


def check_reachable(tracking: TrackingSettings, timeout: float = 3.0) -> None:
    """Fail fast, with the fix, when a remote tracking server does not answer."""
    if not tracking.uri.startswith(("http://", "https://")):
        return
    import requests  # deferred: only a remote store needs it

    try:
        requests.get(f"{tracking.uri.rstrip('/')}/health", timeout=timeout).raise_for_status()
    except requests.RequestException as err:
        raise ServiceUnreachable(
            f"MLflow at {tracking.uri} did not answer ({type(err).__name__}).",
            "Start it (docker compose up -d mlflow), or unset MLFLOW_TRACKING_URI to use the local store.",
        ) from None


def prepare(tracking: TrackingSettings) -> None:
    """Check the store answers, create the embedded one's folder, and set MLflow's offline-friendly
    defaults (no telemetry, no retries, a timeout), before MLflow is imported."""
    check_reachable(tracking)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline-friendly, and no stray threads
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    if not tracking.remote:
        Path(tracking.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def client(tracking: TrackingSettings):
    """An explicit MlflowClient on the configured store, for runs and the registry: MLflow's global
    tracking URI is neither read nor set."""
    prepare(tracking)
    from mlflow import MlflowClient  # deferred: about 1 s, and most commands never need it

    return MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)


@contextlib.contextmanager
def global_uri_for(mlflow_client) -> Iterator[None]:
    """MLflow's global tracking URI pointed at this client's store for the block only, then
    restored (with the MLFLOW_TRACKING_URI variable MLflow exports). For the one MLflow call that
    reads it whatever client is used: registering a logged model in the embedded SQLite store
    (mlflow 3.17.2, store/model_registry/sqlalchemy_store.py, create_model_version calls
    `MlflowClient().get_logged_model`, under MLflow's own TODO to stop relying on the global URI)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri  # MLflow's scoping helper

    exported = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(mlflow_client.tracking_uri):
            yield
    finally:
        if exported is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = exported


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
        return {GIT_COMMIT: "unknown", GIT_DIRTY: "unknown"}
    return {GIT_COMMIT: commit, GIT_DIRTY: str(dirty).lower()}


def verdict(run) -> str | None:
    """The gate's verdict recorded on an MLflow run: ACCEPTED, REJECTED, or None (not judged)."""
    return run.data.tags.get(VERDICT)


def record_verdict(mlflow_client, run_id: str, accepted: bool, message: str) -> None:
    mlflow_client.set_tag(run_id, VERDICT, ACCEPTED if accepted else REJECTED)
    mlflow_client.set_tag(run_id, VERDICT_MESSAGE, message[:4000])


def record_production_score(mlflow_client, run_id: str, metric: str, value: float, version: str) -> None:
    mlflow_client.log_metric(run_id, PRODUCTION_METRIC.format(metric=metric), value)
    mlflow_client.set_tag(run_id, PRODUCTION_VERSION, version)


def logged_model_uri(mlflow_client, run) -> str:
    """The models:/<model id> URI of the model a run logged."""
    found = mlflow_client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    if not found:
        raise DataError(f"run {run.info.run_id} logged no model", "Run the pipeline again.")
    return f"models:/{found[0].model_id}"


def artifact_bytes(mlflow_client, run_id: str, path: str) -> bytes:
    """The content of one artifact of a run (raises what the client raises when it is missing)."""
    with tempfile.TemporaryDirectory() as folder:
        return Path(mlflow_client.download_artifacts(run_id, path, folder)).read_bytes()
