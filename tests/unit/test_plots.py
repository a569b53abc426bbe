"""The run's plots say what their axes are."""

from __future__ import annotations

import numpy as np

from cd4ml import plots


def test_the_feature_importance_plot_labels_both_axes():
    figure = plots.feature_importance(["item=1", "store=47", "onpromotion"], np.array([0.2, 0.5, 0.3]), plots.PERMUTATION)
    (axes,) = figure.axes
    assert axes.get_xlabel() == plots.PERMUTATION and axes.get_ylabel() == "encoded feature"
    assert [label.get_text() for label in axes.get_yticklabels()] == ["item=1", "onpromotion", "store=47"]


def test_every_plot_labels_its_value_axis():
    actual, predicted = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.5])
    assert plots.predicted_vs_actual(actual, predicted).axes[0].get_ylabel()
    assert plots.residuals_by_date(np.array(["2016-01-01"] * 3), actual, predicted).axes[0].get_ylabel()
