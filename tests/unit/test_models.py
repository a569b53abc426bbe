"""The model factory: one-line model changes, with clear errors for bad names and values."""

from __future__ import annotations

import pytest

from cd4ml.errors import ConfigError
from cd4ml.pipeline.models import MODELS, make_model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_builds_with_its_defaults(name):
    estimator, dense = make_model(name, {}, random_state=3)
    assert hasattr(estimator, "fit") and isinstance(dense, bool)
    if "random_state" in estimator.get_params():
        assert estimator.get_params()["random_state"] == 3


def test_the_params_file_sets_hyperparameters():
    estimator, _ = make_model("random_forest", {"n_estimators": 7}, random_state=0)
    assert estimator.n_estimators == 7


def test_an_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"\[model\] name must be one of gradient_boosting, random_forest.*got 'forest'"):
        make_model("forest", {}, random_state=0)


def test_an_unknown_hyperparameter_is_named_with_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"\[model\.ridge\].*'trees'.*alpha"):
        make_model("ridge", {"trees": 3}, random_state=0)


def test_a_bad_hyperparameter_value_is_explained():
    with pytest.raises(ConfigError, match=r"\[model\.random_forest\].*n_estimators.*'ten'"):
        make_model("random_forest", {"n_estimators": "ten"}, random_state=0)


def test_gradient_boosting_needs_dense_input():
    assert make_model("gradient_boosting", {}, random_state=0)[1] is True
    assert make_model("random_forest", {}, random_state=0)[1] is False


def test_non_negative_clips_forecasts_at_zero():
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from cd4ml.pipeline.models import NonNegative

    X, y = np.array([[0.0], [1.0], [2.0]]), np.array([-2.0, 0.0, 2.0])
    model = NonNegative(LinearRegression()).fit(X, y)
    assert model.predict(np.array([[0.0], [2.0]])) == pytest.approx([0.0, 2.0])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_fitted_model_saves_with_skops_and_only_the_declared_types(name):
    import numpy as np
    import skops.io as sio
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.pipeline import Pipeline

    from cd4ml.pipeline.models import make_forecaster, trusted_types

    forecaster, dense = make_forecaster(name, {}, random_state=0)
    X, y = [{"a": float(i % 5 + 1), "b": "xy"[i % 2]} for i in range(40)], np.arange(40.0)
    model = Pipeline([("e", DictVectorizer(sparse=not dense)), ("m", forecaster)]).fit(X, y)
    assert sorted(sio.get_untrusted_types(data=sio.dumps(model))) == sorted(trusted_types(name))


def test_relative_to_level_forecasts_level_times_the_fitted_ratio():
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    from cd4ml.pipeline.models import RelativeToLevel

    rng = np.random.default_rng(0)
    level = rng.choice([0.5, 5.0, 500.0], size=4000)  # exact levels a histogram could not tell apart
    promo = rng.integers(0, 2, size=4000)
    X = np.column_stack([level, promo])
    y = rng.poisson(level * np.where(promo, 1.6, 1.0))
    model = RelativeToLevel(HistGradientBoostingRegressor(loss="poisson", random_state=0), level=0).fit(X, y)
    ratio = model.regressor_.predict(np.array([[5.0, 0], [5.0, 1]]))
    assert ratio[1] / ratio[0] == pytest.approx(1.6, rel=0.1)
    assert model.predict(np.array([[500.0, 1]]))[0] == pytest.approx(800, rel=0.1)
    assert model.predict(np.array([[np.nan, 1], [0.0, 1]]))[0] >= 0  # missing or zero level: the floor


@pytest.mark.parametrize("name", ["gradient_boosting", "random_forest", "decision_tree"])
def test_the_scale_paths_models_save_with_skops_and_only_the_declared_types(name):
    import numpy as np
    import skops.io as sio

    from cd4ml.pipeline.models import NonNegative, RelativeToLevel, all_trusted_types, relative_trusted_types

    estimator, _ = make_model(name, {}, random_state=0)
    X, y = np.column_stack([np.arange(40.0) % 7 + 1, np.arange(40.0) % 2]), np.arange(40.0)
    model = NonNegative(RelativeToLevel(estimator)).fit(X, y)
    untrusted = sorted(sio.get_untrusted_types(data=sio.dumps(model)))
    assert untrusted == sorted(relative_trusted_types(name))
    assert set(untrusted) <= set(all_trusted_types())  # what the model server trusts


def test_the_row_path_regularises_gradient_boosting_for_small_data_and_the_scale_path_does_not():
    from cd4ml.pipeline.models import make_forecaster

    row = make_forecaster("gradient_boosting", {}, random_state=0)[0].regressor.regressor
    scale = make_model("gradient_boosting", {}, random_state=0)[0]
    assert (row.max_depth, row.min_samples_leaf, row.learning_rate) == (2, 20, 0.05)
    assert (scale.max_depth, scale.min_samples_leaf, scale.learning_rate) == (None, 20, 0.1)
    both = {"learning_rate": 0.2, "max_depth": 4}
    assert make_forecaster("gradient_boosting", both, 0)[0].regressor.regressor.get_params()["max_depth"] == 4
    assert make_model("gradient_boosting", both, 0)[0].learning_rate == 0.2
