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

    from cd4ml.pipeline.models import NonNegative, trusted_types

    estimator, dense = make_model(name, {}, random_state=0)
    X, y = [{"a": float(i % 5), "b": "xy"[i % 2]} for i in range(40)], np.arange(40.0)
    model = Pipeline([("e", DictVectorizer(sparse=not dense)), ("m", NonNegative(estimator))]).fit(X, y)
    assert sorted(sio.get_untrusted_types(data=sio.dumps(model))) == sorted(trusted_types(name))
