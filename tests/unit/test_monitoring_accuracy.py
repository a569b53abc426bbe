"""Live accuracy of literal events: the latest forecast of each key joined to the actuals, scored
with the pipeline's own metrics."""

from __future__ import annotations

from datetime import date

import numpy as np

from cd4ml.monitoring.accuracy import Actual, Actuals, LatestForecasts, actuals_by_key, live_accuracy
from cd4ml.monitoring.events_source import columns
from cd4ml.metrics import evaluate
from cd4ml.problems.favorita.serving import SERVING as FAVORITA


def ev(stamp: str, day: str, item: int, forecast: float, version: str = "1", store: int = 47) -> dict:
    return {"@timestamp": stamp, "date": day, "item_nbr": item, "item_name": "x", "store_nbr": store,
            "prediction": forecast, "model_version": version, "run_id": "r", "latency_ms": 1.0}


ACTUALS = Actuals(FAVORITA.join_key, {
    ("2016-08-01", 1, 47): Actual(10.0, False),
    ("2016-08-01", 2, 47): Actual(3.0, True),
    ("2016-08-02", 1, 47): Actual(12.0, False),
})
EVENTS = [
    ev("2026-11-20T08:00:00.000Z", "2016-08-01", 1, 8.0),
    ev("2026-11-20T09:00:00.000Z", "2016-08-01", 1, 9.0, version="2"),  # later: this one counts
    ev("2026-11-20T07:00:00.000Z", "2016-08-01", 2, 4.0),
    ev("2026-11-20T06:00:00.000Z", "2016-08-02", 1, 15.0),
    ev("2026-11-20T05:00:00.000Z", "2016-08-02", 1, 1.0),  # earlier, though later in the log
    ev("2026-11-20T08:00:00.000Z", "2016-08-03", 1, 7.0),  # no actual yet
    ev("2026-11-20T08:00:00.000Z", "2016-08-01", 1, 5.0, store=44),  # another store: no actual
]


def joined(events) -> LatestForecasts:
    found = LatestForecasts(ACTUALS)
    for e in events:
        found.add(e)
    return found


def test_the_latest_forecast_of_each_key_is_scored_against_the_actual():
    result = live_accuracy(ACTUALS, joined(EVENTS))
    by_hand = evaluate(np.array([10.0, 3.0, 12.0]), np.array([9.0, 4.0, 15.0]), np.array([False, True, False]))
    assert result["metrics"] == by_hand
    assert (result["rows"], result["matched_events"], result["unmatched_events"], result["repeated_keys"]) == (3, 5, 2, 2)
    assert result["versions"] == ["1", "2"]
    assert result["per_date"] == [
        {"date": "2016-08-01", "actual": 13.0, "forecast": 13.0, "rows": 2},
        {"date": "2016-08-02", "actual": 12.0, "forecast": 15.0, "rows": 1},
    ]


def test_the_batch_path_joins_what_the_reference_joins():
    one = joined(EVENTS)
    many = LatestForecasts(ACTUALS)
    many.add_columns(columns(EVENTS[:3]))
    many.add_columns(columns(EVENTS[3:]))
    assert (many.latest, many.matched_events, many.unmatched_events) == (one.latest, one.matched_events,
                                                                         one.unmatched_events)


def test_no_match_is_no_metrics():
    result = live_accuracy(ACTUALS, joined(EVENTS[5:]))
    assert result["metrics"] is None and result["rows"] == 0 and result["unmatched_events"] == 2


def test_actuals_by_key_keeps_the_first_of_a_repeated_key():
    rows = [{"date": date(2016, 8, 1), "item_nbr": 1, "store_nbr": 47, "unit_sales": 2.0, "perishable": True},
            {"date": date(2016, 8, 1), "item_nbr": 1, "store_nbr": 47, "unit_sales": 9.0, "perishable": True}]
    found, repeated = actuals_by_key(rows, FAVORITA.join_key, FAVORITA.actual)
    assert found == {("2016-08-01", 1, 47): Actual(2.0, True)} and repeated == 1


def test_without_actual_keys_every_event_is_unmatched():
    empty = LatestForecasts(Actuals(FAVORITA.join_key))
    empty.add_columns(columns(EVENTS))
    assert empty.unmatched_events == len(EVENTS) and empty.latest == {}


def test_a_problem_joins_on_its_own_key_and_without_a_date_there_is_no_chart_per_date():
    rows = [{"sale_id": "s-1", "price": 400_000.0}, {"sale_id": "s-2", "price": 250_000.0}]
    actuals, _ = actuals_by_key(rows, ("sale_id",), lambda row: ((row["sale_id"],), row["price"], False))
    events = [{**ev("2026-11-20T08:00:00.000Z", "2016-08-01", 1, 390_000.0), "sale_id": "s-1"},
              {**ev("2026-11-20T08:00:00.000Z", "2016-08-01", 1, 1.0), "sale_id": "s-9"}]
    found = LatestForecasts(actuals)
    for e in events:
        found.add(e)
    result = live_accuracy(actuals, found)
    assert (result["rows"], result["unmatched_events"], result["per_date"]) == (1, 1, [])
    assert result["metrics"]["mae"] == 10_000.0
