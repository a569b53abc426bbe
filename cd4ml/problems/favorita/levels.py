"""LevelFeatures: what the naive baseline knows, as features, and the year as a smooth cycle. Pure.

The second step of the model's Pipeline, after SalesFeatures. Fitted on the training rows only
(inside the Pipeline), it learns each store-item's mean sales and its mean on each weekday, and
puts the weekday mean first in every row as `level`: a model of the ratio to it
(models.RelativeToLevel) starts from the baseline and learns what the baseline does not know.
The raw date parts (month, day of year, day of month) are replaced by two yearly Fourier terms
(sin and cos of one and two cycles a year, by week), which put December next to January, so trees
cannot split them into months they never saw.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

YEAR_DAYS = 365.25
DATE_PARTS = ("month", "dayofyear", "day")  # what the yearly terms replace


def yearly_terms(dayofyear: float, harmonics: int) -> dict[str, float]:
    """sin and cos of 1..harmonics cycles a year, at the middle of the date's week of the year
    (days 1-7, 8-14, ...; within a week the weekday speaks). 53 values each, so gradient boosting
    bins them exactly instead of by weighted quantiles, which cost it a second per fit on the
    workshop's 900 rows weighted by their level."""
    angle = 2 * math.pi * ((int(dayofyear) - 1) // 7 * 7 + 4) / YEAR_DAYS
    terms = {}
    for k in range(1, harmonics + 1):
        terms[f"year_sin{k}"] = math.sin(k * angle)
        terms[f"year_cos{k}"] = math.cos(k * angle)
    return terms


class LevelFeatures(TransformerMixin, BaseEstimator):
    """Feature dicts (SalesFeatures' output) to feature dicts that start with `level`.

    prior: how many rows' weight the store-item mean has in each weekday mean (shrinks the means
        of weekdays with few rows towards the store-item's; 0: the baseline's plain means).
    harmonics: yearly Fourier terms (0: none).

    Learned: item_means_ {"store item": mean}, weekday_means_ {"store item weekday": mean} (text
    keys, which skops can save), mean_ (of all training rows, for store-items never seen).
    """

    def __init__(self, prior: float = 5.0, harmonics: int = 2) -> None:
        self.prior = prior
        self.harmonics = harmonics

    def fit(self, X: Iterable[Mapping[str, Any]], y: Any) -> "LevelFeatures":
        if not (isinstance(self.prior, (int, float)) and self.prior >= 0):
            raise ValueError(f"LevelFeatures prior must be a number >= 0; got {self.prior!r}.")
        if not (isinstance(self.harmonics, int) and self.harmonics >= 0):
            raise ValueError(f"LevelFeatures harmonics must be an integer >= 0; got {self.harmonics!r}.")
        target = np.asarray(y, dtype=float)
        item, weekday = defaultdict(lambda: [0.0, 0]), defaultdict(lambda: [0.0, 0])
        for row, value in zip(X, target):
            key = _key(row)
            for totals in (item[key], weekday[f"{key} {row['dayofweek']}"]):
                totals[0] += value
                totals[1] += 1
        self.item_means_ = {k: total / count for k, (total, count) in item.items()}
        self.weekday_means_ = {
            k: (total + self.prior * self.item_means_[k.rsplit(" ", 1)[0]]) / (count + self.prior)
            for k, (total, count) in weekday.items()
        }
        self.mean_ = float(target.mean()) if len(target) else 0.0
        return self

    def transform(self, X: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [self.level_row(row) for row in X]

    def level_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One row's features: level first (DictVectorizer(sort=False) keeps it in column 0)."""
        key = _key(row)
        item = self.item_means_.get(key, self.mean_)
        level = self.weekday_means_.get(f"{key} {row['dayofweek']}", item)
        out = {"level": float(level), "weekday_ratio": float(level / item) if item else 1.0}
        out.update((name, value) for name, value in row.items() if name not in DATE_PARTS)
        out.update(yearly_terms(row["dayofyear"], self.harmonics))
        return out

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mean_")


def _key(row: Mapping[str, Any]) -> str:
    return f"{row['store_nbr']} {row['item_nbr']}"
