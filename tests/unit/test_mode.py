"""Which path a run takes: the scale path is Favorita's, and splits by date only."""

from __future__ import annotations

import pytest

from cd4ml.config import ROOT, load_settings
from cd4ml.errors import ConfigError
from cd4ml.pipeline.mode import choose_path


@pytest.mark.parametrize("params, overrides, message", [
    ("params-houses.toml", {}, "the scale path is for the favorita problem only; the houses problem takes the row path"),
    ("params.toml", {"split.by": "hash"}, "the scale path splits by date only; \\[split\\] by = 'hash' takes the row path"),
])
def test_asking_the_scale_path_of_what_it_cannot_run_is_a_config_error(tmp_path, params, overrides, message):
    settings = load_settings(ROOT / params, environ={"CD4ML_DATA_DIR": str(tmp_path)},
                             overrides={"scale.mode": "on", **overrides})
    with pytest.raises(ConfigError, match=message):
        choose_path(settings)


def test_houses_take_the_row_path_by_default(tmp_path):
    assert choose_path(load_settings(ROOT / "params-houses.toml", environ={"CD4ML_DATA_DIR": str(tmp_path)})) == "rows"
