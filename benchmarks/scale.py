"""`benchmark --size full`: the scale path on Kaggle-sized data, stage by stage, at growing sizes.

For 1 million, 10 million and all (~126 million) rows of train.csv (the first N lines), each
stage runs in a fresh process, so that its peak memory (ru_maxrss) is its own:

    arrow     pyarrow's own streaming CSV reader over the same lines (open_csv): the yardstick
    pass      read -> parse -> process -> filter -> join, the batch path (cd4ml/problems/favorita/batches.py)
    scan      the pass, the compact columns, exact totals, the sample and the validation rows, finish
    pipeline  `pipeline --scale --max-rows N`: scan, features, train, validate, log to a scratch MLflow store

Then the accuracy cost of the sample strategy, against training on every row where that fits in
memory. Figures come from real runs on this machine; nothing here is asserted in a test.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cd4ml.config import Settings

SIZES = (1_000_000, 10_000_000, None)  # None: every row
STAGES = ("arrow", "pass", "scan", "pipeline")
SMALL_VALIDATION_DAYS = 3  # the first million rows span 13 days: 57 would leave no training data


def full_data(settings: Settings, data: Path | None) -> Path:
    """The Kaggle-sized data: --data, or data/full, generated (streamed, ~75 s) when missing."""
    folder = Path(data).resolve() if data else settings.paths.generated("full")
    if not (folder / "train.csv").exists():
        if data:
            from cd4ml.errors import DataError

            raise DataError(f"{folder / 'train.csv'} does not exist", "Point --data at a Kaggle-layout folder.")
        from cd4ml.problems import generator, get_problem

        print(f"generating the full data set into {folder} (about 7 GB, a minute or two) ...", file=sys.stderr, flush=True)
        summary = generator(get_problem(settings.problem)).generate("full", folder, settings.seed)
        print(f"  {summary['rows']:,} rows in {summary['seconds']:.0f} s", file=sys.stderr, flush=True)
    return folder


def benchmark_full(settings: Settings, data: Path | None, sizes: tuple[int | None, ...] = SIZES,
                   accuracy: bool = True) -> str:
    """Every stage at every size, then the accuracy of the strategy; the report."""
    folder = full_data(settings, data)
    train = folder / "train.csv"
    lines = [
        f"scale benchmark on {train} ({train.stat().st_size / 1e9:.2f} GB), {os.cpu_count()} cores, "
        f"[scale] partition_mb {settings.scale.partition_mb:g}, threads {settings.scale.threads}, "
        f"strategy {settings.scale.strategy}, sample_rows {settings.scale.sample_rows:,}",
        "each stage in a fresh process; peak = its ru_maxrss (imports included: see 'idle')",
        "",
        f"{'rows':>12}  {'stage':<9}{'seconds':>9}{'rows/s':>13}{'peak MB':>9}   notes",
    ]
    results: dict[tuple[Any, str], dict] = {}
    idle = _stage(settings, "idle", folder, None)
    lines.append(f"{'':>12}  {'idle':<9}{'':>9}{'':>13}{idle['peak_mb']:>9.0f}   python with numpy, pyarrow, sklearn imported")
    for size in sizes:
        for stage in STAGES:
            result = _stage(settings, stage, folder, size)
            results[(size, stage)] = result
            lines.append(_line(size, stage, result))
        print("\n".join(lines[-len(STAGES):]), file=sys.stderr, flush=True)
    lines += [""] + _targets(results, sizes)
    if accuracy:
        lines += [""] + benchmark_accuracy(settings, folder)
    return "\n".join(lines)


def _line(size: int | None, stage: str, result: dict) -> str:
    if "error" in result:
        return f"{_rows(size):>12}  {stage:<9}   failed: {result['error']}"
    rate = result["rows"] / result["seconds"] if result["seconds"] else 0
    return (f"{_rows(size):>12}  {stage:<9}{result['seconds']:>9.1f}{rate:>13,.0f}{result['peak_mb']:>9.0f}   "
            f"{result.get('note', '')}")


def _rows(size: int | None) -> str:
    return "all" if size is None else f"{size:,}"


def _targets(results: dict, sizes: tuple[int | None, ...]) -> list[str]:
    """The issue's targets against the figures above."""
    out = ["targets"]
    whole = results.get((None, "pass"))
    if whole and "error" not in whole:
        rate = whole["rows"] / whole["seconds"]
        out.append(f"  one streaming pass over all {whole['rows']:,} rows: {rate / 1e6:.2f} M rows/s "
                   f"(target >= 5): {'met' if rate >= 5e6 else 'NOT met'}")
    for stage in ("pass", "scan", "pipeline"):
        small, big = results.get((sizes[0], stage)), results.get((None, stage))
        if small and big and "error" not in small and "error" not in big:
            ratio = big["peak_mb"] / small["peak_mb"]
            met = ratio <= 2 and big["peak_mb"] < 1536
            out.append(f"  peak memory, {stage}: {big['peak_mb']:.0f} MB for all rows, {small['peak_mb']:.0f} MB for "
                       f"{_rows(sizes[0])}: x{ratio:.2f} (target <= x2 and < 1,536 MB): {'met' if met else 'NOT met'}")
    end_to_end = results.get((None, "pipeline"))
    if end_to_end and "error" not in end_to_end:
        out.append(f"  the full-scale pipeline end to end: {end_to_end['seconds'] / 60:.1f} min "
                   f"(target < 10): {'met' if end_to_end['seconds'] < 600 else 'NOT met'}")
    return out


def _stage(settings: Settings, stage: str, folder: Path, size: int | None, extra: list[str] | None = None) -> dict:
    """Run one stage in a fresh process; its JSON result."""
    command = [sys.executable, "-m", "benchmarks.scale", stage, str(folder), str(size or 0),
               str(settings.params_file), *(extra or [])]
    env = {**os.environ, "PYTHONPATH": str(settings.paths.root)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, cwd=settings.paths.root)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the stages, each run as `python -m benchmarks.scale STAGE FOLDER ROWS PARAMS` ----------

def _settings_for(folder: Path, size: int | None, params: Path, **scale_changes: Any) -> Settings:
    from cd4ml.config import load_settings

    settings = load_settings(params, overrides={"data.source": str(folder), "data.items": "all", "data.stores": "all"})
    changes = {"max_rows": size, "mode": "on", **scale_changes}
    settings = replace(settings, scale=replace(settings.scale, **changes))
    if size is not None and size <= 1_000_000:
        settings = replace(settings, validation_days=SMALL_VALIDATION_DAYS)
    return settings


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_stage(stage: str, folder: Path, size: int | None, params: Path, extra: list[str]) -> dict:
    settings = _settings_for(folder, size, params)
    if stage == "idle":
        import numpy  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import sklearn.ensemble  # noqa: F401

        from cd4ml.pipeline import run_scale  # noqa: F401
        return {"rows": 0, "seconds": 0.0, "peak_mb": _peak_mb()}
    if stage == "arrow":
        return _arrow(settings)
    if stage == "pass":
        return _pass(settings)
    if stage == "scan":
        return _scan(settings)
    if stage == "pipeline":
        return _pipeline(settings, params, size)
    if stage == "accuracy":
        strategy, sample_rows, stores = extra
        return _accuracy(folder, params, strategy, int(sample_rows), stores)
    raise ValueError(f"unknown stage {stage!r}")


def _partitions(settings: Settings):
    from cd4ml.problems import get_problem

    problem = get_problem(settings.problem)
    source = problem.open(settings.data, None)
    parts = problem.partitions(source, settings.data, int(settings.scale.partition_mb * (1 << 20)), settings.scale.max_rows)
    return problem, source, parts


def _arrow(settings: Settings) -> dict:
    """pyarrow's streaming CSV reader (its own threads) over the same lines, typed the same way."""
    import pyarrow.csv as pacsv

    from cd4ml.problems import get_problem

    limit = settings.scale.max_rows
    types = get_problem(settings.problem).scale_columns  # train.csv's columns as the batch path types them
    started = time.perf_counter()
    reader = pacsv.open_csv(
        Path(settings.data.source) / "train.csv",
        read_options=pacsv.ReadOptions(block_size=16 << 20, use_threads=True),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        if limit and rows >= limit:
            break
    rows = min(rows, limit) if limit else rows
    return {"rows": rows, "seconds": time.perf_counter() - started, "peak_mb": _peak_mb(),
            "note": "pyarrow.csv.open_csv, 16 MB blocks, its own threads"}


def _pass(settings: Settings) -> dict:
    """Read, parse, process, filter and join every partition (threads); keep nothing."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    _, _, partitions = _partitions(settings)
    rows = kept = 0
    threads = settings.scale.threads
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for index in range(len(partitions)):
            pending.append(pool.submit(partitions.batch, index, partitions.read(index)))
            while len(pending) > threads:
                batch = pending.popleft().result()
                rows, kept = rows + batch.lines, kept + batch.table.num_rows
        for future in pending:
            batch = future.result()
            rows, kept = rows + batch.lines, kept + batch.table.num_rows
    return {"rows": rows, "seconds": time.perf_counter() - started, "peak_mb": _peak_mb(),
            "note": f"{len(partitions)} batches, {threads} threads, {kept:,} rows kept"}


def _scan(settings: Settings) -> dict:
    """The scan stage of the scale path, with the fingerprint, as run_scale runs it."""
    from cd4ml.pipeline.run_scale import scan_data
    from cd4ml.progress import Reporter

    started = time.perf_counter()
    problem, source, partitions = _partitions(settings)
    done = scan_data(settings, Reporter(quiet=True), problem, source, partitions)
    s = done.scanned
    return {"rows": s.lines, "seconds": time.perf_counter() - started, "peak_mb": _peak_mb(),
            "note": f"sample {len(s.sample['day']):,}, validation rows {len(s.valid['day']):,}, "
                    f"training rows {s.train_rows:,}, {s.by_rows} batches by rows"}


def _pipeline(settings: Settings, params: Path, size: int | None) -> dict:
    """`pipeline --scale` in a child process, tracked to a scratch embedded store."""
    with tempfile.TemporaryDirectory(prefix="cd4ml-scale-bench-") as scratch:
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DASK_SCHEDULER_ADDRESS")}
        env.update({"CD4ML_DATA_DIR": scratch, "CD4ML_SPLIT_VALIDATION_DAYS": str(settings.validation_days)})
        command = [sys.executable, str(settings.paths.root / "run_python_script.py"), "--params", str(params),
                   "pipeline", "--data", str(settings.data.source), "--items", "all", "--stores", "all", "--scale",
                   "--json", *(["--max-rows", str(size)] if size else [])]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    m, s = result["metrics"], result["seconds"]
    return {"rows": result["data"]["rows_read"], "seconds": wall, "peak_mb": peak,
            "note": (f"scan {s['scan']:.0f} s, train+validate {s['train_validate']:.0f} s, logging {s['logging']:.0f} s; "
                     f"r2 {m['r2']:.4f} (baseline {m['baseline_r2']:.4f}, best {m.get('best_r2', float('nan')):.4f}) "
                     f"on {m['rows_valid']:,.0f} validation rows")}


# --- the accuracy cost of the strategy --------------------------------------------------------

ACCURACY_CASES = (
    # (label, stores, [(strategy, sample_rows), ...]): every row vs samples, where every row fits
    ("4 stores (about 9 M rows, 4.6 years)", "1,2,3,4", (("all", 0), ("sample", 2_000_000), ("sample", 500_000))),
    ("store 47 (about 4 M rows)", "47", (("all", 0), ("sample", 1_000_000), ("sample", 200_000))),
)


def benchmark_accuracy(settings: Settings, folder: Path) -> list[str]:
    """Train on every training row and on samples of them, same data, same validation rows."""
    lines = [
        "accuracy of the strategy: the same validation rows (the last 57 days), every training row vs samples",
        f"  {'data':<38}{'training on':>22}{'r2':>8}{'NWRMSLE':>9}{'MAE':>8}{'train s':>9}{'peak MB':>9}",
    ]
    for label, stores, runs in ACCURACY_CASES:
        for strategy, sample_rows in runs:
            result = _stage(settings, "accuracy", folder, None, [strategy, str(sample_rows), stores])
            if "error" in result:
                lines.append(f"  {label:<38}{strategy:>22}   failed: {result['error']}")
                continue
            what = f"all {result['train_rows']:,}" if strategy == "all" else f"sample {result['sample_rows']:,}"
            lines.append(f"  {label:<38}{what:>22}{result['r2']:>8.4f}{result['nwrmsle']:>9.4f}{result['mae']:>8.3f}"
                         f"{result['train_seconds']:>9.0f}{result['peak_mb']:>9.0f}")
            label = ""
        lines.append(f"  {'':<38}{'baseline / best':>22}{result['baseline_r2']:>8.4f}{result['baseline_nwrmsle']:>9.4f}"
                     f"{result['baseline_mae']:>8.3f}   /  best r2 {result.get('best_r2', float('nan')):.4f}")
    return lines


def _accuracy(folder: Path, params: Path, strategy: str, sample_rows: int, stores: str) -> dict:
    from cd4ml.config import load_settings
    from cd4ml.pipeline import scale
    from cd4ml.pipeline.run_scale import scan_data
    from cd4ml.progress import Reporter

    settings = load_settings(params, overrides={"data.source": str(folder), "data.items": "all", "data.stores": stores})
    settings = replace(settings, scale=replace(settings.scale, mode="on", strategy=strategy,
                                               sample_rows=sample_rows or settings.scale.sample_rows))
    problem, source, partitions = _partitions(settings)
    scanned = scan_data(settings, Reporter(quiet=True), problem, source, partitions).scanned
    started = time.perf_counter()
    features = partitions.features(scanned)
    trained = scale.train_and_validate_at_scale(
        scanned, features, features, partitions.weights(scanned.valid), settings.model.name,
        dict(settings.model.params), settings.seed, partitions.expected(scanned.valid["id"]),
    )
    m = trained.metrics
    return {**m, "train_rows": scanned.train_rows, "sample_rows": len(scanned.sample["day"]),
            "train_seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}


def _main(argv: list[str]) -> int:
    stage, folder, size, params, *extra = argv
    result = _run_stage(stage, Path(folder), int(size) or None, Path(params), extra)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
