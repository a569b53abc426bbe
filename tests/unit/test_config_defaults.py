"""One source of defaults: every value of the handed-out params.toml is also the default in code
(cd4ml/config.py DEFAULTS, cd4ml/pipeline/models.py MODELS), so deleting any key from params.toml
runs exactly what the file said (e.g. no max_iter line: still the default's 50 trees)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cd4ml.config import Settings, key_lines, load_settings
from cd4ml.pipeline.models import make_model
from tests.conftest import HANDED_OUT_PARAMS

TEXT = HANDED_OUT_PARAMS.read_text()


def leaf_keys(table: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in table.items():
        found += leaf_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return found


KEYS = leaf_keys(tomllib.loads(TEXT))


def without(dotted: str) -> str:
    """The handed-out params.toml without the line of one key."""
    lines = TEXT.splitlines(keepends=True)
    del lines[key_lines(TEXT)[dotted] - 1]
    text = "".join(lines)
    assert dotted not in leaf_keys(tomllib.loads(text))
    return text


def load(tmp_path: Path, text: str, model: str | None) -> Settings:
    path = tmp_path / "params.toml"
    path.write_text(text)
    return load_settings(path, environ={"CD4ML_DATA_DIR": str(tmp_path / "data")},
                         overrides={"model.name": model})


def effective(settings: Settings) -> tuple[Any, ...]:
    """What a run uses: the settings (not where each value came from) and the estimators both paths build."""
    plain = dataclasses.replace(settings, params_file=None, raw=None, model=None)
    estimators = [make_model(settings.model.name, settings.model.params, settings.seed, row_path=row)[0].get_params()
                  for row in (False, True)]
    return plain, settings.model.name, estimators


def test_every_key_of_the_handed_out_params_is_found():
    assert {"seed", "data.items", "acceptance.min", "model.gradient_boosting.max_iter", "scale.mode"} <= set(KEYS)


@pytest.mark.parametrize("dotted", KEYS)
def test_deleting_a_key_from_params_toml_gives_the_same_value_by_default(tmp_path, dotted):
    table = dotted.split(".")
    model = table[1] if table[0] == "model" and len(table) == 3 else None  # a model's table: build that model
    assert effective(load(tmp_path, without(dotted), model)) == effective(load(tmp_path, TEXT, model))


def test_the_comparison_sees_a_changed_hyperparameter(tmp_path):
    changed = TEXT.replace("max_iter = 50 ", "max_iter = 51 ")
    assert changed != TEXT
    assert effective(load(tmp_path, changed, None)) != effective(load(tmp_path, TEXT, None))


HOUSES_TEXT = (Path(__file__).resolve().parents[2] / "params-houses.toml").read_text()


def houses_without(dotted: str) -> str:
    lines = HOUSES_TEXT.splitlines(keepends=True)
    del lines[key_lines(HOUSES_TEXT)[dotted] - 1]
    return "".join(lines)


@pytest.mark.parametrize("dotted", [key for key in leaf_keys(tomllib.loads(HOUSES_TEXT)) if key != "problem"])
def test_deleting_a_key_from_params_houses_toml_gives_the_same_value_by_default(tmp_path, dotted):
    """params-houses.toml is the houses problem's defaults (config.PROBLEM_DEFAULTS) written out."""
    table = dotted.split(".")
    model = table[1] if table[0] == "model" and len(table) == 3 else None
    assert effective(load(tmp_path, houses_without(dotted), model)) == effective(load(tmp_path, HOUSES_TEXT, model))
