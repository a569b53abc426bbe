"""The experiment rule: a candidate is built from the committed defaults on main; anything else is an experiment."""

from __future__ import annotations

import re
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
    changed, count = re.subn(r"(?m)^max_iter = \d+", "max_iter = 7", committed, count=1)  # whatever main says
    assert count == 1
    copy.write_text(changed)
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


def git_repo(repo: Path, text: str) -> callable:
    """A git repository of the test's own with params.toml (this text) committed on main; returns its git."""
    repo.mkdir(parents=True)
    (repo / "params.toml").write_text(text)

    def git(*args: str, cwd: Path = repo) -> str:
        return subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@example.org", *args], cwd=cwd,
                              check=True, capture_output=True, text=True).stdout

    git("init", "-q", "-b", "main")
    git("add", "params.toml")
    git("commit", "-qm", "the defaults")
    return git


def commit_a_file(git, repo: Path, message: str) -> None:
    (repo / "notes.txt").write_text(f"{message}\n")
    git("add", "notes.txt")
    git("commit", "-qm", message)


def kind_in(repo: Path, tmp_path: Path):
    """The run kind of the defaults in this checkout, the branch left to git (no CD4ML_BRANCH and the like)."""
    return classify(load_settings(environ={"CD4ML_PARAMS": str(repo / "params.toml"), "CD4ML_DATA_DIR": str(tmp_path / "data")}))


HANDED_OUT = (ROOT / "tests" / "params.toml").read_text()


def test_a_detached_head_on_mains_history_is_main(tmp_path):
    """CI and Jenkins often check out a commit, not a branch: a commit that main contains is main's."""
    repo = tmp_path / "repo"
    git = git_repo(repo, HANDED_OUT)
    commit_a_file(git, repo, "a later commit")
    git("checkout", "-q", "--detach", "HEAD~1")
    kind = kind_in(repo, tmp_path)
    assert kind.kind == CANDIDATE and "a detached HEAD that main contains" in kind.reason, kind


def test_a_detached_head_off_main_is_an_experiment(tmp_path):
    repo = tmp_path / "repo"
    git = git_repo(repo, HANDED_OUT)
    git("checkout", "-q", "--detach")
    commit_a_file(git, repo, "a commit main does not have")
    kind = kind_in(repo, tmp_path)
    assert kind.experiment and "a detached HEAD that no main ref contains" in kind.reason, kind


def test_a_clone_checked_out_at_a_commit_of_origin_main_is_main(tmp_path):
    """A CI clone: no local main, only the remote-tracking origin/main, HEAD detached at its commit."""
    upstream = tmp_path / "upstream"
    git = git_repo(upstream, HANDED_OUT)
    commit = git("rev-parse", "HEAD").strip()
    clone = tmp_path / "clone"
    git("clone", "-q", str(upstream), str(clone), cwd=tmp_path)
    git("checkout", "-q", "--detach", commit, cwd=clone)
    git("branch", "-q", "-D", "main", cwd=clone)
    assert "main" not in git("branch", "--list", cwd=clone).split()
    kind = kind_in(clone, tmp_path)
    assert kind.kind == CANDIDATE and "origin/main" in kind.reason, kind


def test_a_detached_head_with_no_main_ref_at_all_is_an_experiment(tmp_path):
    """A pull request's merge commit fetched alone: nothing says it is main's."""
    repo = tmp_path / "repo"
    git = git_repo(repo, HANDED_OUT)
    git("checkout", "-q", "--detach")
    git("branch", "-q", "-D", "main")
    kind = kind_in(repo, tmp_path)
    assert kind.experiment and "CD4ML_BRANCH=main" in kind.reason, kind


def test_a_branch_other_than_main_is_an_experiment_even_at_mains_commit(tmp_path):
    repo = tmp_path / "repo"
    git = git_repo(repo, HANDED_OUT)
    git("checkout", "-q", "-b", "try-lasso")
    kind = kind_in(repo, tmp_path)
    assert kind.experiment and kind.reason == "branch try-lasso, not main", kind


def test_a_checkout_without_git_is_an_experiment_that_says_so(tmp_path):
    """A tarball of the repository: no commit, no main, no lineage; the run is tracked, never deployed."""
    folder = tmp_path / "unpacked"
    folder.mkdir()
    (folder / "params.toml").write_text(HANDED_OUT)
    kind = kind_in(folder, tmp_path)
    assert kind.experiment and "not in a git repository" in kind.reason and "clone" in kind.reason, kind
