"""The gate's decision table: against the baseline, champion vs challenger, the range, and
metrics where lower is better."""

from __future__ import annotations

import math

import pytest

from cd4ml.acceptance import decide


def verdict(value, production=None, metric="r2", low=0.5, high=1.0, tolerance=0.02, baseline=None, min_gain=0.01):
    if baseline is None:  # a baseline the value beats by far: these cases are about the other checks
        baseline = value - 1 if metric == "r2" else value + 1
    return decide(metric=metric, value=value, baseline_value=baseline, min_gain=min_gain, low=low, high=high,
                  tolerance=tolerance, production_value=production,
                  production_version="3" if production is not None else None)


@pytest.mark.parametrize(
    "value, production, accepted",
    [
        (0.80, None, True),         # first model, in range
        (0.50, None, True),         # on the lower bound
        (1.00, None, True),         # on the upper bound
        (0.49, None, False),        # below the range
        (1.01, None, False),        # above the range: suspicious, rejected
        (0.80, 0.79, True),         # better than production
        (0.78, 0.79, True),         # worse, within tolerance
        (0.76, 0.79, False),        # worse by more than the tolerance
        (0.45, 0.30, False),        # better than production but below the range
        (math.nan, None, False),    # no number at all
    ],
)
def test_r2_decision_table(value, production, accepted):
    assert verdict(value, production).accepted is accepted


@pytest.mark.parametrize(
    "value, production, accepted",
    [(0.30, 0.31, True), (0.32, 0.31, True), (0.34, 0.31, False), (0.05, None, False)],
)
def test_lower_is_better_for_nwrmsle(value, production, accepted):
    assert verdict(value, production, metric="nwrmsle", low=0.1, high=0.6).accepted is accepted


@pytest.mark.parametrize(
    "value, baseline, accepted",
    [
        (0.80, 0.70, True),         # beats the baseline by far more than min_gain
        (0.80, 0.79, True),         # by exactly min_gain
        (0.795, 0.79, False),       # better, but by less than min_gain
        (0.70, 0.80, False),        # worse than the baseline
        (0.80, math.nan, False),    # no baseline on the run: the gate cannot tell, so fails closed
    ],
)
def test_r2_must_beat_the_baseline_by_min_gain(value, baseline, accepted):
    assert verdict(value, baseline=baseline).accepted is accepted


@pytest.mark.parametrize("value, accepted", [(0.34, True), (0.345, False), (0.36, False)])
def test_lower_is_better_against_the_baseline_too(value, accepted):
    assert verdict(value, metric="nwrmsle", low=0.1, high=0.6, baseline=0.35).accepted is accepted


def test_a_model_at_the_baseline_is_rejected_even_in_range_and_better_than_production():
    result = verdict(0.755, production=0.70, baseline=0.7575)
    assert not result.accepted and len(result.reasons) == 1 and "baseline" in result.reasons[0]


def test_the_message_names_run_metric_value_thresholds_baseline_production_and_verdict():
    result = decide(metric="r2", value=0.7, baseline_value=0.695, min_gain=0.01, low=0.75, high=1.0,
                    tolerance=0.02, production_value=0.8, production_version="4", run_id="abc")
    text = result.message
    for part in ("abc", "r2", "0.7000", "baseline", "0.6950", "min_gain 0.0100", "[0.7500, 1.0000]", "v4",
                 "0.8000", "REJECTED"):
        assert part in text
    assert len(result.reasons) == 3
    assert "baseline" in result.reasons[0] and "production" in result.reasons[1] and "outside" in result.reasons[2]


def test_an_accepted_message_says_so():
    assert "ACCEPTED" in verdict(0.8).message and "no production model yet" in verdict(0.8).message
