"""The seam between the machinery (pipeline, tracking, serving) and a forecasting problem.

A problem knows its data (readers), its rows (process, filter), its features and its naive
baseline. The machinery knows none of that: it asks the problem through this interface, so a
second problem (the workshop's Zillow house prices: cd4ml/problems/houses) is a new package here,
one line in get_problem and its defaults in cd4ml/config.py PROBLEM_DEFAULTS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from cd4ml.config import DataSettings
from cd4ml.errors import ConfigError, DataError


@dataclass
class Table:
    """The rows a run trains and validates on, materialised once as columns."""

    inputs: Any  # the model's input rows (a pandas DataFrame)
    target: np.ndarray  # what to forecast
    dates: np.ndarray  # the date of each row, for the split
    weights: np.ndarray  # metric weights (e.g. NWRMSLE's perishable weight flags)
    ids: np.ndarray  # row ids in the source, or -1


class Source(Protocol):
    stats: Any  # ReadStats: lines, parsed, bytes, seconds, sha256
    path: Any  # the file whose line numbers rows carry


class Problem(Protocol):
    name: str
    request_columns: tuple[str, ...]  # what one forecast request holds (the model's input)
    trusted_types: tuple[str, ...]  # the problem's own types in a fitted model (for skops)

    def open(self, data: DataSettings, progress: Callable[[int, int], None] | None) -> Source:
        """The data source named in the settings, not yet read."""

    def rows(self, source: Source, data: DataSettings, on_bad: Callable[[DataError], None]) -> Iterator[dict]:
        """Read, process and filter: one pass of clean rows."""

    def collect(self, rows: Iterator[dict]) -> Table:
        """Materialise the rows into a Table."""

    def features(self, table: Table, source: Source, feature_set: str = "default") -> Any:
        """The sklearn transformer from model inputs to feature dicts (the Pipeline's first step),
        of one of the problem's feature_sets."""

    def levels(self) -> Any:
        """The Pipeline step after features that puts the baseline's forecast first in each row
        (as `level`, learned from the training rows), or None."""

    def baseline(self) -> Any:
        """A naive estimator (fit/predict) that every model must beat."""

    def expected(self, source: Source, ids: np.ndarray) -> np.ndarray | None:
        """Noise-free expected targets for these rows, when the data set knows them."""

    # --- pipeline-side members (issue 15a): metrics and feature sets are the problem's ----------
    # ([split] by and its settings are chosen in the params; cd4ml/pipeline/split.py splits.)
    metric_names: tuple[str, ...]  # what evaluate() returns, in the order the CLI prints them
    feature_sets: tuple[str, ...]  # the names [features] set may take

    def evaluate(self, actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, float]:
        """The problem's metrics of a forecast (cd4ml/metrics.py); the gate's metric is one of them."""
    # --- end of the pipeline-side members ------------------------------------------------------


class ScaleData(Protocol):
    """A problem's data on the scale path (cd4ml/pipeline/scale.py, docs/scale.md): partitions of
    compact columns (day, cell, target, promo, id), read by the scan (len, read, batch,
    tail_batch, columns; picklable for Dask), and what the path asks of those rows."""

    def features(self, scanned: Any) -> Any:
        """The model's fitted features step (with encode_frame) from the pass's totals."""

    def weights(self, frame: dict) -> np.ndarray:
        """The metric weights of rows in compact columns."""

    def requests(self, frame: dict) -> Any:
        """Rows in compact columns as the model's input rows (a DataFrame)."""

    def request_table(self, frame: dict) -> Any:
        """The same as an Arrow table, for millions of rows."""

    def expected(self, ids: np.ndarray) -> np.ndarray | None:
        """The problem's expected() in bounded memory."""


class ScaleProblem(Problem, Protocol):
    """A problem that can also take the scale path: one method more."""

    def partitions(self, source: Source, data: DataSettings, part_bytes: int, max_rows: int | None = None) -> ScaleData:
        """The data in partitions, and what the scale path asks of its rows."""


def get_problem(name: str) -> Problem:
    """The problem called `name` in params.toml."""
    from cd4ml.problems.favorita.problem import FavoritaProblem
    from cd4ml.problems.houses.problem import HousesProblem

    problems: dict[str, Callable[[], Problem]] = {"favorita": FavoritaProblem, "houses": HousesProblem}
    if name not in problems:
        raise ConfigError(f"params.toml problem must be one of {', '.join(problems)}; got {name!r}.")
    return problems[name]()
