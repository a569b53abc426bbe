"""The run's plots as matplotlib figures (the tracker saves them as PNG)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


IMPURITY = "mean decrease in impurity (share of the trees' splits' gain)"
PERMUTATION = "mean decrease in r2 when the feature is shuffled (validation rows)"


def _figure(title: str):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray):
    """Each validation row as a point; the diagonal is a perfect forecast."""
    figure, axes = _figure("Predicted vs actual (validation rows)")
    axes.scatter(actual, predicted, s=8, alpha=0.5)
    top = float(max(actual.max(initial=0), predicted.max(initial=0))) or 1.0
    axes.plot([0, top], [0, top], color="grey", linewidth=1)
    axes.set_xlabel("actual unit sales")
    axes.set_ylabel("predicted unit sales")
    figure.tight_layout()
    return figure


def residuals_by_date(dates: np.ndarray, actual: np.ndarray, predicted: np.ndarray):
    """The mean residual (actual - predicted) of each validation day."""
    sums: dict = defaultdict(lambda: [0.0, 0])
    for day, residual in zip(dates, actual - predicted):
        sums[day][0] += residual
        sums[day][1] += 1
    days = sorted(sums)
    figure, axes = _figure("Mean residual by date (validation)")
    axes.plot(days, [sums[d][0] / sums[d][1] for d in days], marker=".")
    axes.axhline(0, color="grey", linewidth=1)
    axes.set_ylabel("actual - predicted")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def feature_importance(names: list[str], importance: np.ndarray, measure: str, top: int = 20):
    """The `top` most important encoded features; `measure` says what the importance is (the x axis)."""
    order = np.argsort(importance)[::-1][:top][::-1]
    figure, axes = _figure("Feature importance")
    axes.barh([names[i] for i in order], importance[order])
    axes.set_xlabel(measure)
    axes.set_ylabel("encoded feature")
    figure.tight_layout()
    return figure
