"""Live accuracy: actual sales joined to what production forecast for them. Pure.

The join key is (date, item_nbr, store_nbr). When production answered the same key several
times, the **latest** forecast (by @timestamp) is the one scored: it is what production said
last before the day, what a planner would have acted on. Every event of a key with actuals is
still counted (`matched_events`), and the keys forecast more than once are counted too.

It is an inner join: a forecast whose key has no row in the actuals is counted, not scored.
In both data layouts a missing row means no sale was recorded (or the day has not arrived),
and the model was trained on recorded sales only, as its validation was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from cd4ml.metrics import evaluate

Key = tuple[str, int, int]  # (date YYYY-MM-DD, item_nbr, store_nbr)


@dataclass(frozen=True)
class Actual:
    sales: float  # unit sales, returns clipped to zero (as the pipeline's target)
    perishable: bool  # NWRMSLE weighs perishable rows 1.25


def actuals_by_key(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[Key, Actual], int]:
    """Processed sales rows by key; a key given twice keeps its first row. Returns (actuals, repeated)."""
    found: dict[Key, Actual] = {}
    repeated = 0
    for row in rows:
        key = (row["date"].isoformat(), row["item_nbr"], row["store_nbr"])
        if key in found:
            repeated += 1
            continue
        found[key] = Actual(float(row["unit_sales"]), bool(row["perishable"]))
    return found, repeated


class LatestForecasts:
    """The latest forecast of every key that has actuals, from a stream of checked events."""

    def __init__(self, keys: Mapping[Key, Any]) -> None:
        self.keys = keys
        self.latest: dict[Key, tuple[str, float, str]] = {}  # key -> (@timestamp, forecast, model_version)
        self.matched_events = 0  # events whose key has actuals
        self.unmatched_events = 0

    def add(self, event: Mapping[str, Any]) -> None:
        """One event (the reference; add_columns is the same, faster)."""
        key = (event["date"], event["item_nbr"], event["store_nbr"])
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
        total = len(batch["date"])
        if not self.keys:
            self.unmatched_events += total
            return
        keys, latest = self.keys, self.latest
        matched = 0
        for key, stamp, forecast, version in zip(
            zip(batch["date"], batch["item_nbr"], batch["store_nbr"]),
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


def live_accuracy(actuals: Mapping[Key, Actual], forecasts: LatestForecasts) -> dict[str, Any]:
    """r2, NWRMSLE and MAE of the latest forecasts against the actuals, with what was joined, and
    the actual and forecast totals per date (for the page's chart)."""
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
