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
from string import Template

from benchmarks.processes import free_port, mlflow_server, wait_until_up
from benchmarks.stalling_fluentd import StallingFluentd
from cd4ml.config import Settings
from cd4ml.problems import generator, get_problem

REPEATS = 3


def benchmark_pipeline(settings: Settings, data: Path | None) -> str:
    """Time the data pass and the whole pipeline; return the report."""
    source = data or workshop_data(settings)
    settings = replace(settings, data=replace(settings.data, source=source))
    lines = [f"benchmark on {source} (items: {_items(settings)})", ""]
    lines += _data_pass(settings)
    lines += [""] + _whole_pipeline(settings)
    return "\n".join(lines)


def benchmark_houses(settings: Settings, data: Path | None) -> str:
    """The houses problem (params-houses.toml): the data pass and the whole pipeline, with r2
    against the zip-mean baseline and the best achievable (the generator's expected prices)."""
    source = data or workshop_data(settings)
    settings = replace(settings, data=replace(settings.data, source=source))
    lines = [f"benchmark of the houses problem on {source} (model {settings.model.name}, "
             f"features {settings.feature_set!r}, split by {settings.split_by})", ""]
    lines += _data_pass(settings)
    lines += [""] + _whole_pipeline(settings)
    return "\n".join(lines)


def workshop_data(settings: Settings) -> Path:
    """The file the problem's default params read in its workshop-size data (data/workshop/store47-2016.csv,
    data/houses/sales.csv: 100,000 sales), written first by the problem's generator when it is missing."""
    problem = generator(get_problem(settings.problem))
    folder = settings.paths.generated(problem.data_folder("workshop"))
    path = folder / problem.default_file
    if not path.exists():
        print(f"generating {problem.name} data into {folder} ...", file=sys.stderr)
        problem.generate("workshop", folder, settings.seed)
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
    items = ["--items", _items(settings)] if "items" in settings.raw["data"] else []  # a problem with items
    command = [sys.executable, str(settings.paths.root / "run_python_script.py"), "--params", str(settings.params_file),
               "pipeline", "--data", str(settings.data.source), *items, "--json"]
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
        "  stage seconds     " + ", ".join(f"{k} {v:.2f}" for k, v in result["seconds"].items()),
        "",
        f"  {'':10}{'model':>10}{'baseline':>10}{'best':>10}",
    ]
    for name in (n for n in ("r2", "nwrmsle", "rmse", "mae", "mape") if n in metrics):  # the problem's metrics
        best = metrics.get(f"best_{name}")
        cell = "{:10.4f}".format if abs(metrics[name]) < 10_000 else "{:10,.0f}".format
        lines.append(f"  {name:10}{cell(metrics[name])}{cell(metrics[f'baseline_{name}'])}"
                     + (cell(best) if best is not None else f"{'-':>10}"))
    if "r2_gap_closed" in metrics:
        lines.append(f"  the model closes {100 * metrics['r2_gap_closed']:.0f}% of the r2 gap from baseline to best")
    lines.append(f"  run {result['run_id']} (experiment 'benchmark')")
    return lines


def benchmark_matrix(settings: Settings, root: Path) -> str:
    """The default model against the naive baseline on every set of the problem's model matrix
    (Favorita's: cd4ml/problems/favorita/matrix.py), generated into root: r2 of the model, the
    baseline and the best achievable forecast, and the share of the gap between them the model closes."""
    from cd4ml.pipeline.models import MODELS
    from cd4ml.pipeline.run import fit_and_validate

    spec, params = MODELS[settings.model.name], dict(settings.model.params)
    effective = {**spec.defaults, **spec.row_defaults, **params}  # what make_forecaster builds
    lines = [f"the model matrix: {settings.model.name} {effective} against the naive baseline, r2",
             "", f"  {'data set':66}{'model':>8}{'baseline':>10}{'best':>8}{'gap closed':>12}"]
    for entry in get_problem(settings.problem).model_matrix():
        data = replace(settings.data, source=entry.source(root), items=None if entry.all_items else settings.data.items)
        metrics = fit_and_validate(replace(settings, data=data))[0].metrics
        gap = metrics.get("r2_gap_closed")
        lines.append(f"  {entry.name:66}{metrics['r2']:8.4f}{metrics['baseline_r2']:10.4f}{metrics['best_r2']:8.4f}"
                     + (f"{100 * gap:11.0f}%" if gap is not None else f"{'-':>12}"))
    return "\n".join(lines)


def with_trees(text: str, trees: int) -> str:
    """params.toml text with [model.gradient_boosting] max_iter = trees (the line edited in place,
    or added), checked by parsing the result; any other model is an error, not two equal models."""
    import re
    import tomllib

    from cd4ml.errors import ConfigError

    name = tomllib.loads(text).get("model", {}).get("name", "gradient_boosting")
    if name != "gradient_boosting":
        raise ConfigError(f"the benchmark deploys gradient_boosting with {trees} trees; params.toml [model] name is {name!r}.",
                          'Benchmark with [model] name = "gradient_boosting".')
    table = re.search(r"(?ms)^\[model\.gradient_boosting\][^\n]*\n(.*?)(?=^\[|\Z)", text)
    if table is None:
        edited = text.rstrip("\n") + f"\n\n[model.gradient_boosting]\nmax_iter = {trees}\n"
    else:
        body, count = re.subn(r"(?m)^(max_iter\s*=\s*)\d[\d_]*", rf"\g<1>{trees}", table.group(1), count=1)
        if count == 0:
            body = f"max_iter = {trees}\n" + body
        edited = text[:table.start(1)] + body + text[table.end(1):]
    if tomllib.loads(edited)["model"]["gradient_boosting"].get("max_iter") != trees:
        raise ConfigError(f"could not set [model.gradient_boosting] max_iter = {trees} in params.toml.",
                          "Write max_iter as a plain integer under [model.gradient_boosting].")
    return edited


def _deploy_versions(cli: list[str], env: dict, settings: Settings, scratch: str, trees: tuple[int, ...] = (50, 100)) -> None:
    """pipeline and acceptance with each number of trees, and one accepted version each, in the
    benchmark's scratch store. The first is deployed by `deploy`; the others differ from the defaults,
    so they are experiments that deploy refuses (docs/experiments.md): what is measured here is a swap
    between two models that forecast differently, so they are registered and promoted through the
    registry itself."""
    from mlflow import MlflowClient

    from cd4ml import registry

    for i, count in enumerate(trees):
        params = Path(scratch) / f"params-{count}.toml"
        params.write_text(with_trees(settings.params_file.read_text(), count))
        for command in ("pipeline", "acceptance") + (("deploy",) if i == 0 else ()):
            subprocess.run([*cli, "--params", str(params), command], env=env, check=True, capture_output=True, timeout=600)
        if i:
            last = json.loads((Path(env["CD4ML_DATA_DIR"]) / "last_run.json").read_text())
            client = MlflowClient(last["tracking_uri"], last["tracking_uri"])
            name = settings.tracking.registered_model
            tags = client.get_run(last["run_id"]).data.tags
            registry.promote(client, name, registry.register(client, name, last["run_id"], last["model_uri"], tags))


LUA = Path(__file__).resolve().parent / "lua"


def _lua(scratch: Path, name: str, values: dict, then: str | None = None) -> Path:
    """lua/NAME with its ${placeholders} filled in (and lua/THEN appended), written to scratch for wrk."""
    text = Template((LUA / name).read_text()).substitute(values) + ((LUA / then).read_text() if then else "")
    script = scratch / name
    script.write_text(text)
    return script


def _random_script(settings: Settings, scratch: Path, then: str | None = None) -> Path:
    """random.lua over the configured products and 2016-01-01 .. 2017-12-31."""
    items = ", ".join(map(str, sorted(settings.data.items or [99197])))
    return _lua(scratch, "random.lua", {"items": items, "first": 1451606400, "days": 731}, then)


def benchmark_server(settings: Settings, seconds: int = 10) -> str:
    """Requests per second and latency of /prediction on the real gunicorn server (events on),
    and how long a rollback takes, in a scratch data folder with its own MLflow store."""
    import shutil
    import tempfile

    if shutil.which("wrk") is None:
        return "server benchmark skipped: wrk is not installed (apt-get install wrk)"
    with tempfile.TemporaryDirectory(prefix="cd4ml-bench-") as scratch:
        with mlflow_server(Path(scratch)) as tracking_uri:
            return _serve_and_measure(settings, seconds, scratch, tracking_uri)


def _serve_and_measure(settings: Settings, seconds: int, scratch: str, tracking_uri: str) -> str:
    """Deploy two versions (50 and 100 trees), serve, load it with wrk, then time a rollback."""
    env = dict(os.environ)
    env.update({"CD4ML_BRANCH": "main", "CD4ML_DATA_DIR": scratch, "CD4ML_ADMIN_TOKEN": "benchmark-token", "MLFLOW_TRACKING_URI": tracking_uri,
                "CD4ML_DATA_SOURCE": str(settings.data.source)})
    cli = [sys.executable, str(settings.paths.root / "run_python_script.py"), "--params", str(settings.params_file)]
    _deploy_versions(cli[:-2], env, settings, scratch)  # something to roll back to
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", server, 120)
        lines = [f"model server (gunicorn, {settings.serving.workers} workers, prediction events to a JSONL file, "
                 f"registry on a local `mlflow server`), /prediction with random dates and products, {seconds} s each"]
        script = _random_script(settings, Path(scratch))
        for label, threads, connections in (("1 client ", 1, 1), ("8 clients", 2, 8)):
            lines.append(f"  {label}  " + _wrk(url, script, threads, connections, seconds))
        lines.append("  " + _rollback(cli, env, url))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return "\n".join(lines)


def _wrk(url: str, script: Path, threads: int, connections: int, seconds: int) -> str:
    done = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                          capture_output=True, text=True, timeout=seconds + 60)
    text = done.stdout
    rate = _find(r"Requests/sec:\s+([\d.]+)", text)
    p50, p99 = _find(r"\s50%\s+([\d.]+\w+)", text), _find(r"\s99%\s+([\d.]+\w+)", text)
    errors = _find(r"Non-2xx or 3xx responses:\s+(\d+)", text) or "0"
    socket_errors = _find(r"Socket errors:(.*)", text) or " none"
    return f"{float(rate or 0):>8,.0f} requests/s   p50 {p50}   p99 {p99}   non-2xx {errors}   socket errors:{socket_errors}"


def _rollback(cli: list[str], env: dict, url: str) -> str:
    """Time from `rollback` (v2 -> v1) and `rollback --to 2` until every answer of the server
    comes from the version moved to: the commands nudge the local server, no POST /reload."""
    parts = []
    for argv, version in ((["rollback"], "1"), (["rollback", "--to", "2"], "2")):
        started = time.perf_counter()
        subprocess.run([*cli, *argv], env=env, check=True, capture_output=True, timeout=120)
        command = time.perf_counter() - started
        served = _served_after(url, version, started)
        parts.append(f"{' '.join(argv)} -> v{version}: the command took {command:.2f} s, "
                     f"every worker answered with v{version} after {served:.2f} s")
    return "; ".join(parts)


def _served_after(url: str, version: str, started: float, streak: int = 10, seconds: float = 120) -> float:
    """Seconds from `started` until `streak` answers in a row (every worker) come from `version`."""
    import requests

    deadline, run = time.monotonic() + seconds, 0
    while run < streak:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer with v{version} within {seconds:g} s")
        run = run + 1 if requests.get(f"{url}/version", timeout=5).json().get("model_version") == version else 0
        if not run:
            time.sleep(0.02)
    return time.perf_counter() - started


def _find(pattern: str, text: str) -> str | None:
    import re

    match = re.search(pattern, text)
    return match.group(1).strip() if match else None


def benchmark_load(settings: Settings, seconds: int = 60, move_every: float = 5.0, connections: int = 8) -> str:
    """`benchmark --load`: the real gunicorn server driven by wrk (a second process) for `seconds`,
    while the production alias moves between two registered versions every `move_every` seconds.

    Every answer is checked in wrk (LOAD_SCRIPT): its version must be a registered one and its
    forecast the one that version gives; anything else is a mixed-version answer.
    """
    import shutil
    import tempfile

    if shutil.which("wrk") is None:
        return "load benchmark skipped: wrk is not installed (apt-get install wrk)"
    with tempfile.TemporaryDirectory(prefix="cd4ml-load-") as scratch:
        with mlflow_server(Path(scratch)) as tracking_uri:
            return _load(settings, seconds, move_every, connections, scratch, tracking_uri)


def _load(settings: Settings, seconds: int, move_every: float, connections: int, scratch: str, tracking_uri: str) -> str:
    import threading

    import requests
    from mlflow import MlflowClient

    from cd4ml import registry

    env = dict(os.environ)
    env.update({"CD4ML_BRANCH": "main", "CD4ML_DATA_DIR": scratch, "CD4ML_ADMIN_TOKEN": "benchmark-token", "MLFLOW_TRACKING_URI": tracking_uri,
                "CD4ML_DATA_SOURCE": str(settings.data.source), "CD4ML_SERVING_POLL_SECONDS": "0.5"})
    env.pop("FLUENTD_HOST", None)
    cli = [sys.executable, str(settings.paths.root / "run_python_script.py")]
    _deploy_versions(cli, env, settings, scratch)  # two versions that forecast differently
    client, name = MlflowClient(tracking_uri), settings.tracking.registered_model
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*cli, "--params", str(settings.params_file), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"{url}/health", server, 120)
        items = sorted(settings.data.items or [99197])
        days = [f"2017-01-{d:02d}" for d in range(1, 29)]
        questions = [(day, item) for day in days for item in items]
        expected: dict[str, dict[str, float]] = {}
        for version in ("1", "2"):  # every version's forecasts, asked while it alone is in production
            registry.rollback(client, name, to=version)
            requests.post(f"{url}/reload", headers={"Authorization": "Bearer benchmark-token"}, timeout=30)
            _until_served(url, version)
            expected[version] = {
                f"{day}/{item}": requests.get(f"{url}/prediction", params={"date": day, "item_nbr": item}, timeout=5).json()["prediction"]
                for day, item in questions
            }
        differ = sum(expected["1"][k] != expected["2"][k] for k in expected["1"])
        script = _lua(Path(scratch), "load.lua", {
            "questions": ", ".join(f'{{"{d}", {i}}}' for d, i in questions),
            "expected": ", ".join(
                f'["{v}"] = {{' + ", ".join(f'["{k}"] = {f!r}' for k, f in forecasts.items()) + "}"
                for v, forecasts in expected.items()),
        })

        moves: list[str] = []
        stop = threading.Event()

        def move_alias() -> None:  # what `rollback --to N` does, every move_every seconds
            version = "2"
            while not stop.wait(move_every):
                version = "1" if version == "2" else "2"
                moves.append(str(registry.rollback(client, name, to=version)))

        mover = threading.Thread(target=move_alias, daemon=True)
        mover.start()
        try:
            done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                                  capture_output=True, text=True, timeout=seconds + 120)
        finally:
            stop.set()
            mover.join(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)
    found = _find(r"CD4ML (.*)", done.stdout)
    if found is None:
        return f"load benchmark failed: wrk said\n{done.stdout}{done.stderr}"
    r = {k: v for k, v in (pair.split("=", 1) for pair in found.split())}
    requests_made, duration = int(r["requests"]), float(r["seconds"])
    errors = sum(int(r[k]) for k in ("non200", "connect", "read", "write", "timeout", "malformed"))
    ms = lambda key: f"{int(r[key]) / 1000:.2f} ms"  # noqa: E731
    return "\n".join([
        f"load: the model server (gunicorn, {settings.serving.workers} workers, events to a JSONL file, registry on a "
        f"local `mlflow server`) under wrk (2 threads, {connections} connections) for {duration:.1f} s, /prediction over "
        f"{len(questions)} questions; production moved between v1 and v2 every {move_every:g} s ({len(moves)} moves)",
        f"  requests/s      {requests_made / duration:>10,.0f}   ({requests_made:,} requests)",
        f"  latency         p50 {ms('p50_us')}   p99 {ms('p99_us')}   p99.9 {ms('p999_us')}   max {ms('max_us')}",
        f"  errors          {errors}   (non-2xx {r['non200']}, malformed {r['malformed']}, socket connect {r['connect']} "
        f"read {r['read']} write {r['write']} timeout {r['timeout']})",
        f"  mixed versions  {int(r['mixed']) + int(r['unknown'])}   ({int(r['checked']):,} answers checked against the "
        f"forecasts of their version; {differ} of {len(questions)} questions are answered differently by v1 and v2; "
        f"answers by version: {r['versions']})",
    ])


def _until_served(url: str, version: str, seconds: float = 60) -> None:
    """Until 20 answers in a row come from `version` (so every worker has it)."""
    import requests

    deadline, streak = time.monotonic() + seconds, 0
    while time.monotonic() < deadline and streak < 20:
        streak = streak + 1 if requests.get(f"{url}/version", timeout=5).json().get("model_version") == version else 0
        time.sleep(0.02)
    if streak < 20:
        raise RuntimeError(f"the server did not move to version {version} within {seconds} s")


def benchmark_fluentd_fault(settings: Settings, seconds: int = 10, connections: int = 8, warm_up: int = 3) -> str:
    """`benchmark --fluentd-fault`: wrk against the real gunicorn server with its prediction events
    going to the JSONL file (normal), to a fluentd port where nothing listens (unreachable), and to
    a listener that accepts and never reads (stalling); then normal again, to show the noise.

    One fresh server per phase (FLUENTD_HOST is read at start), `warm_up` seconds of load first (they
    also fill the socket buffers towards the stalled listener), then `seconds` measured. Dropped
    events: what the workers log at exit (every worker's count; the sum is shown), and /version.
    """
    import shutil
    import tempfile

    if shutil.which("wrk") is None:
        return "fluentd fault benchmark skipped: wrk is not installed (apt-get install wrk)"
    with tempfile.TemporaryDirectory(prefix="cd4ml-fluentd-") as scratch:
        with mlflow_server(Path(scratch)) as tracking_uri:
            return _fluentd_fault(settings, seconds, connections, warm_up, Path(scratch), tracking_uri)


def _fluentd_fault(settings: Settings, seconds: int, connections: int, warm_up: int, scratch: Path,
                   tracking_uri: str) -> str:
    env = dict(os.environ)
    env.update({"CD4ML_BRANCH": "main", "CD4ML_DATA_DIR": str(scratch), "CD4ML_ADMIN_TOKEN": "benchmark-token", "MLFLOW_TRACKING_URI": tracking_uri,
                "CD4ML_DATA_SOURCE": str(settings.data.source)})
    env.pop("FLUENTD_HOST", None)
    cli = [sys.executable, str(settings.paths.root / "run_python_script.py"), "--params", str(settings.params_file)]
    for command in ("pipeline", "acceptance", "deploy"):
        subprocess.run([*cli, command], env=env, check=True, capture_output=True, timeout=600)
    script = _random_script(settings, scratch, then="fault_done.lua")
    stalling = StallingFluentd()
    phases = [("JSONL file (normal)", None), ("fluentd unreachable", free_port()),
              ("fluentd stalling", stalling.port), ("JSONL file (again)", None)]
    rows = []
    try:
        for label, fluentd_port in phases:
            phase_env = dict(env)
            if fluentd_port is not None:
                phase_env.update({"FLUENTD_HOST": "127.0.0.1", "FLUENTD_PORT": str(fluentd_port)})
            rows.append((label, _fault_phase(cli, phase_env, script, scratch / f"serve-{len(rows)}.log",
                                             seconds, connections, warm_up)))
    finally:
        stalling.close()
    normal = rows[0][1]["p99_us"]
    lines = [
        f"fluentd fault: the model server (gunicorn, {settings.serving.workers} workers, a fresh one per phase) under wrk "
        f"(2 threads, {connections} connections), /prediction with random dates and products; {warm_up} s of warm-up, "
        f"then {seconds} s measured per phase",
        f"  {'events to':22}{'requests/s':>11}{'p50':>10}{'p99':>10}{'p99.9':>10}{'p99 - normal':>14}{'errors':>8}"
        f"   dropped events (workers' exit log; /version of one worker)",
    ]
    for i, (label, r) in enumerate(rows):
        delta = "" if i == 0 else f"{(r['p99_us'] - normal) / 1000:+.2f} ms"
        reported = "" if r["workers"] == settings.serving.workers else f", only {r['workers']} worker(s) reported"
        lines.append(
            f"  {label:22}{r['rate']:>11,.0f}{r['p50_us'] / 1000:>7.2f} ms{r['p99_us'] / 1000:>7.2f} ms"
            f"{r['p999_us'] / 1000:>7.2f} ms{delta:>14}{r['errors']:>8}   {r['dropped']:,} of {r['events']:,} "
            f"(warm-up included{reported}; {r['version_dropped']:,} in /version)")
    return "\n".join(lines)


def _fault_phase(cli: list[str], env: dict, script: Path, log: Path, seconds: int, connections: int,
                 warm_up: int) -> dict:
    """Serve, warm up, measure with wrk, read /version; stop gracefully and read the workers' exit report."""
    import re

    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"{url}/health", server, 120)
        subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{warm_up}s", "-s", str(script), url],
                       capture_output=True, text=True, timeout=warm_up + 60)
        done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                              capture_output=True, text=True, timeout=seconds + 60)
        version_dropped = requests.get(f"{url}/version", timeout=5).json()["events"]["dropped"]
    finally:
        server.terminate()  # graceful: each worker flushes its events and logs what it sent and dropped
        server.wait(timeout=60)
    found = _find(r"CD4ML (.*)", done.stdout)
    if found is None:
        raise RuntimeError(f"wrk said:\n{done.stdout}{done.stderr}")
    r = {k: float(v) for k, v in (pair.split("=", 1) for pair in found.split())}
    exits = re.findall(r"prediction events at exit: (\d+) sent, (\d+) dropped", log.read_text(errors="replace"))
    return {
        "rate": r["requests"] / r["seconds"], "p50_us": r["p50_us"], "p99_us": r["p99_us"], "p999_us": r["p999_us"],
        "errors": int(r["non2xx"] + r["socket"]), "version_dropped": version_dropped,
        "dropped": sum(int(d) for _, d in exits), "events": sum(int(s) + int(d) for s, d in exits), "workers": len(exits),
    }
