"""Training at scale: one pass over data of any size in bounded memory, then a model trained on a
uniform sample of the training rows with encodings learned from all of them. Pure.

The data arrives in partitions (the problem's batch path), each as compact columns:

    day     int32    days since 1970-01-01
    cell    int32    the unit a mean is learned for (Favorita: a store and an item), small and >= 0
    target  float64  what to forecast
    promo   bool     a flag the model sees (Favorita: onpromotion)
    id      int64    the row's id in the source, or -1

`scan` turns a partition into a Partial: exact totals (the sum of the target in integer
thousandths, and the count) per cell and weekday of the rows that are training rows for sure; the
candidates for the sample among those rows (those with the smallest hashes: once a Partial holds
`sample_rows` of them, no row with a larger hash can be in the sample, and is dropped); and every
row that may still turn out to be a validation row (the last `validation_days` days seen so far). `merge` combines two Partials exactly and in any order
(integer sums; a row is sampled by a hash of its day, cell and the seed, never by its position),
so one process, threads or a Dask cluster give the same result. `finish` ends the pass: the
validation rows are those of the last `validation_days` days, and the sample is cut to the
`sample_rows` training rows with the smallest hashes, a uniform sample without replacement.

Memory stays bounded whatever the size of the data: totals grow with the number of cells, the
sample is at most about `sample_rows` rows, and the rows held back for validation cover
`validation_days` days.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Callable, Protocol

import numpy as np
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from cd4ml.errors import ConfigError, DataError
from cd4ml.metrics import compare
from cd4ml.pipeline.models import SMALL_DATA_ROWS, NonNegative, RelativeToLevel, make_model

Frame = dict[str, np.ndarray]
COLUMNS = {"day": np.int32, "cell": np.int32, "target": np.float64, "promo": np.bool_, "id": np.int64, "priority": np.uint64}
NO_DAY = np.iinfo(np.int32).min  # "no day yet" (a floor below every date)
WEEKDAYS = 7
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0 as in date.weekday()
THOUSANDTHS = 1000  # totals count the target in thousandths, as integers, so they add up exactly
PREDICT_ROWS = 500_000  # validation rows encoded and predicted at a time


@dataclass(frozen=True)
class ScanSpec:
    """What every partition's scan must agree on."""

    validation_days: int
    sample_rows: int | None  # None: keep every training row (strategy "all")
    seed: int
    floor: int = NO_DAY  # rows before this day are training rows for sure (a lower bound of the cutoff)


def spec_for(strategy: str, sample_rows: int, validation_days: int, seed: int, floor: int = NO_DAY) -> ScanSpec:
    """The scan for a strategy (config.SCALE_STRATEGIES, checked when the settings are read):
    "sample" keeps the sample_rows training rows with the smallest hashes; "all" keeps every
    training row."""
    return ScanSpec(validation_days, None if strategy == "all" else sample_rows, seed, floor)


def priorities(day: np.ndarray, cell: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit hash of (seed, day, cell) per row (splitmix64's finaliser): a row's sampling key,
    the same wherever and in whatever order the row is read."""
    x = (day.astype(np.int64).astype(np.uint64) << np.uint64(32)) ^ cell.astype(np.uint64)
    x ^= np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def empty_frame() -> Frame:
    return {name: np.zeros(0, dtype=dtype) for name, dtype in COLUMNS.items()}


def take(frame: Frame, which: np.ndarray) -> Frame:
    return {name: values[which] for name, values in frame.items()}


def concat(*frames: Frame) -> Frame:
    frames = tuple(f for f in frames if len(f["day"])) or (empty_frame(),)
    if len(frames) == 1:
        return frames[0]
    return {name: np.concatenate([f[name] for f in frames]) for name in COLUMNS}


def _joined(pieces: list[Frame]) -> Frame:
    """The pieces as one frame, emptying the list as it goes (each piece is freed once copied)."""
    out = {}
    for name in COLUMNS:
        out[name] = np.concatenate([p[name] for p in pieces]) if pieces else empty_frame()[name]
        for piece in pieces:
            piece[name] = None
    pieces.clear()
    return out


def weekday(day: np.ndarray) -> np.ndarray:
    return (day.astype(np.int64) + EPOCH_WEEKDAY) % WEEKDAYS


@dataclass
class Partial:
    """What a scan learned of some partitions; merge() adds two of them up exactly. The sample
    and the window are lists of frames, joined only when needed."""

    lines: int = 0  # data lines read
    kept: int = 0  # rows the filter kept
    first_day: int = np.iinfo(np.int32).max
    last_day: int = NO_DAY
    threshold: int = NO_DAY  # rows before this day are in sums/counts (and maybe sample); others in window
    sums: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # by cell * 7 + weekday
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sample: list[Frame] = field(default_factory=list)  # candidates among the training rows
    bound: int | None = None  # a priority the final sample stays within (set once sample_rows are known)
    window: list[Frame] = field(default_factory=list)  # rows from `threshold` on
    by_rows: int = 0  # partitions read by the row functions
    skipped: tuple[str, ...] = ()  # bad rows skipped ([data] max_bad_rows)

    @property
    def sample_rows(self) -> int:
        return sum(len(f["day"]) for f in self.sample)


def scan(columns: Frame, lines: int, spec: ScanSpec, by_rows: bool = False, skipped: tuple[str, ...] = (),
         bound: int | None = None) -> Partial:
    """One partition's compact columns as a Partial. bound: a Partial's bound known so far (rows
    above it cannot be in the sample, so they are dropped at once)."""
    frame = {name: np.asarray(columns[name], dtype=dtype) for name, dtype in COLUMNS.items() if name != "priority"}
    frame["priority"] = priorities(frame["day"], frame["cell"], spec.seed)
    part = Partial(lines=lines, kept=len(frame["day"]), by_rows=int(by_rows), skipped=tuple(skipped), bound=bound)
    if part.kept == 0:
        return part
    part.first_day, part.last_day = int(frame["day"].min()), int(frame["day"].max())
    part.threshold = max(spec.floor, part.last_day - spec.validation_days + 1)
    return _settle(part, [frame], spec, own=True)


def merge(a: Partial | None, b: Partial, spec: ScanSpec, own: bool = False) -> Partial:
    """Two Partials as one; exact, and the same in any order. own: a belongs to the caller, and
    its arrays may be updated in place (a running total in one process)."""
    if a is None:
        return b
    bounds = [x for x in (a.bound, b.bound) if x is not None]
    bound = min(bounds) if bounds else None
    out = Partial(
        lines=a.lines + b.lines, kept=a.kept + b.kept,
        first_day=min(a.first_day, b.first_day), last_day=max(a.last_day, b.last_day),
        sums=_add(a.sums, b.sums, own), counts=_add(a.counts, b.counts, own),
        sample=_within(a.sample, bound) + _within(b.sample, bound), bound=bound,
        by_rows=a.by_rows + b.by_rows, skipped=a.skipped + b.skipped,
    )
    if out.kept == 0:
        return out
    out.threshold = max(a.threshold, b.threshold, out.last_day - spec.validation_days + 1)
    return _settle(out, a.window + b.window, spec, own=True)


def _settle(part: Partial, pieces: list[Frame], spec: ScanSpec, own: bool) -> Partial:
    """Rows before part.threshold into the totals and sample candidates; the rest into the window."""
    window, train = [], []
    for piece in pieces:
        if not len(piece["day"]):
            continue
        if piece["day"].min() >= part.threshold:
            window.append(piece)
            continue
        training = piece["day"] < part.threshold
        if training.all():
            train.append(piece)
        else:
            train.append(take(piece, training))
            window.append(take(piece, ~training))
    part.window = window
    for rows in train:
        group = rows["cell"].astype(np.int64) * WEEKDAYS + weekday(rows["day"])
        size = max(int(group.max()) + 1, len(part.sums))
        milli = np.rint(rows["target"] * THOUSANDTHS)
        part.sums = _add(part.sums, np.rint(np.bincount(group, weights=milli, minlength=size)).astype(np.int64), own)
        part.counts = _add(part.counts, np.bincount(group, minlength=size).astype(np.int64), own)
        own = True
        part.sample += _within([rows], part.bound)
    if spec.sample_rows is not None and part.sample_rows > spec.sample_rows + spec.sample_rows // 4:
        cut = _smallest(concat(*part.sample), spec.sample_rows)
        part.sample, part.bound = [cut], int(cut["priority"][-1])
    return part


def _within(pieces: list[Frame], bound: int | None) -> list[Frame]:
    """The rows whose priority is at most bound: no other can be among the sample_rows smallest,
    as some Partial already holds that many rows within it."""
    if bound is None:
        return list(pieces)
    limit = np.uint64(bound)
    out = []
    for piece in pieces:
        keep = piece["priority"] <= limit
        if keep.all():
            out.append(piece)
        elif keep.any():
            out.append(take(piece, keep))
    return out


def _add(a: np.ndarray, b: np.ndarray, own: bool = False) -> np.ndarray:
    """a + b, the shorter padded with zeros; in place in a when a is ours and long enough (and
    b itself, when a is empty and ours to drop)."""
    if len(a) == 0 and own:
        return b
    if len(a) >= len(b) and own:
        a[: len(b)] += b
        return a
    if len(a) < len(b):
        a, b = b, a
    out = a.copy()
    out[: len(b)] += b
    return out


def _order(frame: Frame, rows: np.ndarray | None = None) -> np.ndarray:
    """A canonical order of rows (of `rows`, if given): by priority, then day, cell and the other
    columns, which only matter between rows of the same day and cell."""
    rows = np.arange(len(frame["day"])) if rows is None else rows
    order = rows[np.argsort(frame["priority"][rows], kind="stable")]
    if len(order) > 1 and (np.diff(frame["priority"][order]) == 0).any():  # ties: order them fully
        keys = tuple(frame[name][rows] for name in ("id", "promo", "target", "cell", "day", "priority"))
        order = rows[np.lexsort(keys)]
    return order


def _smallest(frame: Frame, k: int | None) -> Frame:
    """The k rows with the smallest priorities (all rows if k is None), in canonical order; built
    one column at a time."""
    priority = frame["priority"]
    rows = None
    if k is not None and len(priority) > k:
        kth = np.partition(priority, k - 1)[k - 1]
        rows = np.flatnonzero(priority <= kth)  # k rows, or a few more on ties at kth
    order = _order(frame, rows)[:k]
    return {name: values[order] for name, values in frame.items()}


@dataclass
class Scanned:
    """The pass's result: the training sample, every validation row, totals of all training rows."""

    sample: Frame  # training rows, at most sample_rows, in order of priority
    valid: Frame  # every validation row, by day and cell
    sums: np.ndarray  # target sums in thousandths, by cell * 7 + weekday, of every training row
    counts: np.ndarray
    lines: int
    kept: int
    first_day: int
    last_day: int
    cutoff: int  # the first validation day
    by_rows: int
    skipped: tuple[str, ...]

    @property
    def train_rows(self) -> int:
        return int(self.counts.sum())

    def cell_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums (in target units) and counts per cell, over every weekday."""
        n = -(-len(self.sums) // WEEKDAYS) * WEEKDAYS
        sums = np.pad(self.sums, (0, n - len(self.sums))).reshape(-1, WEEKDAYS).sum(axis=1)
        counts = np.pad(self.counts, (0, n - len(self.counts))).reshape(-1, WEEKDAYS).sum(axis=1)
        return sums / THOUSANDTHS, counts


def finish(part: Partial, spec: ScanSpec) -> Scanned:
    """Split off the validation days and cut the sample; errors name the setting to change."""
    if part.kept == 0:
        raise DataError(
            "no rows left after the filter",
            "Check [data] items and stores in params.toml (or --items) against the data.",
        )
    cutoff = part.last_day - spec.validation_days + 1
    if cutoff <= part.first_day:
        span = part.last_day - part.first_day + 1
        raise ConfigError(
            f"[split] validation_days={spec.validation_days} leaves no training data: the data spans {span} days. "
            "Lower validation_days in params.toml or use more data."
        )
    if part.threshold > cutoff:
        raise RuntimeError(f"the scan's floor (day {spec.floor}) was after the first validation day ({cutoff})")
    part = _settle(replace(part, threshold=cutoff, window=[], sample=list(part.sample)), part.window,
                   replace(spec, sample_rows=None), own=False)
    valid = _joined(part.window)
    key = valid["day"].astype(np.int64) << 32 | valid["cell"].astype(np.int64)
    order = np.argsort(key, kind="stable")
    if len(key) > 1 and (np.diff(key[order]) == 0).any():  # rows sharing a day and cell: order them fully
        order = np.lexsort((valid["id"], valid["promo"], valid["target"], valid["cell"], valid["day"]))
    del key
    for name in COLUMNS:  # one column at a time: memory for one more column, not a second frame
        valid[name] = valid[name][order]
    del order
    sample = _smallest(_joined(part.sample), spec.sample_rows)
    return Scanned(
        sample=sample, valid=valid, sums=part.sums, counts=part.counts, lines=part.lines,
        kept=part.kept, first_day=part.first_day, last_day=part.last_day, cutoff=cutoff,
        by_rows=part.by_rows, skipped=part.skipped,
    )


def day_of(number: int) -> date:
    """A day number (days since 1970-01-01) as a date."""
    return date(1970, 1, 1) + timedelta(days=int(number))


# --- the partitions' source and the scan in one process -----------------------------------------

class PartitionSource(Protocol):
    """What the scan needs of a problem's partitions (Favorita: problems/favorita/partitions.py)."""

    data_bytes: int  # the bytes of data read, for progress and estimates

    def __len__(self) -> int: ...
    def read(self, index: int) -> bytes: ...
    def batch(self, index: int, text: bytes | None = None) -> Any: ...
    def tail_batch(self, nbytes: int) -> Any: ...
    def columns(self, table: Any) -> Frame: ...
    def header(self) -> bytes: ...
    def sha256(self) -> str: ...


def scan_partition(source: PartitionSource, spec: ScanSpec, index: int, text: bytes | None = None,
                   bound: int | None = None) -> Partial:
    """Partition `index` read, through the batch stages, scanned: the task a thread or a Dask worker runs."""
    batch = source.batch(index, text)
    return scan(source.columns(batch.table), batch.lines, spec, batch.by_rows, batch.skipped, bound)


def scan_local(
    source: PartitionSource, spec: ScanSpec, threads: int, indices: Any = None,
    on_read: Callable[[int, bytes], None] | None = None,
) -> Partial:
    """Scan partitions with `threads` threads, reading them here in order (on_read sees each
    partition's bytes in file order, e.g. to hash them) and merging as they finish."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    indices = range(len(source)) if indices is None else indices
    total: Partial | None = None
    with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="cd4ml-scan") as pool:
        pending: deque = deque()
        for index in indices:
            text = source.read(index)
            if on_read:
                on_read(index, text)
            bound = total.bound if total is not None else None  # the sample so far bounds the next partitions'
            pending.append(pool.submit(scan_partition, source, spec, index, text, bound))
            while len(pending) > threads:
                total = merge(total, pending.popleft().result(), spec, own=True)
        while pending:
            total = merge(total, pending.popleft().result(), spec, own=True)
    return total if total is not None else Partial()


# --- training and validation on the scan's result ------------------------------------------------

class Encoder(Protocol):
    """The fitted features step of the model (Favorita: CompactSalesFeatures)."""

    def encode_frame(self, frame: Frame) -> np.ndarray: ...


@dataclass
class TrainedAtScale:
    model: Pipeline
    metrics: dict[str, float]
    predicted: np.ndarray  # the model's forecast of every validation row
    baseline: np.ndarray  # the naive baseline's


def build_scale_model(features: Any, model_name: str, params: dict[str, Any], seed: int) -> Pipeline:
    """Features and model as one sklearn Pipeline, like the row path's (no encoder step: the
    features are numbers already). The model forecasts sales relative to the features' first
    column, the level (the store-item's mean sales), as an offset. model_name: one of
    mode.SCALE_MODELS (models that take missing values; mode.choose_path checks it)."""
    estimator, _ = make_model(model_name, params, random_state=seed)
    return Pipeline([("features", features), ("model", NonNegative(RelativeToLevel(estimator, level=0)))])


def baseline_predict(sums: np.ndarray, counts: np.ndarray, frame: Frame) -> np.ndarray:
    """The naive baseline from the totals: the training mean of the row's cell on its weekday,
    else of its cell, else of all rows (DayOfWeekMean's rule, computed from exact totals)."""
    n = len(counts)
    cells = -(-n // WEEKDAYS)
    by_cell_sums = np.pad(sums, (0, cells * WEEKDAYS - n)).reshape(cells, WEEKDAYS).sum(axis=1)
    by_cell_counts = np.pad(counts, (0, cells * WEEKDAYS - n)).reshape(cells, WEEKDAYS).sum(axis=1)
    overall = sums.sum() / max(counts.sum(), 1) / THOUSANDTHS
    cell = frame["cell"].astype(np.int64)
    group = cell * WEEKDAYS + weekday(frame["day"])
    out = np.full(len(cell), overall)
    has_cell = cell < cells
    cell_count = np.zeros(len(cell))
    cell_count[has_cell] = by_cell_counts[cell[has_cell]]
    use_cell = cell_count > 0
    out[use_cell] = by_cell_sums[cell[use_cell]] / cell_count[use_cell] / THOUSANDTHS
    has_group = group < n
    group_count = np.zeros(len(cell))
    group_count[has_group] = counts[group[has_group]]
    use_group = group_count > 0
    out[use_group] = sums[group[use_group]] / group_count[use_group] / THOUSANDTHS
    return out


def train_and_validate_at_scale(
    scanned: Scanned, features: Any, encoder: Encoder, weights: np.ndarray, model_name: str,
    params: dict[str, Any], seed: int, expected: np.ndarray | None = None,
) -> TrainedAtScale:
    """Fit on the sample, score every validation row (in chunks), and the baseline and the best
    achievable forecast on the same rows, as the row path's train_and_validate does."""
    model = build_scale_model(features, model_name, params, seed)
    with threadpool_limits(limits=1 if len(scanned.sample["day"]) < SMALL_DATA_ROWS else None):
        model.named_steps["model"].fit(encoder.encode_frame(scanned.sample), scanned.sample["target"])
        predicted = predict_frame(model, encoder, scanned.valid)
    actual = scanned.valid["target"]
    baseline = baseline_predict(scanned.sums, scanned.counts, scanned.valid)
    metrics = compare(actual, weights, predicted, baseline, expected)
    metrics["rows_train"] = float(scanned.train_rows)
    metrics["rows_sample"] = float(len(scanned.sample["day"]))
    metrics["rows_valid"] = float(len(actual))
    return TrainedAtScale(model, metrics, predicted, baseline)


def predict_frame(model: Pipeline, encoder: Encoder, frame: Frame, rows: int = PREDICT_ROWS) -> np.ndarray:
    """The model's forecast of a frame's rows, PREDICT_ROWS at a time (memory stays bounded)."""
    estimator = model.named_steps["model"]
    n = len(frame["day"])
    out = np.empty(n)
    for start in range(0, n, rows):
        chunk = take(frame, slice(start, min(start + rows, n)))
        out[start:start + len(chunk["day"])] = estimator.predict(encoder.encode_frame(chunk))
    return out
