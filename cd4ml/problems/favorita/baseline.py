"""The naive baseline: each store-item's mean sales on the same weekday in the training window."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from cd4ml.problems.favorita.features import as_date, requests


class DayOfWeekMean:
    """Predicts the training mean of the same store, item and weekday; falls back to the
    store-item mean, then to the overall mean."""

    def fit(self, X: Any, y: np.ndarray) -> "DayOfWeekMean":
        sums: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0])
        for request, value in zip(requests(X), y):
            key = (int(request["store_nbr"]), int(request["item_nbr"]))
            for k in (key + (as_date(request["date"]).weekday(),), key):
                sums[k][0] += value
                sums[k][1] += 1
        self.means_ = {k: total / count for k, (total, count) in sums.items()}
        self.overall_ = float(np.mean(y)) if len(y) else 0.0
        return self

    def predict(self, X: Any) -> np.ndarray:
        predicted = []
        for request in requests(X):
            key = (int(request["store_nbr"]), int(request["item_nbr"]))
            weekday = key + (as_date(request["date"]).weekday(),)
            predicted.append(self.means_.get(weekday, self.means_.get(key, self.overall_)))
        return np.array(predicted, dtype=float)
