"""The `monitor` command's wiring: events + the deployed model's profile + actuals -> report.

    report = monitor(settings, window, source)      # logs a run to MLflow, writes latest.json

One pass over the events feeds both the aggregates (analysis.EventStats) and the join with
the actuals (accuracy.LatestForecasts); it needs nothing from MLflow. So MLflow's slow import
overlaps it: the tracking process (tracking_process.RunProcess, without skops: no model is logged) asks
the registry for the deployed model (its validation metrics and training profile) and starts the
monitoring run while the events are read. A monitor that fails leaves a FAILED run.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from cd4ml import tracking, tracking_process
from cd4ml.config import DataSettings, Settings
from cd4ml.errors import Cd4mlError, ConfigError, DataError, ServiceUnreachable
from cd4ml.monitoring import report as reports
from cd4ml.monitoring.accuracy import Actual, Actuals, Key, LatestForecasts, actuals_by_key, live_accuracy, merge_latest
from cd4ml.monitoring.analysis import EventStats
from cd4ml.monitoring.elasticsearch_client import elasticsearch_client
from cd4ml.monitoring.elasticsearch_events import ElasticsearchEvents
from cd4ml.monitoring.elasticsearch_index import index_documents
from cd4ml.monitoring.events_source import DEFAULT_SCHEMA, EventSchema, EventSource, schema_of
from cd4ml.monitoring.jsonl_events import MIN_PART_BYTES, JsonlEvents
from cd4ml.monitoring.profile import read_profile
from cd4ml.monitoring.window import Window, iso
from cd4ml.problems import get_problem
from cd4ml.progress import Reporter

SOURCES = ("jsonl", "elasticsearch")
REPORT_ARTIFACT = tracking.REPORT_ARTIFACT


@dataclass(frozen=True)
class Deployed:
    """The production model as monitoring needs it."""

    name: str
    version: str
    run_id: str
    validation: dict[str, float]
    profile: dict[str, Any] | None
    profile_note: str | None  # why there is no profile


def make_source(settings: Settings, name: str | None, events_path: Path | None = None) -> EventSource:
    """The event source: `name` (jsonl or elasticsearch); by default the JSONL log events_path when
    given, else elasticsearch when CD4ML_ELASTICSEARCH_URL is set, else the local JSONL log."""
    name = name or ("jsonl" if events_path else settings.monitoring.default_source)
    if name not in SOURCES:
        raise ConfigError(f"--source must be one of {', '.join(SOURCES)}; got {name!r}.")
    if name == "elasticsearch" and events_path:
        raise ConfigError("--events names a JSONL log; it does not go with --source elasticsearch.",
                          "Leave out one of them.")
    schema = event_schema(settings.problem)
    if name == "jsonl":
        return JsonlEvents(events_path or settings.paths.prediction_log, problem=settings.problem, schema=schema)
    found = settings.monitoring
    if not found.elasticsearch_url:
        raise ConfigError(
            "--source elasticsearch needs CD4ML_ELASTICSEARCH_URL (and CD4ML_ELASTICSEARCH_USER, "
            "CD4ML_ELASTICSEARCH_PASSWORD).",
            "Set it, e.g. CD4ML_ELASTICSEARCH_URL=http://localhost:9200, or use --source jsonl.",
        )
    client = elasticsearch_client(found.elasticsearch_url, found.elasticsearch_user, found.elasticsearch_password)
    return ElasticsearchEvents(client, found.index, url=found.elasticsearch_url, problem=settings.problem, schema=schema)


def event_schema(problem_name: str) -> EventSchema:
    """The event fields monitoring reads for a problem, from its Serving and drift key."""
    problem = get_problem(problem_name)
    return schema_of(problem.serving, problem.drift_key)


def gather(
    source: EventSource, window: Window, actuals: Actuals | None = None, pause_gc: bool = True,
    processes: int = 1, min_part_bytes: int = MIN_PART_BYTES,
) -> tuple[EventStats, LatestForecasts | None]:
    """One pass over the events in the window: aggregates, and the join with the actuals.

    pause_gc: no cyclic garbage collection during the pass (events are plain acyclic values,
    freed by reference counting; collecting costs ~15 %). The switch is process-wide: a server
    passes False.
    processes: a large JSONL log is read in that many parts at once (JsonlEvents.parts), the
    first ones in forked processes, this one reading the last; their aggregates are merged in
    file order, the same as one pass (forecast sums to rounding). Memory stays flat: each part
    keeps the same bounded aggregates."""
    parts = source.parts(processes, min_part_bytes) if isinstance(source, JsonlEvents) else [source]
    if len(parts) == 1:
        return _one_pass(source, window, actuals, pause_gc)
    context = multiprocessing.get_context("fork")  # the parts share the actuals without copying them
    started = []
    try:
        for part in parts[:-1]:
            conn, theirs = context.Pipe(duplex=False)
            process = context.Process(target=_pass_in_child, args=(theirs, part, window, actuals, pause_gc),
                                      name="cd4ml-monitor-part", daemon=True)
            process.start()
            theirs.close()
            started.append((conn, process))
        last = _one_pass(parts[-1], window, actuals, pause_gc)
        results = [_part_result(conn, process) for conn, process in started]
    finally:
        for _, process in started:
            if process.is_alive():
                process.terminate()
            process.join(timeout=10)
    results.append((last[0], last[1], dict(parts[-1].skipped)))
    stats, joined, _ = results[0]
    for later, later_joined, _ in results[1:]:
        stats.merge(later)
        if joined is not None and later_joined is not None:
            merge_latest(joined, later_joined.latest, later_joined.matched_events, later_joined.unmatched_events)
    for _, _, skipped in results:
        source.skipped.update(skipped)
    return stats, joined


def pass_processes() -> int:
    """How many processes read a large event log at once: one per core, at most four."""
    return max(1, min(os.cpu_count() or 1, 4))


def _one_pass(
    source: EventSource, window: Window, actuals: Actuals | None, pause_gc: bool,
) -> tuple[EventStats, LatestForecasts | None]:
    schema = getattr(source, "schema", DEFAULT_SCHEMA)
    stats = EventStats(schema.drift, schema.label, schema.requested)
    joined = LatestForecasts(actuals) if actuals is not None else None
    enabled = gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        for batch in source.batches(window):
            stats.add_columns(batch)
            if joined is not None:
                joined.add_columns(batch)
    finally:
        if enabled:
            gc.enable()
    return stats, joined


def _pass_in_child(conn, source: JsonlEvents, window: Window, actuals, pause_gc: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    try:
        stats, joined = _one_pass(source, window, actuals, pause_gc)
        if joined is not None:
            joined.keys = {}  # the parent has the actuals: send back only what the part found
        conn.send(("ok", stats, joined, dict(source.skipped)))
    except Cd4mlError as err:
        conn.send(("error", type(err).__name__, err.message, err.hint))
    except Exception as err:
        conn.send(("error", "DataError", f"reading {source.path} failed: {type(err).__name__}: {err}", ""))
    conn.close()


def _part_result(conn, process) -> tuple[EventStats, LatestForecasts | None, dict[str, int]]:
    try:
        reply = conn.recv()
    except (EOFError, OSError):
        raise DataError(f"a process reading part of the event log stopped unexpectedly (exit code "
                        f"{process.exitcode}).", "Run again; if it repeats, run with fewer processes.") from None
    if reply[0] == "error":
        _, kind, message, hint = reply
        raise {"ConfigError": ConfigError, "ServiceUnreachable": ServiceUnreachable}.get(kind, DataError)(message, hint)
    return reply[1], reply[2], reply[3]


def read_actuals(settings: Settings, path: Path) -> tuple[Actuals, int]:
    """Actual sales from a data drop in either layout (workshop CSV or Kaggle folder), through the
    problem's own readers and processing; returns (actuals by key, keys given twice)."""
    problem = get_problem(settings.problem)
    data = DataSettings(source=Path(path), items=None, stores=None, max_bad_rows=settings.data.max_bad_rows)
    source = problem.open(data)
    actuals, repeated = actuals_by_key(problem.rows(source, data), problem.serving.join_key, problem.serving.actual)
    if not actuals:
        raise DataError(f"{path} holds no sales rows", "Point --actuals at a data drop with sales in it.")
    return actuals, repeated


def deployed_model(settings: Settings) -> Deployed | None:
    """The production version, its run's validation metrics and training profile; None when
    nothing is deployed yet. Raises ServiceUnreachable when MLflow does not answer."""
    from cd4ml import registry

    name = settings.tracking.registered_model
    client = registry.client(settings.tracking)
    version = registry.production(client, name)
    if version is None:
        return None
    try:
        run = client.get_run(version.run_id)
    except Exception as err:
        raise ServiceUnreachable(f"cannot read run {version.run_id} from MLflow: {err}", "Is MLflow up?") from None
    metrics = get_problem(settings.problem).metric_names
    validation = {k: float(run.data.metrics[k]) for k in metrics if k in run.data.metrics}
    profile, note = None, None
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(version.run_id, tracking.PROFILE_ARTIFACT, folder)
        except Exception:
            note = (f"run {version.run_id} (v{version.number}) logged no {tracking.PROFILE_ARTIFACT}: it was trained before "
                    "monitoring existed; retrain and deploy to compare drift")
        else:
            try:
                profile = read_profile(Path(path).read_bytes())
            except ValueError as err:
                note = f"{tracking.PROFILE_ARTIFACT} of run {version.run_id} cannot be read: {err}"
    return Deployed(name, version.number, version.run_id, validation, profile, note)


def monitor(
    settings: Settings, window: Window, source: EventSource, actuals_path: Path | None = None,
    now: datetime | None = None, reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Gather, judge, log a monitoring run to MLflow and write latest.json; returns the report.
    With events from Elasticsearch, the summary figures are indexed there too (report_index)."""
    reporter = reporter or Reporter()
    # A store that does not exist yet holds no model; the tracking process creates it (alone: two
    # processes creating one SQLite store race in its schema migration).
    fresh = not settings.tracking.remote and not settings.paths.mlflow_db.exists()
    monitoring_tracking = replace(settings.tracking, experiment=settings.monitoring.experiment)
    process = tracking_process.RunProcess(monitoring_tracking, models=False)  # warms up while we read
    if not fresh:  # the deployed model, asked in the tracking process: MLflow is imported once, there
        process.call(deployed_model, settings)
    # The run starts at once (in the tracking process, while we read); FAILED if anything fails.
    with tracking_process.tracked_run(process, run_name=f"monitor {window.since_text[:10]}..{window.until_text[:10]}") as run:
        actuals = repeated = None
        if actuals_path is not None:
            actuals, repeated = read_actuals(settings, actuals_path)
            reporter.say(f"actuals: {len(actuals):,} rows from {actuals_path}")
        reporter.say(f"reading events {window} from {source.description}")
        stats, joined = gather(source, window, actuals, processes=pass_processes())
        deployed = None if fresh else process.result()
        result = build(settings, window, source, stats, joined, actuals, repeated, deployed, now or window.until)
        result["mlflow_run_id"] = run.id
        if isinstance(source, ElasticsearchEvents):  # Kibana shows drift and accuracy beside the events
            index_documents(source.client, settings.monitoring.report_index, reports.summary_documents(result),
                            source.url)
            result["summary_index"] = settings.monitoring.report_index
        run.log(params=_params(result, actuals_path), metrics=_metrics(result), tags=_tags(result))
        run.log_bytes(json.dumps(result, indent=1).encode(), REPORT_ARTIFACT)
    write_latest(settings.paths.monitoring_report, result)
    return result


def build(
    settings: Settings, window: Window, source: EventSource, stats: EventStats, joined: LatestForecasts | None,
    actuals: Mapping[Key, Actual] | None, repeated: int | None, deployed: Deployed | None, now: datetime,
) -> dict[str, Any]:
    """The report (plain JSON values) from what was gathered."""
    limits = settings.monitoring
    summary = stats.summary()
    found_drift = None
    if deployed and deployed.profile and stats.count:
        found_drift = reports.drift(stats, deployed.profile, limits.top_items)
    accuracy = None
    if joined is not None and actuals is not None:
        accuracy = live_accuracy(actuals, joined, get_problem(settings.problem).evaluate)
        accuracy["repeated_actual_keys"] = repeated
    alerts, warnings = reports.judge(
        summary, found_drift, accuracy, deployed.validation if deployed else None, settings.acceptance.metric, limits,
    )
    return {
        "report_version": reports.REPORT_VERSION,
        "created": iso(now),
        "window": {"since": window.since_text, "until": window.until_text},
        "source": source.description,
        "model": None if deployed is None else {
            "name": deployed.name, "version": deployed.version, "run_id": deployed.run_id,
            "validation": deployed.validation,
        },
        "events": summary,
        "skipped": dict(source.skipped),
        "drift": found_drift,
        "drift_note": deployed.profile_note if deployed else None,
        "accuracy": accuracy,
        "metric": settings.acceptance.metric,
        "thresholds": {
            "min_events": limits.min_events, "psi_warn": limits.psi_warn, "psi_alert": limits.psi_alert,
            "max_latency_p99_ms": limits.max_latency_p99_ms, "accuracy_tolerance": limits.accuracy_tolerance,
        },
        "alerts": alerts,
        "warnings": warnings,
        "status": "alert" if alerts else "ok",
    }


def write_latest(path: Path, result: Mapping[str, Any]) -> None:
    """Write the report where the model server's /monitoring page finds it: a temp file renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".latest-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(result, out, indent=1)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_latest(path: Path) -> dict[str, Any] | None:
    """The last report, or None when there is none (or it cannot be read)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("report_version") == reports.REPORT_VERSION else None


def latest_reported(client: Any, experiment: str) -> tuple[dict[str, Any], str] | None:
    """(report, run id) of the latest FINISHED monitoring run in MLflow: its REPORT_ARTIFACT, as
    `monitor` logged it. None when the experiment has no finished run yet. Raises what the MLflow
    client raises when the server cannot be reached or the artifact cannot be read."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs([found.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    run_id = runs[0].info.run_id
    with tempfile.TemporaryDirectory() as folder:
        report = read_latest(Path(client.download_artifacts(run_id, REPORT_ARTIFACT, folder)))
    if report is None:
        raise DataError(f"{REPORT_ARTIFACT} of monitoring run {run_id} is not a report of version {reports.REPORT_VERSION}",
                        "Run monitor again with this version of the code.")
    return report, run_id


def _params(result: Mapping[str, Any], actuals_path: Path | None) -> dict[str, Any]:
    return {
        "window.since": result["window"]["since"], "window.until": result["window"]["until"],
        "source": result["source"], "actuals": str(actuals_path) if actuals_path else "none",
        **{f"threshold.{k}": v for k, v in result["thresholds"].items()},
    }


def _metrics(result: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in reports.figures(result).items()}


def _tags(result: Mapping[str, Any]) -> dict[str, str]:
    model = result["model"] or {}
    return {
        tracking.MONITORING_STATUS: result["status"],
        tracking.MONITORING_SOURCE: result["source"],
        **{tag: model.get(key, "none") for tag, key in zip(tracking.MONITORED_MODEL, ("name", "version", "run_id"))},
    }
