"""Metrics: r2 (the acceptance metric), Kaggle's NWRMSLE, MAE; for prices RMSE, MAE and MAPE."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cd4ml.metrics import compare, evaluate, evaluate_prices, mae, mape, nwrmsle, r2, rmse


def test_perfect_predictions_score_perfectly():
    y = np.array([1.0, 2.0, 5.0])
    assert r2(y, y) == 1.0 and nwrmsle(y, y, np.ones(3)) == 0.0 and mae(y, y) == 0.0


def test_r2_of_the_mean_is_zero():
    y = np.array([1.0, 2.0, 6.0])
    assert r2(y, np.full(3, 3.0)) == pytest.approx(0.0)


def test_nwrmsle_matches_kaggles_formula_by_hand():
    y, p, w = np.array([0.0, 3.0]), np.array([1.0, 1.0]), np.array([1.25, 1.0])
    by_hand = math.sqrt((1.25 * (math.log(2) - math.log(1)) ** 2 + 1.0 * (math.log(2) - math.log(4)) ** 2) / 2.25)
    assert nwrmsle(y, p, w) == pytest.approx(by_hand)


def test_nwrmsle_clips_negative_values_to_zero():
    assert nwrmsle(np.array([0.0]), np.array([-5.0]), np.ones(1)) == 0.0


def test_evaluate_weighs_perishables_by_one_and_a_quarter():
    y, p = np.array([1.0, 1.0]), np.array([2.0, 1.0])
    heavy = evaluate(y, p, perishable=np.array([True, False]))
    light = evaluate(y, p, perishable=np.array([False, True]))
    assert heavy["nwrmsle"] > light["nwrmsle"]
    assert set(heavy) == {"r2", "nwrmsle", "mae"}


def test_metrics_refuse_empty_input():
    with pytest.raises(ValueError, match="no rows"):
        evaluate(np.array([]), np.array([]), perishable=np.array([], dtype=bool))


def test_compare_scores_model_baseline_and_best_and_the_gap_closed():
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    perishable = np.array([False, True, False, False])
    metrics = compare(actual, perishable, actual + 0.5, np.full(4, 2.5), expected=actual)
    assert metrics["r2"] == evaluate(actual, actual + 0.5, perishable)["r2"] == 0.8
    assert metrics["baseline_r2"] == 0.0 and metrics["best_r2"] == 1.0
    assert metrics["r2_gap_closed"] == 0.8
    assert "best_r2" not in compare(actual, perishable, actual, actual)


def test_price_metrics_are_in_dollars_and_mape_a_fraction():
    actual, predicted = np.array([100_000.0, 200_000.0, 400_000.0]), np.array([110_000.0, 180_000.0, 400_000.0])
    assert rmse(actual, predicted) == pytest.approx(math.sqrt((1e8 + 4e8) / 3))
    assert mape(actual, predicted) == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert mape(np.array([0.0, 10.0]), np.array([5.0, 11.0])) == pytest.approx(0.1)  # a zero actual is left out
    assert set(evaluate_prices(actual, predicted)) == {"r2", "rmse", "mae", "mape"}


def test_compare_takes_the_problems_metrics():
    actual = np.array([100.0, 200.0, 300.0])
    metrics = compare(actual, np.ones(3), actual * 1.1, np.full(3, 200.0), evaluate=evaluate_prices)
    assert metrics["mape"] == pytest.approx(0.1) and "baseline_rmse" in metrics and "nwrmsle" not in metrics
