"""Features of a house sale: named feature sets of its columns, and the encoded price levels. Pure.

The model's Pipeline starts with HouseFeatures (the chosen set's columns as feature dicts; text
columns such as style and state are one-hot encoded by the Pipeline's DictVectorizer) and then
PriceLevels, fitted on the training rows only: it puts the smoothed mean price of the sale's zip
code first in each row as `level` (models.RelativeToLevel fits the ratio to it) and adds the
state's as `state_mean`. A zip code the training rows never saw gets its state's mean, so
nothing of the validation rows leaks into their own features.

A request need not hold its state: HouseFeatures learns each training zip code's state, so the
server answers from the zip code alone; a zip code it never saw gets UNKNOWN_STATE, whose mean
is the overall one.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from sklearn.base import BaseEstimator, TransformerMixin

from cd4ml.problems.houses.means import PriceMeans

# What one price request holds (the model's input), in the order of the sales file.
REQUEST_COLUMNS = (
    "zipcode", "state", "lot_size_sf", "beds", "baths", "year_built", "kitchen_refurbished", "square_feet", "pool",
    "parking", "style", "multi_family",
)
NUMERIC = ("square_feet", "lot_size_sf", "beds", "baths", "year_built", "parking", "kitchen_refurbished", "pool",
           "multi_family")
TEXT = ("style", "state")  # one-hot encoded
# [features] set in params-houses.toml picks one; every set also gets `level` and `state_mean`.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "default": (*NUMERIC, *TEXT),
    "simple": ("square_feet", "beds", "baths", "state"),
}
UNKNOWN_STATE = "unknown"  # of a zip code training never saw: no one-hot column, the overall mean price
_ZIP, _STATE = "_zipcode", "_state"  # carried from HouseFeatures to PriceLevels, never features themselves


def requests(X: Any) -> Iterator[Mapping[str, Any]]:
    """The requests in X, a DataFrame or an iterable of dicts, one dict at a time."""
    if hasattr(X, "to_dict"):
        yield from X.to_dict("records")
    else:
        yield from X


class HouseFeatures(TransformerMixin, BaseEstimator):
    """Requests (dicts or a DataFrame of REQUEST_COLUMNS; the state may be left out) to feature
    dicts of one feature set. Learned: columns_, zip_states_ {zipcode: state} of the training rows."""

    def __init__(self, feature_set: str = "default") -> None:
        self.feature_set = feature_set

    def fit(self, X: Any = None, y: Any = None) -> "HouseFeatures":
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {', '.join(FEATURE_SETS)}; got {self.feature_set!r}.")
        self.columns_ = FEATURE_SETS[self.feature_set]
        self.zip_states_ = zip_states(X)
        return self

    def transform(self, X: Any) -> list[dict[str, Any]]:
        return [self.feature_row(request) for request in requests(X)]

    def feature_row(self, request: Mapping[str, Any]) -> dict[str, Any]:
        zipcode = str(request["zipcode"])
        state = request.get("state")
        state = self.zip_states_.get(zipcode, UNKNOWN_STATE) if state is None else str(state)
        row: dict[str, Any] = {_ZIP: zipcode, _STATE: state}
        for name in self.columns_:
            value = state if name == "state" else request[name]
            row[name] = str(value) if name in TEXT else float(value)
        return row

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "columns_")


def zip_states(X: Any) -> dict[str, str]:
    """{zipcode: state} of the requests in X (the last one's, should a zip code have two); {} without states."""
    if X is None:
        return {}
    if hasattr(X, "drop_duplicates"):
        if "state" not in X:
            return {}
        pairs = X[["zipcode", "state"]].drop_duplicates()
        return dict(zip(pairs["zipcode"].astype(str), pairs["state"].astype(str)))
    return {str(r["zipcode"]): str(r["state"]) for r in requests(X) if r.get("state") is not None}


class PriceLevels(TransformerMixin, BaseEstimator):
    """HouseFeatures' dicts to dicts that start with `level` (the zip code's smoothed mean price)
    and `state_mean`, learned from the training rows; smoothing as in PriceMeans."""

    def __init__(self, smoothing: float = 20.0) -> None:
        self.smoothing = smoothing

    def fit(self, X: Iterable[Mapping[str, Any]], y: Any) -> "PriceLevels":
        rows = list(X)
        self.means_ = PriceMeans(self.smoothing).fit((r[_ZIP] for r in rows), (r[_STATE] for r in rows), y)
        return self

    def transform(self, X: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        means = self.means_
        out = []
        for row in X:
            level = {"level": means.zip_mean(row[_ZIP], row[_STATE]), "state_mean": means.state_mean(row[_STATE])}
            level.update((k, v) for k, v in row.items() if k not in (_ZIP, _STATE))
            out.append(level)
        return out

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "means_")
