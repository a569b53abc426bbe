"""Metrics of a forecast: r2 (the workshop's acceptance metric), NWRMSLE (Kaggle's), MAE; and for
prices RMSE, MAE in dollars and MAPE. Pure."""

from __future__ import annotations

from typing import Callable

import numpy as np

PERISHABLE_WEIGHT = 1.25
HIGHER_IS_BETTER = {"r2": True, "nwrmsle": False, "mae": False, "rmse": False, "mape": False}
Evaluate = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, float]]  # (actual, predicted, weights)


def r2(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination: 1 is perfect, 0 is no better than the mean."""
    residual = float(np.sum((actual - predicted) ** 2))
    total = float(np.sum((actual - actual.mean()) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def nwrmsle(actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> float:
    """Normalized weighted root mean squared logarithmic error; negatives count as zero."""
    error = np.log1p(np.clip(predicted, 0, None)) - np.log1p(np.clip(actual, 0, None))
    return float(np.sqrt(np.sum(weights * error**2) / np.sum(weights)))


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error, in units (or kg) per row."""
    return float(np.mean(np.abs(actual - predicted)))


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error, in the target's units (dollars for prices)."""
    return float(np.sqrt(np.mean((actual - predicted) ** 2)))


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error, as a fraction (0.1 is 10 %); rows whose actual is 0 are left out."""
    known = actual != 0
    return float(np.mean(np.abs((actual[known] - predicted[known]) / actual[known]))) if known.any() else float("nan")


def evaluate_prices(actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """All metrics of a price forecast: r2, RMSE and MAE in dollars, MAPE (weights are not used)."""
    if len(actual) == 0:
        raise ValueError("cannot evaluate a forecast of no rows")
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    return {"r2": r2(actual, predicted), "rmse": rmse(actual, predicted), "mae": mae(actual, predicted),
            "mape": mape(actual, predicted)}


def evaluate(actual: np.ndarray, predicted: np.ndarray, perishable: np.ndarray) -> dict[str, float]:
    """All metrics of one forecast; perishable rows weigh 1.25 in NWRMSLE, as on Kaggle."""
    if len(actual) == 0:
        raise ValueError("cannot evaluate a forecast of no rows")
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    weights = np.where(np.asarray(perishable, dtype=bool), PERISHABLE_WEIGHT, 1.0)
    return {
        "r2": r2(actual, predicted),
        "nwrmsle": nwrmsle(actual, predicted, weights),
        "mae": mae(actual, predicted),
    }


def compare(actual: np.ndarray, perishable: np.ndarray, predicted: np.ndarray, baseline: np.ndarray,
            expected: np.ndarray | None = None, evaluate: Evaluate = evaluate) -> dict[str, float]:
    """The model's metrics, the baseline's (baseline_*), the best achievable forecast's (best_*,
    when the expected sales are known) and the share of the r2 gap from baseline to best that
    the model closes (r2_gap_closed); `evaluate` gives the problem's metrics (Favorita's by default)."""
    metrics = evaluate(actual, predicted, perishable)
    metrics.update({f"baseline_{k}": v for k, v in evaluate(actual, baseline, perishable).items()})
    if expected is not None:
        metrics.update({f"best_{k}": v for k, v in evaluate(actual, expected, perishable).items()})
        room = metrics["best_r2"] - metrics["baseline_r2"]
        if room > 0:
            metrics["r2_gap_closed"] = (metrics["r2"] - metrics["baseline_r2"]) / room
    return metrics


def score_cell(value: float) -> str:
    """A score in 10 characters: 4 decimals, or whole units (dollars) with separators from 10,000 on."""
    return f"{value:10.4f}" if abs(value) < 10_000 else f"{value:10,.0f}"
