"""How the default model behaves: it beats the naive baseline on every data set, closes most of the
gap to the best achievable forecast when it trains on a full year, never forecasts negative sales,
and the same seed gives the same model."""

from __future__ import annotations

import numpy as np
import pytest

from cd4ml.config import load_settings
from cd4ml.pipeline.run import train_and_validate
from cd4ml.pipeline.split import split_by_date
from cd4ml.problems import get_problem


def train(source, **overrides):
    settings = load_settings(environ={}, overrides={"data.source": str(source), **overrides})
    problem = get_problem(settings.problem)
    opened = problem.open(settings.data)
    table = problem.collect(problem.rows(opened, settings.data))
    valid, _ = split_by_date(table.dates, settings.validation_days)
    return train_and_validate(
        problem, table, problem.features(table, opened), valid, settings.model.name,
        dict(settings.model.params), settings.seed, problem.expected(opened, table.ids[valid]),
    ), table


@pytest.mark.parametrize("layout", ["kaggle", "workshop"])
@pytest.mark.parametrize("size", ["tiny_data", "workshop_data"])
def test_the_default_model_beats_the_baseline_on_every_data_set(request, size, layout):
    folder = request.getfixturevalue(size)
    trained, _ = train(folder if layout == "kaggle" else folder / "store47-2016.csv")
    assert trained.metrics["r2"] > trained.metrics["baseline_r2"]
    assert trained.metrics["nwrmsle"] < trained.metrics["baseline_nwrmsle"]


def test_with_a_full_training_year_it_closes_three_quarters_of_the_gap_to_the_best(tiny_data):
    trained, table = train(tiny_data)  # two years: the training window holds a full year
    assert (table.dates.max() - table.dates.min()).days > 365 + 57
    assert trained.metrics["r2_gap_closed"] >= 0.75


def test_forecasts_are_never_negative(tiny_data):
    trained, table = train(tiny_data, **{"model.name": "ridge"})  # a linear model would go below zero
    requests = table.inputs.sample(2000, random_state=0)
    assert (trained.model.predict(requests) >= 0).all()


def test_the_same_seed_gives_the_same_model(tiny_data):
    first, table = train(tiny_data)
    second, _ = train(tiny_data)
    assert np.array_equal(first.model.predict(table.inputs), second.model.predict(table.inputs))
