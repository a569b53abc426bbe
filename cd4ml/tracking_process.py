"""How a run is logged: in a helper process (RunProcess), a detail behind cd4ml/tracking.py.

Importing MLflow, opening the store and logging the model take about as long as reading the
data and training, so on two cores the two halves overlap. What is logged, and under which
names, is cd4ml/tracking.py's. An error in the helper process reaches the caller as the same
Cd4mlError (its class, so its exit code): a ModelRejected stays exit 4.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import signal
import socket
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from cd4ml.config import TrackingSettings
from cd4ml.errors import Cd4mlError, ServiceUnreachable
from cd4ml.tracking import HOST_TAG, MODEL, PID_TAG, LoggedModel, RunRecord, check_reachable, prepare

# the packages a logged model requires, and the module each provides
REQUIREMENT_MODULES = {"mlflow": "mlflow", "scikit-learn": "sklearn", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas"}


def _open_store(tracking: TrackingSettings):
    """Import mlflow and point its fluent API at the store. Only in the tracking process, which
    exists for this one run: the global URI set here is not the CLI process's."""
    prepare(tracking)
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    return mlflow


def experiment_id(mlflow, tracking: TrackingSettings) -> str:
    """The experiment's id, creating it (with local artifacts for the embedded store) if new."""
    found = mlflow.get_experiment_by_name(tracking.experiment)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(tracking.experiment, artifact_location=tracking.artifact_location)


class Run:
    """The MLflow side of one run, inside the tracking process: everything logged goes through here."""

    def __init__(self, mlflow, run) -> None:
        self.mlflow = mlflow
        self.id = run.info.run_id
        self.experiment_id = run.info.experiment_id
        self.model_uri = ""

    def log(self, params: Mapping[str, Any], metrics: Mapping[str, float], tags: Mapping[str, Any]) -> None:
        if params:
            self.mlflow.log_params({k: _short(v) for k, v in params.items()})
        if metrics:
            self.mlflow.log_metrics(dict(metrics))
        if tags:
            self.mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_bytes(self, data: bytes, path: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / Path(path).name
            file.write_bytes(data)
            self.mlflow.log_artifact(str(file), artifact_path=str(Path(path).parent))

    def log_model(self, model, input_example, predictions, trusted_types: list[str]) -> None:
        """Log the sklearn Pipeline (skops format, not pickle) with its signature and explicit
        requirements. trusted_types: the non-sklearn types it holds."""
        from mlflow.models import infer_signature

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            signature = infer_signature(input_example, predictions)
        info = self.mlflow.sklearn.log_model(
            model,
            name=MODEL,
            signature=signature,
            input_example=input_example,
            pip_requirements=model_requirements(),
            serialization_format="skops",
            skops_trusted_types=trusted_types,
        )
        self.model_uri = info.model_uri


class RunProcess:
    """A run whose MLflow work (import, store set-up, logging) happens in a helper process, in
    parallel with the data pass and training here. Calls are queued; `end` waits for them all."""

    def __init__(self, tracking: TrackingSettings, models: bool = True) -> None:
        """Start the tracking process; it imports MLflow and opens the store, then waits for start().
        models=False: the run logs no model (e.g. a monitoring run), so skops is not imported (~2.5 s of CPU)."""
        check_reachable(tracking)
        # spawn, not fork: a forked child of a process that has used OpenMP (our training) or
        # MLflow's threads can hang on locks it inherited.
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_serve_run, args=(theirs, tracking, models), name="cd4ml-tracking",
                                        daemon=True)
        self._process.start()
        theirs.close()
        self._uri = tracking.uri
        self._started: tuple[str, str] | None = None
        self.model_uri = ""

    def start(self, run_name: str | None = None) -> None:
        """Create the MLflow run (stale RUNNING runs of dead processes are marked FAILED first)."""
        self._send("start", run_name)

    def call(self, function: Any, *args: Any) -> None:
        """Have the tracking process (MLflow imported once, there) compute function(*args) before
        the run starts, e.g. a registry lookup; call before start(), and take the answer with
        result() before anything that waits for the run (id, end)."""
        self._send("call", function, args)

    def result(self) -> Any:
        """The answer to the oldest call() not yet answered; raises the Cd4mlError it raised."""
        reply = self._receive()
        if reply[0] == "error":
            raise reply[1]
        return reply[1]

    def cancel(self) -> None:
        """Stop the tracking process before any run was created."""
        try:
            self._conn.send(("cancel",))
        except OSError:
            pass
        self._process.join(timeout=30)

    @property
    def id(self) -> str:
        return self._wait_started()[0]

    @property
    def experiment_id(self) -> str:
        return self._wait_started()[1]

    def log(self, params: Mapping[str, Any] = {}, metrics: Mapping[str, float] = {}, tags: Mapping[str, Any] = {}) -> None:
        self._send("log", dict(params), dict(metrics), dict(tags))

    def log_figure(self, figure, path: str) -> None:
        """Render a matplotlib figure to PNG here and log it there."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        self._send("log_bytes", buffer.getvalue(), path)

    def log_bytes(self, data: bytes, path: str) -> None:
        """Log a file's content as an artifact at path."""
        self._send("log_bytes", data, path)

    def log_model(self, model, input_example, predictions, trusted_types: list[str]) -> None:
        self._send("log_model", model, input_example, predictions, list(trusted_types))

    def log_record(self, record: RunRecord, figures: Mapping[str, Callable[[], Any]] = {}) -> None:
        """Log a prepared run record; the model goes first, so the tracking process logs it while
        the figures (path -> a function drawing a matplotlib figure) are drawn here, one at a time."""
        self.log(record.params, record.metrics, record.tags)
        for path, data in record.artifacts.items():
            self.log_bytes(data, path)
        if record.model is not None:
            m: LoggedModel = record.model
            self.log_model(m.model, m.example, m.predictions, m.trusted_types)
        for path, draw in figures.items():
            self.log_figure(draw(), path)

    def end(self, status: str) -> dict[str, str]:
        """End the run with this status once everything queued is logged; returns the model URI."""
        self._wait_started()
        self._send("end", status)
        reply = self._receive()
        self._process.join(timeout=30)
        if reply[0] == "error":
            raise reply[1]
        return reply[1]

    def abandon(self) -> None:
        """Mark the run FAILED (best effort) and stop the tracking process."""
        try:
            self._conn.send(("end", "FAILED"))
            if self._conn.poll(30):
                self._conn.recv()
        except (OSError, EOFError):
            pass
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()

    def _wait_started(self) -> tuple[str, str]:
        if self._started is None:
            reply = self._receive()
            if reply[0] == "error":
                self._process.join(timeout=30)
                raise reply[1]
            self._started = (reply[1], reply[2])
        return self._started

    def _send(self, *message: Any) -> None:
        try:
            self._conn.send(message)
        except OSError:
            raise self._lost() from None

    def _receive(self) -> tuple:
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            raise self._lost() from None

    def _lost(self) -> ServiceUnreachable:
        return ServiceUnreachable(
            f"the tracking process for {self._uri} stopped unexpectedly.",
            "Run again; if it repeats, check the MLflow store.",
        )


@contextlib.contextmanager
def tracked_run(process: RunProcess, run_name: str | None = None) -> Iterator[RunProcess]:
    """A run that ends FINISHED, or FAILED on any error or interrupt (also when this process is
    killed: the tracking process sees its pipe close)."""
    process.start(run_name)
    try:
        yield process
    except BaseException:
        process.abandon()
        raise
    process.model_uri = process.end("FINISHED")["model_uri"]


def _serve_run(conn, tracking: TrackingSettings, models: bool = True) -> None:
    """The tracking process: warm up, start the run when asked, log what arrives, end it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pipeline decides how the run ends
    warm_up_error = None
    try:
        if models:
            import skops.io  # noqa: F401  first: its import-time type scan is slower with MLflow's modules loaded

        mlflow = _open_store(tracking)
        if models:
            map_requirement_modules()
        exp = experiment_id(mlflow, tracking)
    except Exception as err:
        warm_up_error = err
    while True:  # calls first (see RunProcess.call), then the start of the run
        try:
            method, *args = conn.recv()
        except (EOFError, OSError):
            return
        if method != "call":
            break
        function, call_args = args
        try:
            if warm_up_error is not None:
                raise warm_up_error
            conn.send(("result", function(*call_args)))
        except Cd4mlError as err:  # sent as itself (errors pickle): its class, so its exit code, survives
            conn.send(("error", err))
        except Exception as err:
            conn.send(("error", ServiceUnreachable(f"asking MLflow at {tracking.uri} failed: {err}", "Check MLflow.")))
    if method != "start":
        return
    try:
        if warm_up_error is not None:
            raise warm_up_error
        fail_abandoned_runs(mlflow, exp)
        run = Run(mlflow, mlflow.start_run(experiment_id=exp, run_name=args[0]))
        mlflow.set_tags({PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
    except Exception as err:
        conn.send(("error", err if isinstance(err, Cd4mlError) else ServiceUnreachable(
            f"could not start an MLflow run at {tracking.uri}: {err}",
            "Check that the tracking store is reachable and MLFLOW_TRACKING_URI is right.")))
        return
    conn.send(("started", run.id, run.experiment_id))
    failure: tuple | None = None
    while True:
        try:
            method, *args = conn.recv()
        except (EOFError, OSError):  # the pipeline process is gone
            mlflow.end_run(status="FAILED")
            return
        if method == "end":
            mlflow.end_run(status="FAILED" if failure else args[0])
            conn.send(failure or ("ended", {"model_uri": run.model_uri}))
            conn.close()
            # os._exit: all is written, the pipe closed and the run ended; what atexit would still do here is
            # MLflow's and SQLAlchemy's teardown (about 1 s), which this process, ending now, does not need.
            os._exit(0)
        if failure is None:
            try:
                getattr(run, method)(*args)
            except Exception as err:
                failure = ("error", ServiceUnreachable(f"logging to MLflow at {tracking.uri} failed: {err}",
                                                       "Check the tracking store (disk space, server logs) and run again."))


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


def map_requirement_modules() -> None:
    """Give MLflow the module of each package we pin, so its requirement check (installed versions
    against the model's requirements) need not scan every installed distribution's files for that
    map (about 0.7 s of each run). The check itself still runs."""
    from mlflow.utils import requirements_utils

    if requirements_utils._MODULES_TO_PACKAGES is None:
        requirements_utils._MODULES_TO_PACKAGES = {module: [package] for package, module in REQUIREMENT_MODULES.items()}


def model_requirements() -> list[str]:
    """The model's pip requirements, given explicitly (inferring them is slow)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in REQUIREMENT_MODULES]


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
