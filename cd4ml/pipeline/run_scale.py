"""The scale path's run: plan → scan (threads, or Dask) → train on the sample → validate → track.

The wiring of cd4ml/pipeline/scale.py (pure) to the data, a Dask cluster and MLflow, in the shape
of run.py: the same params, metrics, tags, validation rows for the gate and one sklearn Pipeline
as the model, so acceptance, deploy and the model server work unchanged. docs/scale.md explains
the strategy and its measured cost.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from cd4ml import plots, tracking
from cd4ml.config import Settings
from cd4ml.errors import DataError
from cd4ml.pipeline import scale
from cd4ml.pipeline.models import make_model, relative_trusted_types
from cd4ml.pipeline.track import Prepared, RunResult, run_params, track
from cd4ml.problems import get_problem
from cd4ml.progress import Reporter
from cd4ml.tracking_process import RunProcess

PROBE_BYTES = 4 << 20  # the tail of train.csv read first: its last dates
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
DEFAULT_MMAP_THRESHOLD = 128 * 1024  # glibc's default for it (mallopt(3))
PLOT_ROWS = 20_000  # validation rows drawn in the scatter plot and used for permutation importance


@dataclass
class Scan:
    """The scan stage's result and what it saw."""

    scanned: scale.Scanned
    spec: scale.ScanSpec
    partitions: Any
    source: Any
    fingerprint: str  # the data's sha256, as the row path computes it for the same folder
    engine: str  # "threads (n)" or "dask (address)"


def plan(partitions: Any, settings: Settings) -> scale.ScanSpec:
    """The scan's spec, from a probe of the last lines of train.csv: its last date bounds the
    first validation day from below (in a file ordered by date, only the last partitions then hold
    rows back for validation)."""
    probe = partitions.tail_batch(PROBE_BYTES)
    days = partitions.columns(probe.table)["day"]
    floor = int(days.max()) - settings.validation_days + 1 if len(days) else scale.NO_DAY
    return scale.spec_for(settings.scale.strategy, settings.scale.sample_rows, settings.validation_days,
                          settings.seed, floor)


def scan_data(settings: Settings, reporter: Reporter, problem: Any, source: Any, partitions: Any) -> Scan:
    """Plan, scan every partition (threads here, or tasks on a Dask cluster), finish; freed
    memory goes back to the system at once meanwhile."""
    with freed_memory_returned():
        return _scan_data(settings, reporter, source, partitions)


def _scan_data(settings: Settings, reporter: Reporter, source: Any, partitions: Any) -> Scan:
    spec = plan(partitions, settings)
    progress = reporter.progress("scan")
    address = settings.scale.dask_scheduler
    if address:
        from cd4ml.pipeline.distributed import dask_client, scan_on_dask

        with ThreadPoolExecutor(1, thread_name_prefix="cd4ml-sha256") as pool:
            digest = pool.submit(partitions.sha256)  # read here while the workers scan
            with dask_client(address) as client:
                part = scan_on_dask(client, partitions, spec,
                                    on_done=lambda done: progress(done, len(partitions)))
            sha256 = digest.result()
        engine = f"dask ({address})"
    else:
        digest = hashlib.sha256(partitions.header())
        done = [0]

        def on_read(index: int, text: bytes) -> None:
            digest.update(text)
            done[0] += len(text)
            progress(done[0], partitions.data_bytes)

        part = scale.scan_local(partitions, spec, settings.scale.threads, on_read=on_read)
        sha256 = digest.hexdigest()
        engine = f"threads ({settings.scale.threads})"
    for message in part.skipped:
        reporter.say(f"skipped: {message}")
    if len(part.skipped) > settings.data.max_bad_rows:
        raise DataError(
            f"more than {settings.data.max_bad_rows} bad row(s); the last: {part.skipped[-1]}",
            "Fix the data, or raise [data] max_bad_rows in params.toml.", path=str(partitions.path),
        )
    scanned = scale.finish(part, spec)
    del part
    release_memory()
    return Scan(scanned, spec, partitions, source, source.fingerprint(sha256), engine)


@contextlib.contextmanager
def freed_memory_returned() -> Iterator[None]:
    """While inside, freed buffers go back to the system at once, so the pass's peak is what it
    holds: Arrow allocates from the system allocator (its default keeps freed pages for reuse), and
    glibc maps blocks of 1 MiB and more on their own (by default the threshold grows as large
    arrays are freed, and they then stay in the heap). On 10 M rows: peak 817 -> 686 MB, for
    about 20% more CPU time (the kernel maps and zeroes those pages each time). On leaving, Arrow's
    pool is restored and glibc's threshold set back to its default of 128 KiB (mallopt(3); its
    dynamic growth stays off once set, which only makes later large blocks go back sooner)."""
    import pyarrow as pa

    pool = pa.default_memory_pool()
    mallopt = _libc("mallopt")
    pa.set_memory_pool(pa.system_memory_pool())
    if mallopt is not None:  # glibc only
        mallopt(M_MMAP_THRESHOLD, 1 << 20)
    try:
        yield
    finally:
        pa.set_memory_pool(pool)
        if mallopt is not None:
            mallopt(M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD)


def _libc(name: str) -> Any:
    """A glibc function by name, or None on another C library."""
    import ctypes
    import ctypes.util

    libc = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(libc), name, None) if libc else None


def release_memory() -> None:
    """Give the memory the pass freed back to the system before training: Arrow's allocator and
    glibc's keep freed blocks for reuse (a few hundred MB after a pass over 126 M rows)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _libc("malloc_trim")
    if trim is not None:  # glibc only
        trim(0)


def run_scale_pipeline(settings: Settings, reporter: Reporter, process: RunProcess | None = None) -> RunResult:
    """One tracked pipeline run on the scale path (its model checked by mode.choose_path); the run
    id is recorded for the acceptance gate."""
    process = process or RunProcess(settings.tracking)
    try:
        problem = get_problem(settings.problem)
        make_model(settings.model.name, dict(settings.model.params), settings.seed,  # bad params: no run
                   name_from=settings.model.name_from, params_from=settings.model.params_from)
        source = problem.open(settings.data, None)  # a missing file: no run
        partitions = problem.partitions(source, settings.data, int(settings.scale.partition_mb * (1 << 20)),
                                        settings.scale.max_rows)
    except BaseException:
        process.cancel()
        raise

    def work(seconds: dict[str, float]) -> Prepared:
        clock = time.perf_counter()
        done = scan_data(settings, reporter, problem, source, partitions)
        scanned = done.scanned
        seconds["scan"] = time.perf_counter() - clock
        reporter.stage("scan", seconds["scan"], scanned.lines, scanned.kept)

        clock = time.perf_counter()
        features = partitions.features(scanned)
        weights = partitions.weights(scanned.valid)
        expected = partitions.expected(scanned.valid["id"])
        release_memory()
        trained = scale.train_and_validate_at_scale(
            scanned, features, features, weights, settings.model.name, dict(settings.model.params),
            settings.seed, expected,
        )
        seconds["train_validate"] = time.perf_counter() - clock
        reporter.stage("train+valid", seconds["train_validate"], len(scanned.sample["day"]))
        return _prepared(settings, problem, done, weights, trained)

    return track(settings, reporter, process, problem.name, _scale_params(settings),
                 {tracking.PIPELINE_PATH: "scale"}, work)


def _prepared(settings: Settings, problem: Any, done: Scan, weights: np.ndarray,
              trained: scale.TrainedAtScale) -> Prepared:
    """What the scale path records: the row path's record, from the scan's columns."""
    scanned, partitions = done.scanned, done.partitions
    example = partitions.requests(scale.take(scanned.valid, slice(0, 5)))
    return Prepared(
        metrics=trained.metrics,
        data={"sha256": done.fingerprint, "rows_read": scanned.lines, "rows_kept": scanned.kept,
              "source": str(settings.data.source)},
        record=tracking.RunRecord(
            metrics={"partitions": float(len(partitions)), "partitions_by_rows": float(scanned.by_rows)},
            tags={tracking.VALIDATION_FIRST_DATE: str(scale.day_of(scanned.cutoff)), tracking.SCALE_ENGINE: done.engine},
            artifacts={tracking.VALIDATION_ROWS: _validation_rows(scanned, partitions, weights),
                       tracking.PROFILE_ARTIFACT: _profile(scanned, partitions, trained.predicted)},
            model=tracking.LoggedModel(trained.model, example, trained.model.predict(example),
                                       [*problem.trusted_types, *relative_trusted_types(settings.model.name)]),
        ),
        plots=_plots(scanned, trained, settings.seed),
    )


def _scale_params(settings: Settings) -> dict[str, Any]:
    sc = settings.scale
    return {
        **run_params(settings),
        "scale.strategy": sc.strategy,
        "scale.sample_rows": sc.sample_rows,
        "scale.partition_mb": sc.partition_mb,
        "scale.max_rows": sc.max_rows or "all",
        "scale.dask": "yes" if sc.dask_scheduler else "no",
    }


def _validation_rows(scanned: scale.Scanned, partitions: Any, weights: np.ndarray) -> bytes:
    """Every validation row (model inputs, target, metric weight) as Parquet, for the gate."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = partitions.request_table(scanned.valid)
    table = table.append_column("target", pa.array(scanned.valid["target"])).append_column("weight", pa.array(weights))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _profile(scanned: scale.Scanned, partitions: Any, predicted: np.ndarray) -> bytes:
    """The training profile monitoring compares live events with, from the uniform sample."""
    from cd4ml.monitoring.profile import profile_bytes, training_profile

    sample = scanned.sample
    dates = sample["day"].astype("datetime64[D]")
    return profile_bytes(training_profile(partitions.drift_keys(sample), dates, sample["target"], predicted))


def _plots(scanned: scale.Scanned, trained: scale.TrainedAtScale, seed: int) -> dict[str, Callable[[], Any]]:
    """The row path's three plots: a sample of validation rows in the scatter plot, every one in
    the mean residual by date, permutation importance on a sample; each drawn when it is logged."""
    valid = scanned.valid
    actual = valid["target"]
    n = len(actual)
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(n, PLOT_ROWS), replace=False))

    def residuals() -> Any:
        days, at = np.unique(valid["day"], return_inverse=True)
        counts = np.bincount(at)
        return plots.residuals_by_date(
            np.array([scale.day_of(d) for d in days]),
            np.bincount(at, weights=actual) / counts,
            np.bincount(at, weights=trained.predicted) / counts,
        )

    def importance() -> Any:
        estimator = trained.model.named_steps["model"]
        features = trained.model.named_steps["features"]
        names = list(features.get_feature_names_out())
        found = getattr(estimator.regressor_.regressor_, "feature_importances_", None)
        measure = plots.IMPURITY
        if found is None:
            measure = plots.PERMUTATION
            from sklearn.inspection import permutation_importance

            X = features.encode_frame(scale.take(valid, pick))
            found = permutation_importance(estimator, X, actual[pick], n_repeats=3, random_state=0).importances_mean
        return plots.feature_importance(names, np.asarray(found), measure)

    return dict(zip(tracking.PLOTS, (
        lambda: plots.predicted_vs_actual(actual[pick], trained.predicted[pick]), residuals, importance,
    )))
