"""Split by date: the last N days of the data are the validation set."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from cd4ml.errors import ConfigError

from cd4ml.pipeline.split import split_by_date


def test_the_last_n_calendar_days_are_validation():
    dates = np.array([date(2016, 12, d) for d in (1, 29, 30, 31, 31, 2)])
    valid, cutoff = split_by_date(dates, validation_days=3)
    assert valid.tolist() == [False, True, True, True, True, False]
    assert cutoff == date(2016, 12, 29)


def test_a_split_that_leaves_nothing_to_train_on_is_an_error():
    dates = np.array([date(2016, 12, 30), date(2016, 12, 31)])
    with pytest.raises(ConfigError, match="validation_days=5.*2 days"):
        split_by_date(dates, validation_days=5)
