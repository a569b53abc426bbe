"""Which path a pipeline run takes: the workshop's row path, or the scale path (docs/scale.md).

Decided from the settings and the size of train.csv alone, before anything heavy is imported or
started, so that a setting that cannot work is reported at once.
"""

from __future__ import annotations

from pathlib import Path

from cd4ml.config import SCALE_PROBLEMS, Settings
from cd4ml.errors import ConfigError

SCALE_MODELS = ("gradient_boosting", "random_forest", "decision_tree")  # they take missing values


def takes_scale_path(settings: Settings) -> bool:
    """[scale] mode "on", or "auto" and a Kaggle-layout train.csv larger than auto_above_mb (the
    workshop's data, 33 MB, stays on the row path)."""
    mode = settings.scale.mode
    if mode != "auto":
        return mode == "on"
    train = Path(settings.data.source) / "train.csv"
    return train.is_file() and train.stat().st_size > settings.scale.auto_above_mb * 1e6


def check_model(name: str) -> None:
    if name not in SCALE_MODELS:
        raise ConfigError(
            f"params.toml [model] name must be one of {', '.join(SCALE_MODELS)} on the scale path "
            f"(models that take missing values); got {name!r}.",
            'Choose one of them, or use the row path ([scale] mode = "off", or --no-scale) for smaller data.',
        )


def choose_path(settings: Settings) -> str:
    """"scale" or "rows"; raises ConfigError for settings the chosen path cannot run."""
    if not takes_scale_path(settings):
        if settings.scale.max_rows:
            raise ConfigError(
                "--max-rows ([scale] max_rows) applies to the scale path only; this run takes the row path "
                f"([scale] mode = {settings.scale.mode!r}).", "Add --scale, or leave it out.",
            )
        return "rows"  # (a Dask scheduler is for the scale path's scan: the row path needs none)
    if settings.problem not in SCALE_PROBLEMS:
        raise ConfigError(
            f"the scale path is for the {', '.join(SCALE_PROBLEMS)} problem only; the {settings.problem} problem "
            "takes the row path.", 'Leave out --scale (or set [scale] mode = "off").',
        )
    if settings.split_by != "date":
        raise ConfigError(f'the scale path splits by date only; [split] by = {settings.split_by!r} takes the row path.',
                          'Set [split] by = "date", or use the row path ([scale] mode = "off", or --no-scale).')
    check_model(settings.model.name)
    if not Path(settings.data.source).is_dir():
        raise ConfigError(
            f"the scale path reads a folder in the Kaggle layout; {settings.data.source} is not a folder.",
            "Point [data] source (or --data) at a folder with train.csv, items.csv and holidays_events.csv, "
            'or use the row path ([scale] mode = "off", or --no-scale).',
        )
    return "scale"
