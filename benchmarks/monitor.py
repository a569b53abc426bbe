"""`benchmark --monitor`: the monitor's pass over one million logged events, time and memory.

The events are generated as the model server writes them (events.prediction_event, one
json.dumps line each) over seven days: 4,000 products with skewed popularity, two model
versions, a few malformed lines. Each measurement runs in a fresh process, so its peak RSS is
its own: the pass over 250,000 and over 1,000,000 events (memory must not grow with events),
then the whole `monitor` command (MLflow run and latest.json included) on the million.
Figures come from real runs on this machine; nothing here is asserted in a test.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from cd4ml.config import Settings
from cd4ml.events import prediction_event

END = datetime(2026, 11, 23, tzinfo=timezone.utc)
DAYS = 7
PROBLEM = "favorita"  # the events name their problem, as the server writes them; the pass reads that problem's


def write_events(path: Path, n: int, seed: int = 42, malformed_every: int = 100_000) -> None:
    """n prediction events over the DAYS before END, as JsonlSink writes them, plus a malformed
    line every `malformed_every` events."""
    rng = np.random.default_rng(seed)
    start = (END - timedelta(days=DAYS)).timestamp()
    stamps = np.sort(rng.uniform(start, END.timestamp(), n))
    catalogue = np.sort(rng.choice(np.arange(96_995, 2_134_244), 4000, replace=False))
    popularity = 1.0 / np.arange(1, len(catalogue) + 1)
    items = rng.choice(catalogue, n, p=popularity / popularity.sum())
    ahead = rng.integers(1, 30, n)
    forecasts = rng.gamma(2.0, 6.0, n)
    latencies = rng.lognormal(np.log(0.3), 0.8, n)
    versions = np.where(rng.random(n) < 0.8, "2", "1")
    first_day = END.date()
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps(prediction_event(
                problem=PROBLEM, date=(first_day + timedelta(days=int(ahead[i]))).isoformat(), item_nbr=int(items[i]),
                item_name=f"Item {items[i]}", store_nbr=47, onpromotion=False, prediction=float(forecasts[i]),
                model_version=str(versions[i]), run_id=f"run-{versions[i]}", latency_ms=float(latencies[i]),
                at=float(stamps[i]),
            )) + "\n")
            if malformed_every and i % malformed_every == malformed_every - 1:
                out.write('{"@timestamp": "2026-11-2\n')  # a line cut short by a full disk


def measure_pass(path: str) -> dict:
    """In this (fresh) process: the monitor's pass over the file; seconds and peak RSS."""
    from cd4ml.monitoring.jsonl_events import JsonlEvents
    from cd4ml.monitoring.window import Window
    from cd4ml.monitoring.run import gather, pass_processes

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = JsonlEvents(Path(path), problem=PROBLEM)
    started = time.perf_counter()
    stats, _ = gather(source, Window(END - timedelta(days=DAYS), END), processes=pass_processes())
    summary = stats.summary()
    seconds = time.perf_counter() - started
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"events": stats.count, "skipped": sum(source.skipped.values()), "seconds": seconds,
            "rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024, "p99_ms": summary["latency"]["p99_ms"],
            "processes": len(source.parts(pass_processes()))}


def benchmark_monitor(settings: Settings, events: int = 1_000_000) -> str:
    """Generate the events, measure the pass at two sizes and the whole command; return the report."""
    lines = [f"monitor benchmark: {events:,} events over {DAYS} days, {os.cpu_count()} CPU(s)", ""]
    with tempfile.TemporaryDirectory(prefix="cd4ml-monitor-bench-") as scratch:
        folder = Path(scratch)
        small, large = folder / "small.jsonl", folder / "events.jsonl"
        clock = time.perf_counter()
        write_events(large, events)
        write_events(small, events // 4)
        lines.append(f"generated {large.stat().st_size / 1e6:,.0f} MB of events in {time.perf_counter() - clock:.1f} s")
        lines.append(f"{'pass over':>22}{'seconds':>10}{'events/s':>12}{'RSS before':>12}{'peak RSS':>10}"
                     "  (largest process)")
        for path in (small, large):
            found = _in_fresh_process(path)
            lines.append(
                f"{found['events']:>14,} events{found['seconds']:>10.2f}{found['events'] / found['seconds']:>12,.0f}"
                f"{found['rss_before_mb']:>9.0f} MB{found['rss_peak_mb']:>7.0f} MB  in {found['processes']} process(es)"
            )
        lines.append(f"  (skipped {found['skipped']} malformed lines; p99 latency {found['p99_ms']:.3f} ms)")
        lines.append("")
        lines.append(_whole_command(settings, folder, large))
    return "\n".join(lines)


def _in_fresh_process(path: Path) -> dict:
    code = ("import json, sys; from benchmarks.monitor import measure_pass; "
            "print(json.dumps(measure_pass(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _whole_command(settings: Settings, folder: Path, events: Path) -> str:
    """`monitor` end to end on the events, in an embedded store of its own (no model deployed)."""
    env = {**os.environ, "CD4ML_DATA_DIR": str(folder / "data"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("CD4ML_ELASTICSEARCH_URL", None)
    command = [sys.executable, str(settings.paths.root / "run_python_script.py"), "monitor", "--source", "jsonl",
               "--events", str(events), "--since", (END - timedelta(days=DAYS)).isoformat(), "--until", END.isoformat()]
    subprocess.run(command[:3] + ["--help"], capture_output=True, env=env, timeout=120)  # warm the file cache
    first = _timed(command, env)  # creates the store and the experiment
    second = _timed(command, env)
    return (f"whole `monitor` command (MLflow run, latest.json; embedded store): first run {first:.1f} s "
            f"(creates the store), then {second:.1f} s")


def _timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode not in (0, 5):
        raise RuntimeError(f"monitor failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started
