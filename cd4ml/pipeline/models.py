"""The model factory: a model name and its hyperparameters (from params.toml) to an estimator."""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Lasso, Ridge
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils._param_validation import InvalidParameterError

from cd4ml.errors import ConfigError

# Below this many training rows, one thread trains faster (both paths): OpenMP's start-up and
# barriers cost more than they save, and far more when another process is busy on the other core.
SMALL_DATA_ROWS = 50_000

_TREE = "sklearn.tree._tree.Tree"
_HIST_TREE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


@dataclass(frozen=True)
class ModelSpec:
    estimator: type
    defaults: dict[str, Any]  # ours, overridden by params.toml
    dense: bool  # needs dense input
    trusted_types: tuple[str, ...]  # what skops must be told to load the fitted model
    relative: bool = False  # the row path fits the ratio to the baseline's level (RelativeToLevel)
    row_defaults: dict[str, Any] = field(default_factory=dict)  # the row path's, over defaults, under params.toml


MODELS: dict[str, ModelSpec] = {
    # The row path boosts from the baseline with shallow trees (pairs of features), leaves of 20
    # rows or more and small steps, because the workshop trains on about 900 noisy rows; the scale
    # path, on millions of rows, keeps sklearn's trees (docs/model.md).
    "gradient_boosting": ModelSpec(
        HistGradientBoostingRegressor, {"loss": "poisson", "max_iter": 50, "learning_rate": 0.1, "early_stopping": False},
        True, (_HIST_TREE,),
        relative=True, row_defaults={"learning_rate": 0.05, "max_depth": 2, "min_samples_leaf": 20},
    ),
    "random_forest": ModelSpec(RandomForestRegressor, {"n_estimators": 50, "min_samples_leaf": 2}, False, (_TREE,)),
    "decision_tree": ModelSpec(DecisionTreeRegressor, {"min_samples_leaf": 5}, False, (_TREE,)),
    "ridge": ModelSpec(Ridge, {"alpha": 1.0}, False, ()),
    "lasso": ModelSpec(Lasso, {"alpha": 0.01, "max_iter": 5000}, True, ()),
}


def make_model(
    name: str, params: Mapping[str, Any], random_state: int, row_path: bool = False, *,
    name_from: str = "params.toml [model] name", params_from: Mapping[str, str] | None = None,
) -> tuple[Any, bool]:
    """The estimator for `name` with our defaults (and the row path's, for row_path) overridden by
    `params`, and whether it needs dense input. name_from says where the name came from,
    params_from where each hyperparameter did ("": the table)."""
    if name not in MODELS:
        raise ConfigError(f"{name_from} must be one of {', '.join(MODELS)}; got {name!r}.")
    table = (params_from or {}).get("", f"params.toml [model.{name}]")
    spec = MODELS[name]
    cls, defaults, dense = spec.estimator, {**spec.defaults, **(spec.row_defaults if row_path else {})}, spec.dense
    allowed = cls().get_params()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{(params_from or {}).get(unknown[0], table)} has unknown hyperparameter(s) {', '.join(map(repr, unknown))}; "
            f"{cls.__name__} takes {', '.join(sorted(allowed))}."
        )
    chosen = {**defaults, **params}
    if "random_state" in allowed and "random_state" not in params:
        chosen["random_state"] = random_state
    estimator = cls(**chosen)
    try:
        estimator._validate_params()
    except InvalidParameterError as err:
        bad = re.match(r"The '(\w+)' parameter", str(err))
        raise ConfigError(f"{(params_from or {}).get(bad[1] if bad else '', table)}: {err}") from None
    return estimator, dense


def make_forecaster(name: str, params: Mapping[str, Any], random_state: int) -> tuple[Any, bool]:
    """make_model's estimator as the row path fits it: never negative, and for a relative model
    fitted to the ratio to the level in column 0; and whether it needs dense input."""
    estimator, dense = make_model(name, params, random_state, row_path=True)
    if MODELS[name].relative:
        estimator = RelativeToLevel(estimator, level=0)
    return NonNegative(estimator), dense


def trusted_types(name: str) -> list[str]:
    """The types, beyond skops' defaults, in a fitted model of this name wrapped in NonNegative
    (and in RelativeToLevel, for a relative model)."""
    relative = [f"{RelativeToLevel.__module__}.{RelativeToLevel.__name__}"] if MODELS[name].relative else []
    return [f"{NonNegative.__module__}.{NonNegative.__name__}", *MODELS[name].trusted_types, *relative]


class NonNegative(RegressorMixin, BaseEstimator):
    """A regressor whose forecasts are never negative: nobody sells fewer than zero units."""

    def __init__(self, regressor: Any = None) -> None:
        self.regressor = regressor

    def fit(self, X: Any, y: Any) -> "NonNegative":
        self.regressor_ = clone(self.regressor).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.clip(self.regressor_.predict(X), 0.0, None)


class RelativeToLevel(RegressorMixin, BaseEstimator):
    """A regressor of each row's target relative to a level the features carry (column `level`,
    e.g. the store-item's mean sales): fitted on target / level with weight level, it predicts
    level x its forecast. For the Poisson loss this is the same deviance as fitting the target
    with the level as an offset (d(y, m r) = m d(y/m, r)), so an exact level is not reduced to a
    feature's histogram bins. Levels below `floor` count as `floor`."""

    def __init__(self, regressor: Any = None, level: int = 0, floor: float = 1e-3) -> None:
        self.regressor = regressor
        self.level = level
        self.floor = floor

    def fit(self, X: Any, y: Any) -> "RelativeToLevel":
        level = self._level(X)
        self.regressor_ = clone(self.regressor).fit(X, np.asarray(y, dtype=float) / level, sample_weight=level)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self._level(X) * self.regressor_.predict(X)

    def _level(self, X: Any) -> np.ndarray:
        level = np.asarray(X)[:, self.level]
        return np.maximum(np.nan_to_num(level, nan=self.floor), self.floor)


def relative_trusted_types(name: str) -> list[str]:
    """trusted_types of a model of this name wrapped in RelativeToLevel (the scale path's)."""
    return sorted({*trusted_types(name), f"{RelativeToLevel.__module__}.{RelativeToLevel.__name__}"})


def all_trusted_types() -> list[str]:
    """Every type any of our models may hold beyond skops' defaults (what a server may load)."""
    return sorted({t for name in MODELS for t in relative_trusted_types(name)})
