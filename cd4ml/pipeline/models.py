"""The model factory: a model name and its hyperparameters (from params.toml) to an estimator."""

from __future__ import annotations

from typing import Any, Mapping

from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Lasso, Ridge
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils._param_validation import InvalidParameterError

from cd4ml.errors import ConfigError

# name -> (estimator class, defaults of ours, needs dense input)
MODELS: dict[str, tuple[type, dict[str, Any], bool]] = {
    "random_forest": (RandomForestRegressor, {"n_estimators": 50, "min_samples_leaf": 2, "n_jobs": -1}, False),
    "gradient_boosting": (HistGradientBoostingRegressor, {"max_iter": 200, "learning_rate": 0.1}, True),
    "decision_tree": (DecisionTreeRegressor, {"min_samples_leaf": 5}, False),
    "ridge": (Ridge, {"alpha": 1.0}, False),
    "lasso": (Lasso, {"alpha": 0.01, "max_iter": 5000}, False),
}


def make_model(name: str, params: Mapping[str, Any], random_state: int) -> tuple[Any, bool]:
    """The estimator for `name` with our defaults overridden by `params`, and whether it needs dense input."""
    if name not in MODELS:
        raise ConfigError(
            f"params.toml [model] name must be one of {', '.join(MODELS)}; got {name!r}."
        )
    cls, defaults, dense = MODELS[name]
    allowed = cls().get_params()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"params.toml [model.{name}] has unknown hyperparameter(s) {', '.join(map(repr, unknown))}; "
            f"{cls.__name__} takes {', '.join(sorted(allowed))}."
        )
    chosen = {**defaults, **params}
    if "random_state" in allowed and "random_state" not in params:
        chosen["random_state"] = random_state
    estimator = cls(**chosen)
    try:
        estimator._validate_params()
    except InvalidParameterError as err:
        raise ConfigError(f"params.toml [model.{name}]: {err}") from None
    return estimator, dense
