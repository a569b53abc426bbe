"""The experiment rule: a candidate is built from the committed defaults on main; anything else is an experiment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cd4ml.config import ROOT, load_settings
from cd4ml.run_kind import CANDIDATE, EXPERIMENT, classify, decide, recipe

DEFAULTS = {"problem": "favorita", "model": {"name": "gradient_boosting", "gradient_boosting": {"max_iter": 50}},
            "data": {"source": "workshop/store47-2016.csv", "items": [1, 2]}, "serving": {"port": 5005}}


def with_value(dotted: str, value) -> dict:
    import copy

    params = copy.deepcopy(DEFAULTS)
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value
    return params


def test_the_defaults_on_main_are_a_candidate():
    kind = decide(DEFAULTS, DEFAULTS, "params.toml", (), "main", {})
    assert kind.kind == CANDIDATE and not kind.experiment and "params.toml" in kind.reason


@pytest.mark.parametrize("flags", [("--set model.name=lasso",), ("--model gradient_boosting",)])
def test_a_model_flag_makes_an_experiment_even_when_it_repeats_the_default(flags):
    kind = decide(DEFAULTS, DEFAULTS, "params.toml", flags, "main", {})
    assert kind.kind == EXPERIMENT and flags[0] in kind.reason


def test_a_value_other_than_the_committed_default_makes_an_experiment_and_says_where_it_came_from():
    params = with_value("model.gradient_boosting.max_iter", 5)
    kind = decide(params, DEFAULTS, "params.toml", (), "main",
                  {"model.gradient_boosting.max_iter": "CD4ML_MODEL_GRADIENT_BOOSTING_MAX_ITER"})
    assert kind.experiment
    assert kind.reason == ("model.gradient_boosting.max_iter = 5 from CD4ML_MODEL_GRADIENT_BOOSTING_MAX_ITER; "
                           "params.toml at git HEAD says 50")


@pytest.mark.parametrize("dotted, value", [("data.source", "elsewhere.csv"), ("serving.port", 6000)])
def test_where_data_is_and_how_it_is_served_do_not_change_the_recipe(dotted, value):
    assert decide(with_value(dotted, value), DEFAULTS, "params.toml", (), "main", {}).kind == CANDIDATE
    assert dotted not in recipe(DEFAULTS)


@pytest.mark.parametrize("branch, said", [("issue-15c", "branch issue-15c, not main"), (None, "CD4ML_BRANCH=main")])
def test_another_branch_or_a_detached_head_makes_an_experiment(branch, said):
    kind = decide(DEFAULTS, DEFAULTS, "params.toml", (), branch, {})
    assert kind.experiment and said in kind.reason


def test_a_default_file_not_committed_makes_an_experiment():
    kind = decide(DEFAULTS, None, "params-houses.toml", (), "main", {})
    assert kind.experiment and kind.reason == "params-houses.toml is not committed at git HEAD"


def test_classify_compares_with_the_file_at_git_head(tmp_path):
    """The handed-out copy of params.toml (tests/params.toml) on main is a candidate; --set is not."""
    committed = subprocess.run(["git", "show", "HEAD:params.toml"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout
    copy = tmp_path / "params.toml"
    copy.write_text(committed)
    environ = {"CD4ML_BRANCH": "main", "CD4ML_DATA_DIR": str(tmp_path)}
    assert classify(load_settings(copy, environ=environ)).kind == CANDIDATE
    kind = classify(load_settings(copy, environ=environ, sets=["model.name=lasso"]))
    assert kind.experiment and kind.reason == "--set model.name=lasso"
    copy.write_text(committed.replace("max_iter = 50", "max_iter = 7"))
    kind = classify(load_settings(copy, environ=environ))
    assert kind.experiment and "model.gradient_boosting.max_iter = 7 from the params file" in kind.reason
    kind = classify(load_settings(Path(copy), environ={**environ, "CD4ML_BRANCH": "", "GIT_BRANCH": "origin/feature"}))
    assert kind.experiment


def test_cd4ml_params_names_the_defaults_file_compared_with_its_own_repositorys_head(tmp_path):
    """The environment's choice of defaults (a fork's params.toml, the tests' copy): a committed
    change to it is a candidate, an uncommitted one an experiment."""
    repo = tmp_path / "repo"
    repo.mkdir()
    params = repo / "params.toml"
    params.write_text((ROOT / "tests" / "params.toml").read_text().replace("max_iter = 50", "max_iter = 100"))

    def git(*args):
        subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@example.org", *args], cwd=repo, check=True,
                       capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "params.toml")
    git("commit", "-qm", "more trees")
    environ = {"CD4ML_PARAMS": str(params), "CD4ML_DATA_DIR": str(tmp_path / "data")}
    kind = classify(load_settings(environ=environ))
    assert kind.kind == CANDIDATE and kind.reason == f"the defaults of {params} on main"
    params.write_text(params.read_text().replace("max_iter = 100", "max_iter = 7"))
    kind = classify(load_settings(environ=environ))
    assert kind.experiment and "max_iter = 7 from the params file" in kind.reason
