"""The monitoring page, GET /monitoring: a quick look next to Kibana, and the embedded default's only one.

Two parts, both charts drawn on the server as inline SVG (cd4ml/serving/charts.py):

  live traffic     the recent events of the log this server writes (the JSONL sink: the last
                   TAIL_BYTES of data/predictions.jsonl, events of the last RECENT_DAYS days):
                   predictions over time by product, average forecast by product, latency
                   p50/p99, predictions by model version - the panels of Kibana's dashboard
  the last report  what `run_python_script.py monitor` wrote to data/monitoring/latest.json
                   (beside the event log): drift (PSI) against the training data, forecast
                   distribution, live accuracy against arrived actual sales, alerts

A server that sends its events to fluentd has no local log: the page points to Kibana for the
traffic and shows the latest report `monitor` logged to MLflow, as its ReportCache (serving/
reports.py) last found it; if MLflow cannot be reached, the page says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flask import Blueprint, render_template

from cd4ml.config import ROOT, Paths
from cd4ml.serving import charts
from cd4ml.serving.services import services

bp = Blueprint("monitoring", __name__)

TAIL_BYTES = 16 * 1024 * 1024  # about 50,000 events: the page answers in well under a second
RECENT_DAYS = 7
TOP_PRODUCTS = 6


def files(sink: Any) -> tuple[Path | None, Path | None]:
    """(event log, latest report) of a server whose sink writes a local JSONL file; (None, None)
    for fluentd. The report lies in the same data folder (config.Paths)."""
    log = getattr(sink, "path", None)
    if log is None:
        return None, None
    return Path(log), Paths(root=ROOT, data_dir=Path(log).parent).monitoring_report


@bp.get("/monitoring")
def page() -> Any:
    from cd4ml.monitoring.jsonl_events import JsonlEvents
    from cd4ml.monitoring.window import Window
    from cd4ml.monitoring.report import milliseconds
    from cd4ml.monitoring.run import gather, read_latest

    found = services()
    log, report_path = files(found.sink)
    recent = skipped = None
    if log is not None:
        now = datetime.now(timezone.utc)
        source = JsonlEvents(log, tail_bytes=TAIL_BYTES)
        stats, _ = gather(source, Window(now - timedelta(days=RECENT_DAYS), now + timedelta(minutes=1)), pause_gc=False)
        recent, skipped = stats.summary(top=TOP_PRODUCTS), sum(source.skipped.values())
    report = read_latest(report_path) if report_path else None
    reported = found.reports.state if log is None and found.reports is not None else None
    if reported is not None:
        report = reported.report
    model = found.store.current
    return render_template(
        "monitoring.html", recent=recent, skipped=skipped, report=report, log=log, report_path=report_path,
        reported=reported, clock=_clock, ms=milliseconds,
        model_version=model.version if model else None, days=RECENT_DAYS, tail_mb=TAIL_BYTES // (1024 * 1024),
        traffic=traffic_charts(recent) if recent and recent["events"] else None,
        quality=report_charts(report) if report else None,
    )


def traffic_charts(summary: dict[str, Any]) -> dict[str, Any]:
    """The four panels of the Kibana dashboard, from a summary of events (analysis.EventStats)."""
    days = [d[5:] for d in summary["days"]]
    by_product = [(f"{i['name']}", i["per_day"]) for i in summary["items"]]
    if summary["other_items"]["count"]:
        by_product.append(("other", summary["other_items"]["per_day"]))
    latency = summary["latency"]
    return {
        "volume": charts.bar_chart(days, by_product, title="Predictions over time, by product",
                                   chart_id="chart-volume", unit="predictions"),
        "products": charts.hbar_chart(
            [i["name"] for i in summary["items"]], [i["mean_forecast"] for i in summary["items"]],
            title="Average forecast by product (units a day)", chart_id="chart-products", unit="units",
        ),
        "latency": charts.line_chart(days, [("p50", latency["per_day_p50_ms"]), ("p99", latency["per_day_p99_ms"])],
                                     title="Latency percentiles (ms): p50 and p99", chart_id="chart-latency", unit="ms"),
        "versions": charts.bar_chart(days, [(f"v{v['version']}", v["per_day"]) for v in summary["versions"]],
                                     title="Predictions by model version", chart_id="chart-versions",
                                     unit="predictions"),
    }


def report_charts(report: dict[str, Any]) -> dict[str, Any]:
    """Drift and live accuracy of the last monitoring report."""
    found: dict[str, Any] = {}
    thresholds = report["thresholds"]
    drift = report.get("drift") or {}
    if drift:
        names = {"items": "requested products", "weekdays": "requested weekdays", "forecast": "forecasts"}
        values = [d["psi"] for d in drift.values()]
        found["psi"] = charts.hbar_chart(
            [names.get(k, k) for k in drift], values, title="Drift vs training data (PSI)",
            chart_id="chart-psi", markers=[(thresholds["psi_warn"], "warn", "#d6a100"),
                                           (thresholds["psi_alert"], "alert", "#bd271e")],
            colours=[_level(v, thresholds) for v in values],
        )
    if "forecast" in drift:
        d = drift["forecast"]
        found["forecast"] = charts.bar_chart(
            d["labels"], [("training", [100 * s for s in d["training"]]), ("live", [100 * s for s in d["live"]])],
            title="Forecasts: validation vs live (% per bin of units)", chart_id="chart-forecast",
            unit="%", stacked=False,
        )
    if "weekdays" in drift:
        d = drift["weekdays"]
        found["weekdays"] = charts.bar_chart(
            d["labels"], [("training", [100 * s for s in d["training"]]), ("live", [100 * s for s in d["live"]])],
            title="Requested weekdays: training vs live (%)", chart_id="chart-weekdays", unit="%", stacked=False,
        )
    accuracy = report.get("accuracy") or {}
    if accuracy.get("per_date"):
        rows = accuracy["per_date"]
        found["accuracy"] = charts.line_chart(
            [r["date"][5:] for r in rows], [("actual", [r["actual"] for r in rows]),
                                            ("forecast", [r["forecast"] for r in rows])],
            title="Actual vs forecast units, per forecast date", chart_id="chart-accuracy",
            unit="units",
        )
    return found


def _clock(seconds: float) -> str:
    """A moment as the page shows it: YYYY-MM-DD HH:MM:SS UTC."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _level(value: float, thresholds: dict[str, float]) -> str:
    if value > thresholds["psi_alert"]:
        return "#bd271e"
    if value > thresholds["psi_warn"]:
        return "#d6a100"
    return "#54b399"
