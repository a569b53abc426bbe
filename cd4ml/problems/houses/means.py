"""Smoothed mean prices by zip code, falling back to the state, then to all sales. Pure."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np


class PriceMeans:
    """Mean target per state and per zip code, each shrunk towards its parent by `smoothing` rows'
    weight: state towards the overall mean, zip towards its state's (0: the plain means). A zip
    code never seen falls back to its state's mean, a state never seen to the overall mean.

    Learned: zip_ {zipcode: mean}, state_ {state: mean}, mean_ (all rows)."""

    def __init__(self, smoothing: float = 0.0) -> None:
        if not (isinstance(smoothing, (int, float)) and smoothing >= 0):
            raise ValueError(f"smoothing must be a number >= 0; got {smoothing!r}.")
        self.smoothing = smoothing

    def fit(self, zipcodes: Iterable[str], states: Iterable[str], y: np.ndarray) -> "PriceMeans":
        target = np.asarray(y, dtype=float)
        by_zip, by_state = defaultdict(lambda: [0.0, 0]), defaultdict(lambda: [0.0, 0])
        zip_state = {}
        for zipcode, state, value in zip(zipcodes, states, target):
            for totals in (by_zip[zipcode], by_state[state]):
                totals[0] += value
                totals[1] += 1
            zip_state[zipcode] = state
        self.mean_ = float(target.mean()) if len(target) else 0.0
        m = float(self.smoothing)
        self.state_ = {s: (total + m * self.mean_) / (count + m) for s, (total, count) in by_state.items()}
        self.zip_ = {z: (total + m * self.state_[zip_state[z]]) / (count + m) for z, (total, count) in by_zip.items()}
        return self

    def state_mean(self, state: str) -> float:
        return self.state_.get(state, self.mean_)

    def zip_mean(self, zipcode: str, state: str) -> float:
        return self.zip_.get(zipcode, self.state_mean(state))
