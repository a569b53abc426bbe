"""CompactSalesFeatures: forecast requests as a small numeric matrix, for models trained at scale. Pure.

The workshop's SalesFeatures one-hot encodes the item and the store: a few columns for three
products, but thousands for Kaggle's 4,000 items and 54 stores, too wide for millions of rows.
Here the store-item pair, the item and the store are target encoded instead (their mean sales in
the training rows, learned from totals over all of them; NaN when never seen, which gradient
boosting takes as missing), the family is one code (its rank by name), and the date and
promotion features are feature_row's, as numbers. (HistGradientBoostingRegressor could split the
family as a category, but its categorical preprocessing puts types in the model that the skops
loader would have to be told to trust: functools.partial among them.) Like SalesFeatures it carries the catalogue, the days off
and the period, so the server and the forecast form work with either.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from cd4ml.problems.favorita.features import Catalogue, as_date, calendar_columns, days_of, requests

FEATURES = (
    "level", "store_item_mean", "item_mean", "store_mean", "family", "perishable",
    "dayofweek", "month", "day", "dayofyear", "payday", "dayoff", "onpromotion",
)
_EPOCH = date(1970, 1, 1).toordinal()


class CompactSalesFeatures(TransformerMixin, BaseEstimator):
    """Requests (dicts or a DataFrame with date, item_nbr, store_nbr[, onpromotion]) to a float
    matrix with the columns FEATURES.

    catalogue, calendar, period: as for SalesFeatures (the products the model knows, the days
        off as ISO dates, the first and last date of the data).
    item_nbr, family, perishable: every item of items.csv with its family and perishable flag,
        aligned; its position here is the item's index in the encodings.

    Learned (fit, or fit_totals from the totals of a pass over data of any size):
    store_item_mean_ (n_stores x n_items), item_mean_, store_mean_: mean sales, NaN where unseen;
    mean_: of all training rows.

    The first column, level, is the best known mean of the request's sales: its store-item's,
    else its item's scaled by its store's share (store mean / overall mean), else its item's,
    its store's, or the overall mean. The scale path's model forecasts relative to it.
    """

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        calendar: tuple[str, ...] = (),
        period: tuple[str, str] | None = None,
        item_nbr: np.ndarray | None = None,
        family: tuple[str, ...] = (),
        perishable: np.ndarray | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.calendar = calendar
        self.period = period
        self.item_nbr = item_nbr
        self.family = family
        self.perishable = perishable

    # --- learning ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> "CompactSalesFeatures":
        """Learn the encodings from requests and their sales (small data; at scale: fit_totals)."""
        day, store, position, _ = self.request_columns(X)
        known = position >= 0
        n_stores = int(store.max(initial=-1)) + 1
        cell = store[known] * self._n_items() + position[known]
        size = n_stores * self._n_items()
        target = np.asarray(y, dtype=float)[known]
        sums = np.bincount(cell, weights=target, minlength=size)
        counts = np.bincount(cell, minlength=size)
        return self.fit_totals(sums, counts)

    def fit_totals(self, sums: np.ndarray, counts: np.ndarray) -> "CompactSalesFeatures":
        """Learn the encodings from each cell's sum of sales and number of training rows; a cell
        is store_nbr * n_items + the item's position (the layout of the scale path's totals)."""
        n_items = self._n_items()
        sums = np.asarray(sums, dtype=float)
        counts = np.asarray(counts, dtype=float)
        n_stores = -(-len(sums) // n_items) if n_items else 0
        pad = n_stores * n_items - len(sums)
        sums = np.pad(sums, (0, pad)).reshape(n_stores, n_items)
        counts = np.pad(counts, (0, pad)).reshape(n_stores, n_items)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.store_item_mean_ = sums / counts
            self.item_mean_ = sums.sum(axis=0) / counts.sum(axis=0)
            self.store_mean_ = sums.sum(axis=1) / counts.sum(axis=1)
        self.mean_ = float(sums.sum() / counts.sum()) if counts.sum() else 0.0
        self.families_ = tuple(sorted(set(self.family)))
        code = {name: k for k, name in enumerate(self.families_)}
        self.family_code_ = np.array([code[name] for name in self.family], dtype=float)
        self.days_off_ = days_of(date.fromisoformat(d) for d in self.calendar)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "store_item_mean_")

    # --- encoding ------------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        return self.encode(*self.request_columns(X))

    def encode(self, day: np.ndarray, store: np.ndarray, position: np.ndarray, promo: np.ndarray) -> np.ndarray:
        """The feature matrix of rows given as day numbers (date32), store numbers, item positions
        (-1: an item not in items.csv) and promotion flags."""
        n = len(day)
        out = np.full((n, len(FEATURES)), np.nan)
        store = np.asarray(store, dtype=np.int64)
        position = np.asarray(position, dtype=np.int64)
        n_stores, n_items = self.store_item_mean_.shape
        item_known = (position >= 0) & (position < n_items)
        store_known = (store >= 0) & (store < n_stores)
        both = item_known & store_known
        out[both, 1] = self.store_item_mean_[store[both], position[both]]
        out[item_known, 2] = self.item_mean_[position[item_known]]
        out[store_known, 3] = self.store_mean_[store[store_known]]
        out[item_known, 4] = self.family_code_[position[item_known]]
        perishable = np.zeros(n)
        perishable[item_known] = np.asarray(self.perishable, dtype=float)[position[item_known]]
        out[:, 5] = perishable
        calendar = calendar_columns(np.asarray(day), self.days_off_)
        for k, name in enumerate(("dayofweek", "month", "day", "dayofyear", "payday", "dayoff"), start=6):
            out[:, k] = calendar[name]
        out[:, 12] = np.asarray(promo, dtype=float)
        out[:, 0] = self._level(out[:, 1], out[:, 2], out[:, 3])
        return out

    def _level(self, store_item: np.ndarray, item: np.ndarray, store: np.ndarray) -> np.ndarray:
        """The store-item mean, else the item mean x the store's share, item mean, store mean, overall mean."""
        level = store_item.copy()
        share = store / self.mean_ if self.mean_ else np.full(len(store), np.nan)
        for fallback in (item * share, item, store):
            missing = np.isnan(level)
            level[missing] = fallback[missing]
        level[np.isnan(level)] = self.mean_
        return level

    def encode_frame(self, frame: Mapping[str, np.ndarray]) -> np.ndarray:
        """The feature matrix of rows in the scale path's columns (day, cell, promo; a cell is
        store_nbr * n_items + the item's position)."""
        cell = np.asarray(frame["cell"], dtype=np.int64)
        n_items = self._n_items()
        return self.encode(frame["day"], cell // n_items, cell % n_items, frame["promo"])

    def request_columns(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Day numbers, store numbers, item positions (-1 if unknown) and promotion flags of the
        requests in X; onpromotion counts as feature_row counts it (missing or falsy: no)."""
        if hasattr(X, "columns"):  # a pandas DataFrame
            import pandas as pd

            day = pd.to_datetime(X["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
            item = X["item_nbr"].to_numpy().astype(np.int64)
            store = X["store_nbr"].to_numpy().astype(np.int64)
            column = X["onpromotion"] if "onpromotion" in X.columns else None
            if column is None:
                promo = np.zeros(len(X), dtype=bool)
            elif column.dtype == bool:
                promo = column.to_numpy()
            else:
                promo = np.fromiter((bool(v) for v in column), dtype=bool, count=len(X))
        else:
            rows = list(requests(X))
            day = np.fromiter((as_date(r["date"]).toordinal() - _EPOCH for r in rows), dtype=np.int64, count=len(rows))
            item = np.fromiter((int(r["item_nbr"]) for r in rows), dtype=np.int64, count=len(rows))
            store = np.fromiter((int(r["store_nbr"]) for r in rows), dtype=np.int64, count=len(rows))
            promo = np.fromiter((bool(r.get("onpromotion")) for r in rows), dtype=bool, count=len(rows))
        return day, store, self.positions(item), promo

    def positions(self, item: np.ndarray) -> np.ndarray:
        """Each item number's index in item_nbr, or -1."""
        numbers = np.asarray(self.item_nbr if self.item_nbr is not None else [], dtype=np.int64)
        if len(numbers) == 0:
            return np.full(len(item), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(numbers, item), len(numbers) - 1)
        return np.where(numbers[at] == item, at, -1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(FEATURES, dtype=object)

    def _n_items(self) -> int:
        return 0 if self.item_nbr is None else len(self.item_nbr)

