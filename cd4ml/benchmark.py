"""The benchmark command: speed, memory and scores of the pipeline on workshop-size data.

Figures come from real runs on this machine; nothing here is asserted in a test.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from cd4ml.config import Settings
from cd4ml.problems import get_problem
from cd4ml.problems.favorita import schema

REPEATS = 3


def benchmark_pipeline(settings: Settings, data: Path | None) -> str:
    """Time the data pass and the whole pipeline; return the report."""
    source = data or _workshop_data(settings)
    settings = replace(settings, data=replace(settings.data, source=source))
    lines = [f"benchmark on {source} (items: {_items(settings)})", ""]
    lines += _data_pass(settings)
    lines += [""] + _whole_pipeline(settings)
    return "\n".join(lines)


def _workshop_data(settings: Settings) -> Path:
    folder = settings.paths.generated("workshop")
    path = folder / schema.WORKSHOP_FILE
    if not path.exists():
        from cd4ml.problems.favorita.generate import generate

        print(f"generating workshop data into {folder} ...", file=sys.stderr)
        generate("workshop", folder, seed=settings.seed)
    return path


def _items(settings: Settings) -> str:
    items = settings.data.items
    return "all" if items is None else ",".join(map(str, sorted(items)))


def _data_pass(settings: Settings) -> list[str]:
    """Read, process, filter and collect, timed REPEATS times; then once under tracemalloc."""
    problem = get_problem(settings.problem)
    seconds, lines_read, kept = [], 0, 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        source = problem.open(settings.data)
        table = problem.collect(problem.rows(source, settings.data))
        seconds.append(time.perf_counter() - started)
        lines_read, kept = source.stats.lines, len(table.target)
    tracemalloc.start()
    source = problem.open(settings.data)
    problem.collect(problem.rows(source, settings.data))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best, median = min(seconds), statistics.median(seconds)
    size_mb = source.stats.bytes / 1e6
    return [
        "data pass (read + process + filter + collect, the file read once)",
        f"  rows read         {lines_read:>12,}   ({size_mb:.1f} MB)",
        f"  rows kept         {kept:>12,}",
        f"  wall time         {best:>12.3f} s best of {REPEATS}, median {median:.3f} s",
        f"  rows per second   {lines_read / best:>12,.0f}",
        f"  peak Python heap  {peak / 1e6:>12.1f} MB   (flat: chunks of the file, plus the rows kept)",
    ]


def _whole_pipeline(settings: Settings) -> list[str]:
    """`pipeline --json` in a fresh process, as a user runs it, tracked to a 'benchmark' experiment."""
    env = {**os.environ, "CD4ML_TRACKING_EXPERIMENT": "benchmark"}
    command = [sys.executable, str(settings.paths.root / "run_python_script.py"), "--params", str(settings.params_file),
               "pipeline", "--data", str(settings.data.source), "--items", _items(settings), "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return [f"pipeline failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    metrics, rows = result["metrics"], result["data"]["rows_read"]
    store = "remote server" if settings.tracking.remote else "local SQLite store"
    lines = [
        f"whole pipeline (a fresh process: imports, data, train, validate, MLflow logging to the {store})",
        f"  wall time         {wall:>12.2f} s",
        f"  peak memory       {peak_mb:>12.0f} MB   (largest process, resident)",
        f"  rows per second   {rows / wall:>12,.0f}   (rows read / wall time)",
        f"  stage seconds     " + ", ".join(f"{k} {v:.2f}" for k, v in result["seconds"].items()),
        "",
        f"  {'':10}{'model':>10}{'baseline':>10}{'best':>10}",
    ]
    for name in ("r2", "nwrmsle", "mae"):
        best = metrics.get(f"best_{name}")
        lines.append(
            f"  {name:10}{metrics[name]:10.4f}{metrics[f'baseline_{name}']:10.4f}"
            + (f"{best:10.4f}" if best is not None else f"{'-':>10}")
        )
    if "r2_gap_closed" in metrics:
        lines.append(f"  the model closes {100 * metrics['r2_gap_closed']:.0f}% of the r2 gap from baseline to best")
    lines.append(f"  run {result['run_id']} (experiment 'benchmark')")
    return lines
