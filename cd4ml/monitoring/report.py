"""The monitoring report: drift against the training profile, alerts, and the printed text. Pure.

An alert (exit 5) is raised when, with at least [monitoring] min_events events (or forecasts
with actuals):
    - the population stability index of requested products, requested weekdays or forecasts
      exceeds psi_alert (psi_warn and above is a warning),
    - the 99th percentile latency exceeds max_latency_p99_ms,
    - live accuracy is worse than the model's validation accuracy by more than
      accuracy_tolerance, on the [acceptance] metric (r2 by default).
"""

from __future__ import annotations

from typing import Any, Mapping

from cd4ml.config import MonitoringSettings
from cd4ml.metrics import HIGHER_IS_BETTER
from cd4ml.monitoring.analysis import (
    OTHER, WEEKDAYS, EventStats, binned, bucket_low, grouped, natural, psi, shares, weekday_counts,
)

REPORT_VERSION = 1
FEATURES = {"items": "requested products", "weekdays": "requested weekdays", "forecast": "forecasts"}


def drift(stats: EventStats, profile: Mapping[str, Any], top_items: int) -> dict[str, Any]:
    """PSI of the requested drift keys (Favorita: products; the training's top ones, the rest
    together), requested weekdays and forecast bins, live against the training profile. Keys
    compare as text: the profile writes them so."""
    trained = {str(k): float(v) for k, v in profile["items"].items()}
    top = sorted(trained, key=lambda key: (-trained[key], natural(key)))[:top_items]
    live_items: dict[str, int] = {}
    for key, n in stats.item_totals().items():
        live_items[str(key)] = live_items.get(str(key), 0) + n
    named = {str(key): name for key, name in stats.item_names.items()}
    names = [named.get(key, key) for key in top]
    found = {"items": (names + [OTHER], grouped(trained, top), grouped(live_items, top))}
    if sum(stats.requested.values()):
        found["weekdays"] = (list(WEEKDAYS), list(profile["weekdays"]), weekday_counts(stats.requested))
    edges = [int(e) for e in profile["forecast"]["edges"]]
    found["forecast"] = (bin_labels(edges), list(profile["forecast"]["shares"]), binned(stats.forecasts, edges))
    result = {}
    for name, (labels, expected, actual) in found.items():
        if sum(actual) == 0 or sum(expected) == 0:
            continue
        result[name] = {"psi": psi(expected, actual), "labels": labels,
                        "training": shares(expected), "live": shares(actual)}
    if "items" in result:
        result["items"]["field"] = stats.drift  # what was counted: the problem's drift key
    return result


def bin_labels(edges: list[int]) -> list[str]:
    """Forecast bins as ranges of units, e.g. "<2.8", "2.8–4.2", ..., "≥19.9"."""
    if not edges:
        return ["all"]
    values = [f"{bucket_low(e):.2g}" if bucket_low(e) < 10 else f"{bucket_low(e):.0f}" for e in edges]
    inner = [f"{a}–{b}" for a, b in zip(values, values[1:])]
    return [f"<{values[0]}", *inner, f"≥{values[-1]}"]


def judge(
    summary: Mapping[str, Any], found_drift: Mapping[str, Any] | None, accuracy: Mapping[str, Any] | None,
    validation: Mapping[str, float] | None, metric: str, limits: MonitoringSettings,
) -> tuple[list[str], list[str]]:
    """(alerts, warnings): one sentence each, naming the figure, its value and the threshold."""
    alerts: list[str] = []
    warnings: list[str] = []
    events = summary["events"]
    if events < limits.min_events:
        warnings.append(f"only {events:,} events (fewer than min_events {limits.min_events:,}): "
                        "drift and latency are shown, not judged")
    else:
        p99 = summary["latency"]["p99_ms"]
        if p99 is not None and p99 > limits.max_latency_p99_ms:
            alerts.append(f"latency p99 {p99:.1f} ms is above max_latency_p99_ms {limits.max_latency_p99_ms:g} ms")
        for name, found in (found_drift or {}).items():
            value = found["psi"]
            field = found.get("field", "item_nbr")
            what = FEATURES[name] if name != "items" or field == "item_nbr" else f"requested {field} values"
            if value > limits.psi_alert:
                alerts.append(f"drift of {what}: PSI {value:.3f} is above psi_alert {limits.psi_alert:g}")
            elif value > limits.psi_warn:
                warnings.append(f"drift of {what}: PSI {value:.3f} is above psi_warn {limits.psi_warn:g}")
    if accuracy and accuracy.get("metrics"):
        rows = accuracy["rows"]
        live = accuracy["metrics"][metric]
        if rows < limits.min_events:
            warnings.append(f"live accuracy on only {rows:,} forecasts (fewer than min_events "
                            f"{limits.min_events:,}): shown, not judged")
        elif validation and metric in validation:
            expected = validation[metric]
            worse = (expected - live) if HIGHER_IS_BETTER[metric] else (live - expected)
            if worse > limits.accuracy_tolerance:
                alerts.append(f"live {metric} {live:.4f} is worse than validation {expected:.4f} "
                              f"by {worse:.4f}, more than accuracy_tolerance {limits.accuracy_tolerance:g}")
    return alerts, warnings


def figures(report: Mapping[str, Any]) -> dict[str, float | int]:
    """The report's summary figures by name: the metrics of its MLflow run and the numeric fields
    of its summary document in Elasticsearch (the same names in both). Figures the report does
    not have (no drift without a profile, no live accuracy without actuals) are left out."""
    events = report["events"]
    found: dict[str, Any] = {
        "events": events["events"],
        "events_skipped": sum(report["skipped"].values()),
        "latency_p50_ms": events["latency"]["p50_ms"],
        "latency_p99_ms": events["latency"]["p99_ms"],
        "alerts": len(report["alerts"]),
    }
    for name, found_drift in (report["drift"] or {}).items():
        found[f"psi_{name}"] = found_drift["psi"]
    accuracy = report["accuracy"]
    if accuracy:
        found["live_rows"] = accuracy["rows"]
        for name, value in (accuracy["metrics"] or {}).items():
            found[f"live_{name}"] = value
    for name, value in ((report["model"] or {}).get("validation") or {}).items():
        found[f"validation_{name}"] = value
    return {k: v for k, v in found.items() if v is not None}


def summary_documents(report: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The report as (id, document) pairs for the Elasticsearch index [monitoring] report_index,
    mapped by elasticsearch/monitoring-template.json and charted by Kibana's dashboard:

        kind "summary"  one per report: its figures() (PSI per dimension, live and validation
                        accuracy, events, latency), window, deployed model version, status
        kind "version"  one per model version that answered in the window: served_version,
                        served_events, served_share (of the window's events)

    @timestamp is when the report was made. Ids come from the MLflow run id, so indexing a report
    again replaces its documents."""
    model = report["model"] or {}
    common = {
        "@timestamp": report["created"],
        "report_version": report["report_version"],
        "mlflow_run_id": report["mlflow_run_id"],
        "window_since": report["window"]["since"],
        "window_until": report["window"]["until"],
        "model_version": model.get("version"),
        "model_run_id": model.get("run_id"),
    }
    summary = {**common, "kind": "summary", "status": report["status"], "source": report["source"],
               "warnings": len(report["warnings"]), **figures(report)}
    found = [(f"{report['mlflow_run_id']}-summary", {k: v for k, v in summary.items() if v is not None})]
    total = report["events"]["events"]
    for served in report["events"]["versions"]:
        document = {**common, "kind": "version", "served_version": served["version"],
                    "served_events": served["events"], "served_share": served["events"] / total if total else 0.0}
        found.append((f"{report['mlflow_run_id']}-v{served['version']}",
                      {k: v for k, v in document.items() if v is not None}))
    return found


def milliseconds(value: float | None) -> str:
    """A latency as the report and the page show it: two decimals, or two significant digits
    below 0.1 ms (a forecast from the precomputed grid takes microseconds, not "0.00")."""
    if value is None:
        return "–"
    return f"{value:.2f}" if value >= 0.1 or value == 0 else f"{value:.2g}"


def text(report: Mapping[str, Any]) -> str:
    """The short printed report."""
    s = report["events"]
    model = report.get("model")
    lines = [
        f"monitoring {report['window']['since']} .. {report['window']['until']} from {report['source']}",
        "deployed: " + (f"{model['name']} v{model['version']} (run {model['run_id']})" if model
                        else "no production model (drift and validation metrics need one)"),
    ]
    skipped = report["skipped"]
    lines.append(f"events: {s['events']:,}" + (
        f"; skipped {sum(skipped.values()):,}: " + ", ".join(f"{n:,} {why}" for why, n in sorted(skipped.items()))
        if skipped else "; none skipped"))
    if s["events"]:
        lines.append("per day: " + ", ".join(f"{d[5:]} {n:,}" for d, n in zip(s["days"], s["per_day"])))
        lines.append("products: " + ", ".join(
            f"{i['name']} {i['events'] / s['events']:.0%}" for i in s["items"][:5]
        ) + (f", {s['other_items']['count']:,} more" if s["other_items"]["count"] else ""))
        lines.append("model versions: " + ", ".join(
            f"v{v['version']} {v['events'] / s['events']:.0%}" for v in s["versions"]))
        lat = s["latency"]
        lines.append(f"latency: p50 {milliseconds(lat['p50_ms'])} ms, p99 {milliseconds(lat['p99_ms'])} ms")
    thresholds = report["thresholds"]
    found = report.get("drift")
    if found:
        lines.append(f"drift (PSI; warn > {thresholds['psi_warn']:g}, alert > {thresholds['psi_alert']:g}): " + ", ".join(
            f"{FEATURES[name]} {d['psi']:.3f}" for name, d in found.items()))
    elif model:
        lines.append("drift: " + (report.get("drift_note") or "no events to compare"))
    accuracy = report.get("accuracy")
    if accuracy is not None:
        if accuracy["metrics"]:
            m, v = accuracy["metrics"], (model or {}).get("validation") or {}
            lines.append(
                f"live accuracy on {accuracy['rows']:,} forecasts with actuals "
                f"({accuracy['unmatched_events']:,} events without): " + ", ".join(
                    f"{k} {m[k]:.4f}" + (f" (validation {v[k]:.4f})" if k in v else "") for k in ("r2", "nwrmsle", "mae")))
        else:
            lines.append(f"live accuracy: no forecast matches the {accuracy['actual_rows']:,} actual rows")
    for warning in report["warnings"]:
        lines.append(f"warning: {warning}")
    for alert in report["alerts"]:
        lines.append(f"ALERT: {alert}")
    lines.append("status: " + ("ALERT" if report["alerts"] else "ok"))
    return "\n".join(lines)
