"""LevelFeatures: the baseline's knowledge (store-item means by weekday) as the first feature."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.feature_extraction import DictVectorizer
from sklearn.pipeline import Pipeline

from cd4ml.problems.favorita.baseline import DayOfWeekMean
from cd4ml.problems.favorita.features import SalesFeatures
from cd4ml.problems.favorita.levels import LevelFeatures, yearly_terms

CATALOGUE = {1: {"family": "DAIRY", "class": "2112", "perishable": True},
             2: {"family": "CLEANING", "class": "3034", "perishable": False}}


def requests(days: int = 28) -> pd.DataFrame:
    start = date(2016, 1, 4)  # a Monday
    return pd.DataFrame([{"date": (start + timedelta(k)).isoformat(), "item_nbr": item, "store_nbr": 47}
                         for k in range(days) for item in (1, 2)])


def features(X: pd.DataFrame) -> list[dict]:
    return SalesFeatures(catalogue=CATALOGUE).fit(X).transform(X)


def test_with_no_prior_the_level_is_the_baselines_forecast():
    X = requests()
    y = np.random.default_rng(0).poisson(10, size=len(X)).astype(float)
    levels = LevelFeatures(prior=0).fit(features(X), y)
    got = [row["level"] for row in levels.transform(features(X))]
    assert np.allclose(got, DayOfWeekMean().fit(X, y).predict(X))


def test_the_prior_shrinks_a_weekday_mean_towards_the_store_items_mean():
    X = requests(7)  # one row per weekday and item
    y = np.where(X["item_nbr"] == 1, np.arange(len(X)) // 2 % 2 * 14.0, 5.0)  # item 1: 0, 14, 0, ...; mean 6
    rows = LevelFeatures(prior=1).fit(features(X), y).transform(features(X))
    item1 = [(row["level"], value) for row, value, item in zip(rows, y, X["item_nbr"]) if item == 1]
    assert all(level == pytest.approx((value + 6.0) / 2) for level, value in item1)


def test_an_unknown_store_item_gets_the_training_mean_and_an_unknown_weekday_the_store_items():
    X = requests(3)  # Monday .. Wednesday only
    y = np.where(X["item_nbr"] == 1, 4.0, 8.0)
    levels = LevelFeatures().fit(features(X), y)
    asked = pd.DataFrame([{"date": "2016-01-08", "item_nbr": 1, "store_nbr": 47},  # a Friday
                          {"date": "2016-01-04", "item_nbr": 1, "store_nbr": 3}])
    first, second = levels.transform(features(asked))
    assert (first["level"], first["weekday_ratio"]) == (4.0, 1.0)
    assert second["level"] == 6.0


def test_rows_start_with_the_level_and_the_year_is_smooth_terms_instead_of_date_parts():
    X = requests()
    row = LevelFeatures(harmonics=2).fit(features(X), np.ones(len(X))).transform(features(X))[0]
    assert next(iter(row)) == "level"
    assert not {"month", "dayofyear", "day"} & set(row)
    assert {"year_sin1", "year_cos1", "year_sin2", "year_cos2", "dayofweek", "payday", "dayoff"} <= set(row)


def test_the_yearly_terms_are_one_per_week_and_meet_at_the_turn_of_the_year():
    assert all(yearly_terms(day, 2) == yearly_terms(1, 2) for day in range(1, 8))
    assert yearly_terms(8, 2) != yearly_terms(7, 2)
    assert yearly_terms(365, 2) == pytest.approx(yearly_terms(1, 2), abs=0.05)  # the last week of December
    assert yearly_terms(183, 2)["year_cos1"] == pytest.approx(-1, abs=0.01)  # midsummer, opposite


def test_the_encoder_keeps_the_level_in_column_0():
    X = requests()
    model = Pipeline([("features", SalesFeatures(catalogue=CATALOGUE)), ("levels", LevelFeatures()),
                      ("encode", DictVectorizer(sparse=False, sort=False))]).fit(X, np.arange(len(X), dtype=float))
    assert model.named_steps["encode"].feature_names_[0] == "level"
    assert np.allclose(model.transform(X)[:, 0], [r["level"] for r in model[:-1].transform(X)])


@pytest.mark.parametrize("params, match", [({"prior": -1}, "prior must be a number >= 0; got -1"),
                                           ({"harmonics": 1.5}, "harmonics must be an integer >= 0; got 1.5")])
def test_bad_hyperparameters_name_the_parameter_and_the_value(params, match):
    with pytest.raises(ValueError, match=match):
        LevelFeatures(**params).fit(features(requests(1)), np.ones(2))


def test_level_features_is_a_proper_sklearn_estimator():
    levels = LevelFeatures(prior=3, harmonics=1)
    assert clone(levels).get_params() == {"prior": 3, "harmonics": 1}
