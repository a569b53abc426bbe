"""The training profile the pipeline logs: shares of items and weekdays, forecast bins that live
events fall in exactly."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from cd4ml.monitoring.analysis import log_bucket
from cd4ml.monitoring.profile import (
    PROFILE_VERSION, _numpy_buckets, bucket_counts, profile_bytes, quantile_edges, read_profile, training_profile,
)


def test_the_profile_holds_item_and_weekday_shares_and_forecast_bins():
    items = np.array([1, 1, 2, 3])
    dates = np.array([date(2016, 8, 1), date(2016, 8, 1), date(2016, 8, 7), date(2016, 8, 3)], dtype=object)
    forecasts = np.linspace(0.5, 40, 200)
    profile = training_profile(items, dates, np.array([1.0, 2.0, 3.0, 4.0]), forecasts)
    assert profile["profile_version"] == PROFILE_VERSION and profile["rows"] == 4
    assert profile["items"] == {"1": 0.5, "2": 0.25, "3": 0.25}
    assert profile["weekdays"] == [0.5, 0.0, 0.25, 0.0, 0.0, 0.0, 0.25]  # Mon, Mon, Sun, Wed
    edges, shares = profile["forecast"]["edges"], profile["forecast"]["shares"]
    assert len(edges) == 9 and edges == sorted(set(edges))
    assert sum(shares) == pytest.approx(1.0) and all(0.08 <= s <= 0.12 for s in shares)  # about deciles
    assert profile["target"]["edges"] == edges
    assert read_profile(profile_bytes(profile)) == json.loads(profile_bytes(profile))


def test_numpy_buckets_are_the_buckets_of_the_live_events():
    values = np.concatenate([np.random.default_rng(1).gamma(2, 5, 5000), [0.0, -1.0, 0.001, 1.0, 1e9]])
    assert _numpy_buckets(values) == bucket_counts(values)
    assert bucket_counts([1.0, 1.0, 0.0]) == {log_bucket(1.0): 2, 0: 1}


@pytest.mark.parametrize("values, edges", [
    ([1.0] * 10, []),  # one bucket: one bin
    ([0.0] * 8 + [1.0, 2.0], [log_bucket(1.0), log_bucket(2.0)]),  # no empty first bin, no edge twice
])
def test_quantile_edges_of_lumpy_forecasts(values, edges):
    assert quantile_edges(bucket_counts(values)) == edges


def test_a_profile_of_another_version_is_refused():
    with pytest.raises(ValueError, match="not a version 1 training profile"):
        read_profile(b'{"profile_version": 99}')
    with pytest.raises(ValueError, match="no 'weekdays'"):
        read_profile(b'{"profile_version": 1, "items": {}, "forecast": {}}')
