"""The benchmark's edits of params.toml: parsed and checked, never a blind text replace."""

from __future__ import annotations

import tomllib

import pytest

from benchmarks.workshop import with_trees
from cd4ml.errors import ConfigError
from tests.conftest import ROOT

COMMITTED = (ROOT / "params.toml").read_text()


def trees(text: str) -> int:
    return tomllib.loads(text)["model"]["gradient_boosting"]["max_iter"]


@pytest.mark.parametrize("before", [50, 100, 7])
@pytest.mark.parametrize("wanted", [50, 100])
def test_the_number_of_trees_is_set_whatever_it_was(before, wanted):
    edited = COMMITTED.replace(f"max_iter = {trees(COMMITTED)}", f"max_iter = {before}", 1)
    assert trees(edited) == before
    assert trees(with_trees(edited, wanted)) == wanted


def test_only_the_gradient_boosting_table_changes_and_its_comments_stay():
    text = '[model]\nname = "gradient_boosting"\n[model.gradient_boosting]\nmax_iter=50   # trees\n[other]\nmax_iter = 3\n'
    edited = with_trees(text, 100)
    assert edited == text.replace("max_iter=50   # trees", "max_iter=100   # trees")


def test_a_table_without_max_iter_gets_one():
    text = '[model]\nname = "gradient_boosting"\n\n[model.gradient_boosting]\nlearning_rate = 0.1\n\n[acceptance]\nmin = 0.2\n'
    edited = with_trees(text, 100)
    assert trees(edited) == 100 and tomllib.loads(edited)["acceptance"]["min"] == 0.2


def test_another_model_fails_loudly_instead_of_deploying_two_identical_models():
    text = COMMITTED.replace('name = "gradient_boosting"', 'name = "ridge"', 1)
    with pytest.raises(ConfigError, match=r"\[model\] name is 'ridge'"):
        with_trees(text, 100)
