"""How the default model behaves: it beats the naive baseline by the gate's margin on every data
set of the model matrix (cd4ml/problems/favorita/matrix.py), closes at least half the gap to the
best achievable forecast when it trains on a full year, never forecasts negative sales, and the
same seed gives the same model while another seed gives another (for a model that draws)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cd4ml.config import load_settings
from cd4ml.pipeline.run import fit_and_validate
from cd4ml.problems.favorita.generate import DEFAULT_PROCESS
from cd4ml.problems.favorita.matrix import MATRIX, MatrixSet
from tests.conftest import HANDED_OUT_PARAMS

# The model as handed out (tests/params.toml: params.toml but for the [model] values the exercises change):
# these tests guard the code's default model; the acceptance gate judges what params.toml builds, so an
# attendee's change to params.toml (exercise 3: more trees) is the gate's to accept, not the Test stage's.
SETTINGS = load_settings(HANDED_OUT_PARAMS, environ={})


def train(source, **overrides):
    return fit_and_validate(load_settings(HANDED_OUT_PARAMS, environ={}, overrides={"data.source": str(source), **overrides}))


@pytest.fixture(scope="session")
def matrix_root(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix")


def train_on(entry: MatrixSet, root):
    data = replace(SETTINGS.data, source=entry.source(root), items=None if entry.all_items else SETTINGS.data.items)
    return fit_and_validate(replace(SETTINGS, data=data))[0].metrics


@pytest.mark.parametrize("entry", MATRIX, ids=lambda entry: entry.name)
def test_the_default_model_beats_the_baseline_by_the_gates_margin_on_every_set(entry, matrix_root):
    metrics = train_on(entry, matrix_root)
    assert metrics["r2"] >= metrics["baseline_r2"] + SETTINGS.acceptance.min_gain, metrics


@pytest.mark.parametrize("entry", [e for e in MATRIX if e.full_training_year and e.process == DEFAULT_PROCESS],
                         ids=lambda entry: entry.name)
def test_with_a_full_training_year_it_closes_half_the_gap_to_the_best(entry, matrix_root):
    assert train_on(entry, matrix_root)["r2_gap_closed"] >= 0.5


@pytest.mark.parametrize("layout", ["kaggle", "workshop"])
@pytest.mark.parametrize("size", ["tiny_data", "workshop_data"])
def test_the_default_model_beats_the_baseline_on_the_generated_sizes(request, size, layout):
    folder = request.getfixturevalue(size)
    trained, _ = train(folder if layout == "kaggle" else folder / "store47-2016.csv")
    assert trained.metrics["r2"] > trained.metrics["baseline_r2"]
    assert trained.metrics["nwrmsle"] < trained.metrics["baseline_nwrmsle"]


def test_forecasts_are_never_negative(tiny_data):
    trained, table = train(tiny_data, **{"model.name": "ridge"})  # a linear model would go below zero
    requests = table.inputs.sample(2000, random_state=0)
    assert (trained.model.predict(requests) >= 0).all()


def test_the_same_seed_gives_the_same_model_and_another_seed_another(tiny_data):
    forest = {"model.name": "random_forest"}  # bootstraps rows: a model that draws from its seed
    first, table = train(tiny_data, **forest)
    second, _ = train(tiny_data, **forest)
    other, _ = train(tiny_data, **forest, seed=7)
    assert np.array_equal(first.model.predict(table.inputs), second.model.predict(table.inputs))
    assert not np.array_equal(first.model.predict(table.inputs), other.model.predict(table.inputs))
