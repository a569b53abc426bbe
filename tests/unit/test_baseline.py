"""The naive baseline every model must beat: each item's mean sales by day of week."""

from __future__ import annotations

import numpy as np

from cd4ml.problems.favorita.baseline import DayOfWeekMean


def rows(*triples):
    return [{"date": d, "item_nbr": i, "store_nbr": 47} for d, i, _ in triples]


def test_predicts_the_training_mean_of_the_same_item_and_weekday():
    train = (("2016-08-01", 1, 4.0), ("2016-08-08", 1, 6.0), ("2016-08-02", 1, 10.0), ("2016-08-01", 2, 1.0))
    model = DayOfWeekMean().fit(rows(*train), np.array([t[2] for t in train]))
    predicted = model.predict(rows(("2016-08-15", 1, 0), ("2016-08-16", 1, 0), ("2016-08-15", 2, 0)))
    assert predicted.tolist() == [5.0, 10.0, 1.0]


def test_falls_back_to_the_item_mean_then_the_overall_mean():
    train = (("2016-08-01", 1, 4.0), ("2016-08-02", 1, 8.0))
    model = DayOfWeekMean().fit(rows(*train), np.array([4.0, 8.0]))
    predicted = model.predict(rows(("2016-08-03", 1, 0), ("2016-08-03", 99, 0)))
    assert predicted.tolist() == [6.0, 6.0]
