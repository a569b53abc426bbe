"""tests/params.toml is the params.toml the workshop hands out, which every test runs from.

The exercises change params.toml's hyperparameters (and the tests must pass whatever they are), so the
two may differ in [model] values; anything else differing means the defaults changed: copy
params.toml to tests/params.toml.
"""

from __future__ import annotations

import tomllib

from cd4ml.config import load_settings
from tests.conftest import HANDED_OUT_PARAMS, ROOT, params_text


def keys(table: dict, prefix: str = "") -> set[str]:
    found = set()
    for key, value in table.items():
        found.add(prefix + key)
        if isinstance(value, dict):
            found |= keys(value, f"{prefix}{key}.")
    return found


def test_the_handed_out_params_have_the_keys_of_params_toml():
    handed_out, working = (tomllib.loads(p.read_text()) for p in (HANDED_OUT_PARAMS, ROOT / "params.toml"))
    assert keys(handed_out) == keys(working)
    assert {k: v for k, v in handed_out.items() if k != "model"} == {k: v for k, v in working.items() if k != "model"}


def test_tests_read_the_handed_out_params_not_the_working_trees():
    assert load_settings().params_file == HANDED_OUT_PARAMS


def test_params_text_changes_one_value_in_its_table():
    changed = tomllib.loads(params_text({"model.gradient_boosting.max_iter": 7, "model.name": "ridge", "seed": 3}))
    assert changed["model"]["gradient_boosting"]["max_iter"] == 7
    assert changed["model"]["name"] == "ridge" and changed["seed"] == 3
    assert changed["model"]["random_forest"] == tomllib.loads(HANDED_OUT_PARAMS.read_text())["model"]["random_forest"]
