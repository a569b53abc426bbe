"""Split by date: train on the past, validate on the last N days. Pure."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from cd4ml.errors import ConfigError


def split_by_date(dates: np.ndarray, validation_days: int) -> tuple[np.ndarray, date]:
    """A mask of the validation rows (the last `validation_days` calendar days) and its first day."""
    first, last = min(dates), max(dates)
    cutoff = last - timedelta(days=validation_days - 1)
    if cutoff <= first:
        span = (last - first).days + 1
        raise ConfigError(
            f"[split] validation_days={validation_days} leaves no training data: the data spans {span} days. "
            "Lower validation_days in params.toml or use more data."
        )
    return np.fromiter((d >= cutoff for d in dates), dtype=bool, count=len(dates)), cutoff
