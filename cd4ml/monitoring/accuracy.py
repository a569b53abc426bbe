"""Live accuracy: actual sales joined to what production forecast for them. Pure.

The join key is the problem's (its Serving.join_key: Favorita's (date, item_nbr, store_nbr), the
houses problem's (sale_id,)); Actuals carry it. When production answered the same key several
times, the **latest** forecast (by @timestamp) is the one scored: it is what production said
last before the day, what a planner would have acted on. Every event of a key with actuals is
still counted (`matched_events`), and the keys forecast more than once are counted too.

It is an inner join: a forecast whose key has no row in the actuals is counted, not scored.
In both data layouts a missing row means no sale was recorded (or the day has not arrived),
and the model was trained on recorded sales only, as its validation was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from cd4ml.metrics import Evaluate, evaluate

Key = tuple  # the values of the join key's fields, e.g. (date YYYY-MM-DD, item_nbr, store_nbr)


@dataclass(frozen=True)
class Actual:
    sales: float  # the actual target (Favorita: unit sales, returns clipped to zero, as the pipeline's target)
    perishable: bool  # the metric weight flag (NWRMSLE weighs perishable rows 1.25)


class Actuals(dict):
    """Actual outcomes by key; join_key: the event fields the keys are made of, in order."""

    def __init__(self, join_key: Sequence[str], found: Mapping[Key, Actual] | None = None) -> None:
        super().__init__(found or {})
        self.join_key = tuple(join_key)


def actuals_by_key(rows: Iterable[Mapping[str, Any]], join_key: Sequence[str],
                   actual_of: Callable[[Mapping[str, Any]], tuple[Key, float, bool]]) -> tuple[Actuals, int]:
    """Processed rows by key (actual_of(row): key, target, weight flag, from the problem's Serving);
    a key given twice keeps its first row. Returns (actuals, repeated)."""
    found = Actuals(join_key)
    repeated = 0
    for row in rows:
        key, target, flag = actual_of(row)
        if key in found:
            repeated += 1
            continue
        found[key] = Actual(float(target), bool(flag))
    return found, repeated


class LatestForecasts:
    """The latest forecast of every key that has actuals, from a stream of checked events."""

    def __init__(self, keys: Actuals) -> None:
        self.keys = keys
        self.join_key = keys.join_key  # kept: a part's process replaces keys with {} before sending back
        self.latest: dict[Key, tuple[str, float, str]] = {}  # key -> (@timestamp, forecast, model_version)
        self.matched_events = 0  # events whose key has actuals
        self.unmatched_events = 0

    def add(self, event: Mapping[str, Any]) -> None:
        """One event (the reference; add_columns is the same, faster)."""
        key = tuple(event[name] for name in self.join_key)
        if key not in self.keys:
            self.unmatched_events += 1
            return
        self.matched_events += 1
        stamp = event["@timestamp"]
        seen = self.latest.get(key)
        if seen is None or stamp >= seen[0]:
            self.latest[key] = (stamp, event["prediction"], event["model_version"])

    def add_columns(self, batch: Mapping[str, Sequence[Any]]) -> None:
        """A batch of events as columns (events_source.Columns)."""
        total = len(batch["@timestamp"])
        if not self.keys:
            self.unmatched_events += total
            return
        keys, latest = self.keys, self.latest
        matched = 0
        for key, stamp, forecast, version in zip(
            zip(*(batch[name] for name in self.join_key)),
            batch["@timestamp"], batch["prediction"], batch["model_version"],
        ):
            if key in keys:
                matched += 1
                seen = latest.get(key)
                if seen is None or stamp >= seen[0]:
                    latest[key] = (stamp, forecast, version)
        self.matched_events += matched
        self.unmatched_events += total - matched


def merge_latest(into: LatestForecasts, latest: Mapping[Key, tuple[str, float, str]], matched: int,
                 unmatched: int) -> None:
    """Add what a LatestForecasts of the events after `into`'s saw (its latest, matched_events and
    unmatched_events): the same as one pass over both."""
    found = into.latest
    for key, entry in latest.items():
        seen = found.get(key)
        if seen is None or entry[0] >= seen[0]:
            found[key] = entry
    into.matched_events += matched
    into.unmatched_events += unmatched


def live_accuracy(actuals: Mapping[Key, Actual], forecasts: LatestForecasts, evaluate: Evaluate = evaluate) -> dict[str, Any]:
    """The problem's metrics (`evaluate`, its Problem.evaluate; Favorita's r2, NWRMSLE and MAE by
    default) of the latest forecasts against the actuals, with what was joined, and the actual and
    forecast totals per date when the key starts with the date (for the page's chart)."""
    keys = sorted(forecasts.latest)
    result: dict[str, Any] = {
        "rows": len(keys),
        "matched_events": forecasts.matched_events,
        "unmatched_events": forecasts.unmatched_events,
        "repeated_keys": forecasts.matched_events - len(keys),
        "actual_rows": len(actuals),
        "metrics": None,
        "per_date": [],
        "versions": sorted({forecasts.latest[k][2] for k in keys}),
    }
    if not keys:
        return result
    actual = np.array([actuals[k].sales for k in keys])
    predicted = np.array([forecasts.latest[k][1] for k in keys], dtype=float)
    perishable = np.array([actuals[k].perishable for k in keys])
    result["metrics"] = evaluate(actual, predicted, perishable)
    if forecasts.join_key[:1] != ("date",):
        return result  # the chart of totals per date needs keys that start with the date
    per_date: dict[str, list[float]] = {}
    for key, a, p in zip(keys, actual, predicted):
        totals = per_date.setdefault(key[0], [0.0, 0.0, 0])
        totals[0] += float(a)
        totals[1] += float(p)
        totals[2] += 1
    result["per_date"] = [
        {"date": day, "actual": t[0], "forecast": t[1], "rows": int(t[2])} for day, t in sorted(per_date.items())
    ]
    return result
