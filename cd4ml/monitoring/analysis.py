"""Streaming aggregates of prediction events, and the population stability index. Pure.

    stats = EventStats()
    for batch in source.batches(window):
        stats.add_columns(batch)       # or stats.add(event) for each, the readable reference
    summary = stats.summary()

Memory grows with the number of days, products, versions and requested dates, never with the
number of events: counts live in dicts keyed by day, version, item and so on. Latencies (ms) and
forecasts (units) are counted in log-spaced buckets, each 2 % wider than the one below: bucket
b holds BOUNDS[b-1] <= value < BOUNDS[b], from 0.001 up to about 2e7 (bucket 0 holds what is
below, the last one what is above). A latency percentile is within 1 % of the exact one; the
training profile's forecast bins are whole buckets, so live forecasts fall in them exactly,
whatever the profile, known or not when the pass starts.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from datetime import date
from functools import partial
from typing import Any, Iterable, Mapping, Sequence

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
RATIO = 1.02  # each bucket is 2 % wider than the one below
LEAST = 0.001  # the lower end of bucket 1: a forecast of 0 or a latency under a microsecond is in bucket 0
BOUNDS = tuple(LEAST * RATIO**k for k in range(1200))  # the lower ends of buckets 1, 2, ...
OTHER = "other"
PSI_FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite

log_bucket = partial(bisect_right, BOUNDS)
log_bucket.__doc__ = "The bucket of a latency (ms) or a forecast (units): BOUNDS[b-1] <= value < BOUNDS[b]."


def bucket_low(bucket: int) -> float:
    """The lower end of a bucket (0 for bucket 0)."""
    return BOUNDS[bucket - 1] if bucket > 0 else 0.0


def bucket_middle(bucket: int) -> float:
    """The geometric middle of a bucket: the value a percentile reports."""
    if bucket <= 0:
        return LEAST / math.sqrt(RATIO)
    return BOUNDS[bucket - 1] * math.sqrt(RATIO)


def binned(buckets: Mapping[int, int], edges: Sequence[int]) -> list[int]:
    """Bucket counts summed into bins: bin i holds buckets edges[i-1] <= b < edges[i], the first
    and the last bins open-ended. `edges` are increasing bucket numbers."""
    counts = [0] * (len(edges) + 1)
    for bucket, n in buckets.items():
        counts[bisect_right(edges, bucket)] += n
    return counts


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile (0..100, nearest rank) of a latency histogram; None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_middle(bucket)
    return bucket_middle(max(histogram))  # pragma: no cover - rank <= total


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population stability index of two distributions over the same bins (shares or counts):
    sum of (a - e) * ln(a / e) over bins. Below 0.1 the populations are alike; above 0.25 they differ."""
    if len(expected) != len(actual):
        raise ValueError(f"psi needs the same bins on both sides; got {len(expected)} and {len(actual)}")
    e_total, a_total = float(sum(expected)), float(sum(actual))
    if e_total <= 0 or a_total <= 0:
        raise ValueError("psi needs at least one count on each side")
    value = 0.0
    for e, a in zip(expected, actual):
        e_share, a_share = max(e / e_total, floor), max(a / a_total, floor)
        value += (a_share - e_share) * math.log(a_share / e_share)
    return value


def weekday_counts(dates: Mapping[str, int]) -> list[int]:
    """Counts of requested dates (YYYY-MM-DD -> count) by weekday, Monday first."""
    counts = [0] * 7
    for text, n in dates.items():
        counts[date.fromisoformat(text).weekday()] += n
    return counts


def grouped(counts: Mapping[Any, float], keep: Sequence[Any]) -> list[float]:
    """Counts of the `keep` categories in that order, then all others together (OTHER)."""
    kept = set(keep)
    return [counts.get(k, 0) for k in keep] + [sum(v for k, v in counts.items() if k not in kept)]


class Day:
    """The counts of one day (UTC, by @timestamp)."""

    __slots__ = ("versions", "items", "latency")

    def __init__(self) -> None:
        self.versions: Counter = Counter()  # model_version -> events
        self.items: Counter = Counter()  # drift key (Favorita: item_nbr) -> events
        self.latency: Counter = Counter()  # log_bucket(latency_ms) -> events


class EventStats:
    """Volume, drift keys (Favorita: products), versions, latency and forecast distribution of a
    stream of checked events. The fields are a problem's (events_source.EventSchema): `drift` is
    counted per value, `label` names a value (None: its text), `requested` is the date asked for
    (None: no weekdays); the defaults are Favorita's."""

    def __init__(self, drift: str = "item_nbr", label: str | None = "item_name", requested: str | None = "date") -> None:
        self.drift, self.label, self.date = drift, label, requested
        self.count = 0
        self.first: str | None = None  # earliest @timestamp
        self.last: str | None = None
        self.by_day: dict[str, Day] = {}
        self.forecast_sum: dict[Any, float] = {}  # drift key -> sum of forecasts
        self.item_names: dict[Any, str] = {}  # drift key -> the latest label seen
        self.version_runs: dict[str, str] = {}  # model_version -> the latest run id seen
        self.requested: Counter = Counter()  # requested date -> events
        self.forecasts: Counter = Counter()  # log_bucket(forecast) -> events

    def add(self, event: Mapping[str, Any]) -> None:
        """One event (the reference; add_columns is the same, faster)."""
        stamp = event["@timestamp"]
        item, version = event[self.drift], event["model_version"]
        self.count += 1
        self.first = stamp if self.first is None or stamp < self.first else self.first
        self.last = stamp if self.last is None or stamp > self.last else self.last
        day = self._day(stamp[:10])
        day.versions[version] += 1
        day.items[item] += 1
        day.latency[log_bucket(event["latency_ms"])] += 1
        self.forecast_sum[item] = self.forecast_sum.get(item, 0.0) + event["prediction"]
        if self.label:
            self.item_names[item] = event[self.label]
        self.version_runs[version] = event["run_id"]
        if self.date:
            self.requested[event[self.date]] += 1
        self.forecasts[log_bucket(event["prediction"])] += 1

    def add_columns(self, batch: Mapping[str, Sequence[Any]]) -> None:
        """A batch of events as columns (events_source.Columns): C-level counting instead of one
        event at a time."""
        stamps = batch["@timestamp"]
        if not stamps:
            return
        items, versions, forecasts = batch[self.drift], batch["model_version"], batch["prediction"]
        latencies = list(map(log_bucket, batch["latency_ms"]))
        self.count += len(stamps)
        low, high = min(stamps), max(stamps)
        self.first = low if self.first is None or low < self.first else self.first
        self.last = high if self.last is None or high > self.last else self.last
        if low[:10] == high[:10]:  # one day (the usual batch: the log is in time order)
            day = self._day(low[:10])
            day.versions.update(versions)
            day.items.update(items)
            day.latency.update(latencies)
        else:
            rows: dict[str, list[int]] = {}
            for row, stamp in enumerate(stamps):
                rows.setdefault(stamp[:10], []).append(row)
            for key, chosen in rows.items():
                day = self._day(key)
                day.versions.update([versions[i] for i in chosen])
                day.items.update([items[i] for i in chosen])
                day.latency.update([latencies[i] for i in chosen])
        sums = self.forecast_sum
        for item, forecast in zip(items, forecasts):
            sums[item] = sums.get(item, 0.0) + forecast
        if self.label:
            self.item_names.update(zip(items, batch[self.label]))
        self.version_runs.update(zip(versions, batch["run_id"]))
        if self.date:
            self.requested.update(batch[self.date])
        self.forecasts.update(map(log_bucket, forecasts))

    def merge(self, later: "EventStats") -> None:
        """Add the stats of the events that come after ours in the log (names and run ids: the
        latest seen wins, as in one pass). Forecast sums are added in another order than one pass
        would: equal to rounding."""
        self.count += later.count
        for attribute, pick in (("first", min), ("last", max)):
            values = [v for v in (getattr(self, attribute), getattr(later, attribute)) if v is not None]
            setattr(self, attribute, pick(values) if values else None)
        for key, day in later.by_day.items():
            mine = self._day(key)
            mine.versions.update(day.versions)
            mine.items.update(day.items)
            mine.latency.update(day.latency)
        sums = self.forecast_sum
        for item, total in later.forecast_sum.items():
            sums[item] = sums.get(item, 0.0) + total
        self.item_names.update(later.item_names)
        self.version_runs.update(later.version_runs)
        self.requested.update(later.requested)
        self.forecasts.update(later.forecasts)

    def _day(self, key: str) -> Day:
        found = self.by_day.get(key)
        if found is None:
            found = self.by_day[key] = Day()
        return found

    # --- what the report needs -------------------------------------------------------------------

    def days(self) -> list[str]:
        """Every day from the first event to the last (days without events included)."""
        if not self.by_day:
            return []
        first, last = date.fromisoformat(min(self.by_day)), date.fromisoformat(max(self.by_day))
        return [date.fromordinal(n).isoformat() for n in range(first.toordinal(), last.toordinal() + 1)]

    def item_totals(self) -> Counter:
        """drift key -> events, over all days."""
        totals: Counter = Counter()
        for day in self.by_day.values():
            totals.update(day.items)
        return totals

    def summary(self, top: int = 10) -> dict[str, Any]:
        """Everything the report and the page show, as plain JSON-ready values."""
        days = self.days()
        empty = Day()
        per_day = [self.by_day.get(d, empty) for d in days]
        versions = sorted({v for day in per_day for v in day.versions}, key=_version_key)
        item_totals = self.item_totals()
        ranked = sorted(item_totals, key=lambda item: (-item_totals[item], natural(item)))
        shown, rest = ranked[:top], ranked[top:]
        latency_all: Counter = Counter()
        for day in per_day:
            latency_all.update(day.latency)
        return {
            "events": self.count,
            "first": self.first,
            "last": self.last,
            "days": days,
            "per_day": [sum(day.versions.values()) for day in per_day],
            "versions": [
                {"version": v, "run_id": self.version_runs.get(v, ""),
                 "events": sum(day.versions[v] for day in per_day),
                 "per_day": [day.versions[v] for day in per_day]}
                for v in versions
            ],
            "items": [
                {"key": item, "name": self.item_names.get(item, str(item)), "events": item_totals[item],
                 "mean_forecast": self.forecast_sum[item] / item_totals[item],
                 "per_day": [day.items[item] for day in per_day]}
                for item in shown
            ],
            "other_items": {
                "count": len(rest),
                "events": sum(item_totals[i] for i in rest),
                "per_day": [sum(day.items.values()) - sum(day.items[i] for i in shown) for day in per_day],
            },
            "latency": {
                "p50_ms": percentile(latency_all, 50),
                "p99_ms": percentile(latency_all, 99),
                "per_day_p50_ms": [percentile(day.latency, 50) for day in per_day],
                "per_day_p99_ms": [percentile(day.latency, 99) for day in per_day],
            },
            "weekdays": weekday_counts(self.requested),
            "forecasts": {str(b): n for b, n in sorted(self.forecasts.items())},  # log bucket -> events
        }


def natural(key: Any) -> tuple:
    """A sort key for drift keys of any type: numbers (and digit strings) by value, then text."""
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key, "")
    text = str(key)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


def _version_key(version: str) -> tuple:
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def shares(counts: Iterable[float]) -> list[float]:
    values = list(counts)
    total = float(sum(values))
    return [v / total if total else 0.0 for v in values]
