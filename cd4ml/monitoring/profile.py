"""The training profile: what the deployed model's training data looked like, for drift checks. Pure.

The pipeline logs it with every model as the artifact profile/training.json; `monitor` downloads
the production model's profile and compares the live events with it (population stability index):

    items      share of training rows per value of the problem's drift key (Favorita: item_nbr,
               houses: zipcode), keyed by the value's text
    weekdays   share of training rows per weekday of their date, Monday first
    forecast   bins (about deciles) and shares of the model's own forecasts of the validation
               rows: what its predictions looked like before deployment. The bin edges are
               buckets of analysis.log_bucket (2 % wide), so live forecasts are binned exactly.
    target     the same bins and the shares of the training target, for reference
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Sequence

import numpy as np

from cd4ml.monitoring.analysis import BOUNDS, binned, bucket_low, log_bucket

PROFILE_VERSION = 1
BINS = 10


def bucket_counts(values: Sequence[float]) -> Counter:
    """Values counted by analysis.log_bucket, the function live events are counted with (the
    reference for _numpy_buckets)."""
    return Counter(map(log_bucket, map(float, values)))


def quantile_edges(buckets: Counter, bins: int = BINS) -> list[int]:
    """Bucket numbers that start each bin after the first, at about the quantiles 1/bins ..
    (bins-1)/bins; no empty bin at the low end, no edge twice."""
    total = sum(buckets.values())
    ordered = sorted(buckets)
    edges, seen, target = [], 0, 1
    for bucket in ordered:
        while target < bins and seen >= total * target / bins:
            if bucket not in edges and bucket != ordered[0]:
                edges.append(bucket)
            target += 1
        seen += buckets[bucket]
    return edges


def shares_in(buckets: Counter, edges: Sequence[int]) -> list[float]:
    total = sum(buckets.values())
    return [n / total if total else 0.0 for n in binned(buckets, edges)]


def training_profile(
    items: np.ndarray, dates: np.ndarray, target: np.ndarray, forecasts: np.ndarray, bins: int = BINS,
) -> dict[str, Any]:
    """The profile of a model's training rows (their drift keys `items`, dates, target) and its
    validation forecasts. Integer keys are written as their number, others as their text."""
    items = np.asarray(items)
    if len(items) == 0:
        raise ValueError("a training profile needs at least one training row")
    weekdays = _weekdays(dates)
    integers = items.dtype.kind in "iu"
    numbers, counts = np.unique(items if integers else items.astype(str), return_counts=True)
    forecast_buckets = _numpy_buckets(forecasts)
    edges = quantile_edges(forecast_buckets, bins)
    return {
        "profile_version": PROFILE_VERSION,
        "rows": int(len(items)),
        "items": {str(int(n)) if integers else str(n): float(c) / len(items) for n, c in zip(numbers, counts)},
        "weekdays": [float(c) / len(items) for c in np.bincount(weekdays, minlength=7)],
        "forecast": {"edges": edges, "edge_values": [bucket_low(e) for e in edges],
                     "shares": shares_in(forecast_buckets, edges)},
        "target": {"edges": edges, "shares": shares_in(_numpy_buckets(target), edges)},
    }


def _weekdays(dates: np.ndarray) -> np.ndarray:
    """The weekday (Monday 0) of each date, computed once per distinct date."""
    import pandas as pd

    codes, distinct = pd.factorize(np.asarray(dates, dtype=object))
    return np.array([d.weekday() for d in distinct], dtype=np.int64)[codes]


def _numpy_buckets(values: np.ndarray) -> Counter:
    """bucket_counts, vectorised for the many training rows: the same search in the same table."""
    buckets = np.searchsorted(np.asarray(BOUNDS), np.asarray(values, dtype=float), side="right")
    numbers, counts = np.unique(buckets, return_counts=True)
    return Counter(dict(zip(numbers.tolist(), counts.tolist())))


def profile_bytes(profile: dict[str, Any]) -> bytes:
    return json.dumps(profile, sort_keys=True).encode()


def read_profile(data: bytes) -> dict[str, Any]:
    """A logged profile, checked enough to use; ValueError says what is wrong."""
    profile = json.loads(data)
    if not isinstance(profile, dict) or profile.get("profile_version") != PROFILE_VERSION:
        raise ValueError(f"not a version {PROFILE_VERSION} training profile")
    for key in ("items", "weekdays", "forecast"):
        if key not in profile:
            raise ValueError(f"the training profile has no {key!r}")
    return profile
