"""Streaming aggregates of literal events: volume, products, versions, latency percentiles, PSI;
the batch path counts what the event-by-event reference counts."""

from __future__ import annotations

import math
import random

import pytest

from cd4ml.monitoring.analysis import (
    BOUNDS, EventStats, binned, bucket_middle, grouped, log_bucket, percentile, psi, weekday_counts,
)
from cd4ml.monitoring.events_source import columns


def ev(stamp: str, item: int = 1, version: str = "1", forecast: float = 2.0, latency: float = 1.0,
       day: str = "2026-11-30", name: str | None = None, store: int = 47) -> dict:
    return {"@timestamp": stamp, "date": day, "item_nbr": item, "item_name": name or f"Item {item}",
            "store_nbr": store, "prediction": forecast, "model_version": version, "run_id": f"run-{version}",
            "latency_ms": latency}


EVENTS = [
    ev("2026-11-20T08:00:00.000Z", item=1, version="1", forecast=10.0, latency=1.0, day="2026-11-30"),  # a Monday
    ev("2026-11-20T09:00:00.000Z", item=2, version="1", forecast=4.0, latency=2.0, day="2026-12-01"),
    ev("2026-11-22T10:00:00.000Z", item=1, version="2", forecast=12.0, latency=3.0, day="2026-11-30", name="Milk"),
    ev("2026-11-22T11:00:00.000Z", item=3, version="2", forecast=0.0, latency=100.0, day="2026-12-06"),
]


def test_volume_per_day_product_and_version():
    stats = EventStats()
    for e in EVENTS:
        stats.add(e)
    s = stats.summary()
    assert s["events"] == 4 and (s["first"], s["last"]) == ("2026-11-20T08:00:00.000Z", "2026-11-22T11:00:00.000Z")
    assert s["days"] == ["2026-11-20", "2026-11-21", "2026-11-22"]  # the day without events included
    assert s["per_day"] == [2, 0, 2]
    assert [(v["version"], v["events"], v["per_day"], v["run_id"]) for v in s["versions"]] == [
        ("1", 2, [2, 0, 0], "run-1"), ("2", 2, [0, 0, 2], "run-2")]
    milk = s["items"][0]
    assert (milk["key"], milk["name"], milk["events"], milk["mean_forecast"]) == (1, "Milk", 2, 11.0)
    assert [i["key"] for i in s["items"]] == [1, 2, 3]  # most requested first, ties by number
    assert s["weekdays"] == [2, 1, 0, 0, 0, 0, 1]  # requested dates: Mon, Mon, Tue, Sun


def test_top_products_and_the_rest():
    stats = EventStats()
    for e in EVENTS:
        stats.add(e)
    s = stats.summary(top=1)
    assert [i["key"] for i in s["items"]] == [1]
    assert s["other_items"] == {"count": 2, "events": 2, "per_day": [1, 0, 1]}


def test_the_batch_path_counts_what_the_reference_counts():
    rng = random.Random(7)
    events = [ev(f"2026-11-{20 + i // 400:02d}T{(i // 20) % 24:02d}:{i % 60:02d}:00.000Z", item=rng.randint(1, 30),
                 version=rng.choice("123"), forecast=rng.uniform(0, 50), latency=rng.lognormvariate(0, 1),
                 day=f"2026-12-{rng.randint(1, 28):02d}") for i in range(1200)]
    one, many = EventStats(), EventStats()
    for e in events:
        one.add(e)
    for start in range(0, len(events), 250):  # batches that span days too
        many.add_columns(columns(events[start:start + 250]))
    assert many.summary() == one.summary()
    assert many.forecasts == one.forecasts and many.requested == one.requested


def test_latency_percentiles_are_within_one_percent_of_the_exact_ones():
    rng = random.Random(3)
    latencies = [rng.lognormvariate(-1, 1.2) for _ in range(20_000)]
    stats = EventStats()
    stats.add_columns(columns([ev("2026-11-20T08:00:00.000Z", latency=x) for x in latencies]))
    exact = sorted(latencies)
    for q in (50, 99):
        found = stats.summary()["latency"][f"p{q}_ms"]
        assert abs(found / exact[math.ceil(q / 100 * len(exact)) - 1] - 1) < 0.01


def test_percentile_of_a_histogram():
    assert percentile({}, 50) is None
    histogram = {log_bucket(1.0): 98, log_bucket(50.0): 2}
    assert percentile(histogram, 50) == pytest.approx(1.0, rel=0.01)
    assert percentile(histogram, 99) == pytest.approx(50.0, rel=0.01)


def test_buckets_are_two_percent_wide_with_the_extremes_kept():
    assert log_bucket(0.0) == log_bucket(-3.0) == 0  # below 0.001
    assert log_bucket(0.001) == 1 and log_bucket(1e12) == len(BOUNDS)
    assert BOUNDS[log_bucket(7.3) - 1] <= 7.3 < BOUNDS[log_bucket(7.3)]
    assert bucket_middle(log_bucket(7.3)) == pytest.approx(7.3, rel=0.01)


def test_bins_sum_whole_buckets():
    assert binned({1: 5, 10: 1, 20: 2, 30: 4}, [10, 30]) == [5, 3, 4]  # [..10), [10, 30), [30..]
    assert binned({}, [3]) == [0, 0]


@pytest.mark.parametrize("expected, actual, value", [
    ([0.5, 0.5], [0.5, 0.5], 0.0),
    ([0.5, 0.5], [50, 50], 0.0),  # counts or shares
    ([0.5, 0.5], [0.9, 0.1], 0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5)),
    ([0.25, 0.25, 0.5], [0.5, 0.25, 0.25], 0.25 * math.log(2) - 0.25 * math.log(0.5)),
])
def test_psi_of_literal_distributions(expected, actual, value):
    assert psi(expected, actual) == pytest.approx(value)


def test_psi_floors_empty_bins_and_refuses_mismatched_bins():
    assert math.isfinite(psi([1.0, 0.0], [0.0, 1.0]))
    assert psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx(2 * (1 - 1e-4) * math.log(1 / 1e-4))
    with pytest.raises(ValueError, match="same bins"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one count"):
        psi([0, 0], [1, 2])


def test_weekdays_and_grouping():
    assert weekday_counts({"2026-11-23": 3, "2026-11-29": 1}) == [3, 0, 0, 0, 0, 0, 1]
    assert grouped({"a": 5, "b": 3, "c": 1, "d": 1}, ["b", "a"]) == [3, 5, 2]
