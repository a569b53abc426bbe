"""Split into training and validation rows: by date (train on the past, validate on the last N
days) or by a seeded hash of the row ids (a fixed share of the rows, whatever their dates). Pure."""

from __future__ import annotations

import hashlib
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


def split_by_hash(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A mask of the validation rows: those whose id hashes (BLAKE2b of seed and id) below
    `fraction`. A row's side depends on its id and the seed alone, never on the other rows."""
    if (np.asarray(ids) < 0).any():
        raise ConfigError('[split] by = "hash" needs row ids, and this data has rows without one.',
                          'Use by = "date" in params.toml.')
    key = f"{seed}:".encode()
    scale = float(1 << 64)
    shares = np.fromiter(
        (int.from_bytes(hashlib.blake2b(key + str(int(i)).encode(), digest_size=8).digest(), "big") / scale
         for i in ids), dtype=float, count=len(ids))
    valid = shares < fraction
    if valid.all() or not valid.any():
        raise ConfigError(f"[split] validation_fraction={fraction} leaves no {'training' if valid.all() else 'validation'} "
                          f"rows of {len(ids)}.", "Choose a fraction between 0 and 1 that leaves both, or use more data.")
    return valid


def split(by: str, dates: np.ndarray, ids: np.ndarray, validation_days: int, fraction: float, seed: int
          ) -> tuple[np.ndarray, str]:
    """The validation mask by the [split] chosen, and what it was: its first date, or the hash's share."""
    if by == "hash":
        return split_by_hash(ids, fraction, seed), f"hash {fraction:g} of ids (seed {seed})"
    if by == "date":
        valid, cutoff = split_by_date(dates, validation_days)
        return valid, str(cutoff)
    raise ConfigError(f'[split] by must be "date" or "hash"; got {by!r}.')
