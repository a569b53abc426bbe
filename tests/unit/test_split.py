"""Split by date (the last N days of the data are the validation set) or by a seeded hash of the row ids."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from cd4ml.errors import ConfigError

from cd4ml.pipeline.split import split, split_by_date, split_by_hash


def test_the_last_n_calendar_days_are_validation():
    dates = np.array([date(2016, 12, d) for d in (1, 29, 30, 31, 31, 2)])
    valid, cutoff = split_by_date(dates, validation_days=3)
    assert valid.tolist() == [False, True, True, True, True, False]
    assert cutoff == date(2016, 12, 29)


def test_a_split_that_leaves_nothing_to_train_on_is_an_error():
    dates = np.array([date(2016, 12, 30), date(2016, 12, 31)])
    with pytest.raises(ConfigError, match="validation_days=5.*2 days"):
        split_by_date(dates, validation_days=5)


def test_the_hash_split_validates_a_seeded_share_of_the_ids_whatever_the_other_rows():
    ids = np.arange(1, 10_001)
    valid = split_by_hash(ids, fraction=0.2, seed=42)
    assert abs(valid.mean() - 0.2) < 0.02
    assert (split_by_hash(ids[::-1], 0.2, 42) == valid[::-1]).all()  # a row's side is its id's alone
    assert (split_by_hash(ids[:100], 0.2, 42) == valid[:100]).all()
    assert (split_by_hash(ids, 0.2, 7) != valid).any()  # another seed, other rows


def test_split_chooses_by_date_or_by_hash():
    dates = np.array([date(2016, 12, d) for d in (1, 2, 30, 31)])
    ids = np.array([1, 2, 3, 4])
    valid, first = split("date", dates, ids, validation_days=2, fraction=0.5, seed=0)
    assert valid.tolist() == [False, False, True, True] and first == "2016-12-30"
    valid, what = split("hash", dates, ids, validation_days=2, fraction=0.5, seed=3)
    assert valid.tolist() == split_by_hash(ids, 0.5, 3).tolist() and what == "hash 0.5 of ids (seed 3)"


def test_a_hash_split_without_ids_or_leaving_no_side_is_an_error():
    with pytest.raises(ConfigError, match='by = "hash" needs row ids'):
        split_by_hash(np.array([1, -1]), 0.5, 0)
    with pytest.raises(ConfigError, match="validation_fraction=0.001 leaves no validation rows of 3"):
        split_by_hash(np.array([1, 2, 3]), 0.001, 0)
