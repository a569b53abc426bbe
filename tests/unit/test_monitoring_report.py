"""The report: drift against a literal training profile, alerts at the thresholds, the printed text."""

from __future__ import annotations

import math

import pytest

from cd4ml.config import load_settings
from cd4ml.monitoring.analysis import EventStats, log_bucket
from cd4ml.monitoring.events_source import columns
from cd4ml.monitoring.report import bin_labels, drift, judge, milliseconds, text


@pytest.fixture
def limits(tmp_path):
    params = tmp_path / "params.toml"
    params.write_text("[monitoring]\nmin_events = 4\npsi_warn = 0.1\npsi_alert = 0.25\n"
                      "max_latency_p99_ms = 50\naccuracy_tolerance = 0.1\ntop_items = 2\n")
    return load_settings(params, environ={"CD4ML_DATA_DIR": str(tmp_path)}).monitoring


def ev(item: int, day: str, forecast: float, latency: float = 1.0) -> dict:
    return {"@timestamp": "2026-11-20T08:00:00.000Z", "date": day, "item_nbr": item, "item_name": f"Item {item}",
            "store_nbr": 47, "prediction": forecast, "model_version": "1", "run_id": "r", "latency_ms": latency}


def stats_of(events) -> EventStats:
    stats = EventStats()
    stats.add_columns(columns(events))
    return stats


PROFILE = {
    "items": {"1": 0.5, "2": 0.3, "3": 0.2},
    "weekdays": [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2],
    "forecast": {"edges": [log_bucket(5.0)], "shares": [0.5, 0.5]},
}


def test_drift_compares_products_weekdays_and_forecast_bins_with_the_profile():
    # two Mondays (2026-11-30), two Sundays (2026-12-06); items 1, 1, 2, 9; forecasts 1, 2 | 10, 20
    found = drift(stats_of([ev(1, "2026-11-30", 1.0), ev(1, "2026-11-30", 2.0), ev(2, "2026-12-06", 10.0),
                            ev(9, "2026-12-06", 20.0)]), PROFILE, top_items=2)
    assert found["items"]["labels"] == ["Item 1", "Item 2", "other"]
    assert found["items"]["training"] == pytest.approx([0.5, 0.3, 0.2])
    assert found["items"]["live"] == [0.5, 0.25, 0.25]
    assert found["weekdays"]["live"] == [0.5, 0, 0, 0, 0, 0, 0.5]
    assert found["forecast"]["live"] == [0.5, 0.5] and found["forecast"]["psi"] == pytest.approx(0.0)
    assert found["items"]["psi"] == pytest.approx(-0.05 * math.log(0.25 / 0.3) + 0.05 * math.log(0.25 / 0.2))


def test_alerts_name_the_figure_the_value_and_the_threshold(limits):
    summary = {"events": 10, "latency": {"p99_ms": 80.0}}
    found_drift = {"items": {"psi": 0.3}, "weekdays": {"psi": 0.12}, "forecast": {"psi": 0.01}}
    accuracy = {"rows": 10, "metrics": {"r2": 0.55, "nwrmsle": 0.5, "mae": 3.0}}
    alerts, warnings = judge(summary, found_drift, accuracy, {"r2": 0.8}, "r2", limits)
    assert alerts == [
        "latency p99 80.0 ms is above max_latency_p99_ms 50 ms",
        "drift of requested products: PSI 0.300 is above psi_alert 0.25",
        "live r2 0.5500 is worse than validation 0.8000 by 0.2500, more than accuracy_tolerance 0.1",
    ]
    assert warnings == ["drift of requested weekdays: PSI 0.120 is above psi_warn 0.1"]


@pytest.mark.parametrize("metric, live, validation, alert", [
    ("r2", 0.75, 0.8, False), ("r2", 0.65, 0.8, True),
    ("mae", 3.05, 3.0, False), ("mae", 3.2, 3.0, True),  # lower is better
    ("nwrmsle", 0.45, 0.5, False),
])
def test_live_accuracy_alerts_only_when_worse_by_more_than_the_tolerance(limits, metric, live, validation, alert):
    accuracy = {"rows": 10, "metrics": {metric: live}}
    alerts, _ = judge({"events": 10, "latency": {"p99_ms": 1.0}}, None, accuracy, {metric: validation}, metric, limits)
    assert bool(alerts) is alert


def test_too_few_events_are_shown_not_judged(limits):
    alerts, warnings = judge({"events": 3, "latency": {"p99_ms": 999.0}}, {"items": {"psi": 9.0}},
                             {"rows": 3, "metrics": {"r2": -5.0}}, {"r2": 0.9}, "r2", limits)
    assert alerts == []
    assert warnings == ["only 3 events (fewer than min_events 4): drift and latency are shown, not judged",
                        "live accuracy on only 3 forecasts (fewer than min_events 4): shown, not judged"]


def test_forecast_bins_are_labelled_in_units():
    assert bin_labels([log_bucket(2.0), log_bucket(22.0)]) == ["<2", "2–22", "≥22"]
    assert bin_labels([]) == ["all"]


def test_the_printed_report_says_the_status_last(limits):
    stats = stats_of([ev(1, "2026-11-30", 1.0)])
    report = {
        "window": {"since": "2026-11-16T00:00:00.000Z", "until": "2026-11-23T00:00:00.000Z"}, "source": "jsonl x",
        "model": {"name": "sales-forecast", "version": "3", "run_id": "abc", "validation": {"r2": 0.8}},
        "events": stats.summary(), "skipped": {"malformed JSON line": 2}, "drift": None, "drift_note": "no profile",
        "accuracy": None, "thresholds": {"psi_warn": 0.1, "psi_alert": 0.25}, "alerts": ["x is too high"],
        "warnings": [],
    }
    printed = text(report)
    assert "deployed: sales-forecast v3 (run abc)" in printed
    assert "events: 1; skipped 2: 2 malformed JSON line" in printed
    assert "drift: no profile" in printed
    assert printed.splitlines()[-2:] == ["ALERT: x is too high", "status: ALERT"]


@pytest.mark.parametrize("value, shown", [
    (0.00492, "0.0049"),  # a forecast from the precomputed grid: not "0.00"
    (0.0, "0.00"),
    (0.1, "0.10"),
    (1.948, "1.95"),
    (250.0, "250.00"),
    (None, "–"),
])
def test_milliseconds_keep_two_significant_digits_below_a_tenth(value, shown):
    assert milliseconds(value) == shown
