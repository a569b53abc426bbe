"""The houses problem behind the seam in cd4ml.problems: what will a house sell for?"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from cd4ml.config import DataSettings
from cd4ml.errors import DataError
from cd4ml.metrics import evaluate_prices
from cd4ml.problems import Table
from cd4ml.problems.houses import readers, schema
from cd4ml.problems.houses.baseline import ZipMeanPrice
from cd4ml.problems.houses.features import FEATURE_SETS, REQUEST_COLUMNS, HouseFeatures, PriceLevels
from cd4ml.problems.houses.means import PriceMeans
from cd4ml.problems.houses.process import process_rows
from cd4ml.problems.houses.serving import SERVING


class HousesProblem:
    """The sale price of a house, from its size, rooms, age, style and zip code."""

    name = "houses"
    request_columns = REQUEST_COLUMNS
    trusted_types = tuple(f"{t.__module__}.{t.__name__}" for t in (HouseFeatures, PriceLevels, PriceMeans))
    metric_names = ("r2", "rmse", "mae", "mape")
    feature_sets = tuple(FEATURE_SETS)

    def open(self, data: DataSettings, progress: Callable[[int, int], None] | None = None) -> readers.SalesSource:
        return readers.open_source(data.source, progress)

    def rows(self, source, data: DataSettings, on_bad: Callable[[DataError], None] | None = None) -> Iterator[dict]:
        return process_rows(source.rows(), str(source.path), data.max_bad_rows, on_bad)

    def collect(self, rows: Iterator[dict]) -> Table:
        frame = pd.DataFrame.from_records(list(rows), columns=["sale_id", "sale_date", *REQUEST_COLUMNS, "price"])
        if frame.empty:
            raise DataError("the houses data has no sales", "Generate it with `generate-data --problem houses`.")
        return Table(
            inputs=frame[list(REQUEST_COLUMNS)],
            target=frame["price"].to_numpy(dtype=float),
            dates=frame["sale_date"].to_numpy(dtype=object),
            weights=np.ones(len(frame)),
            ids=frame["sale_id"].to_numpy(dtype=np.int64),
        )

    def features(self, table: Table, source, feature_set: str = "default") -> HouseFeatures:
        return HouseFeatures(feature_set)

    def levels(self) -> PriceLevels:
        return PriceLevels()

    def baseline(self) -> ZipMeanPrice:
        return ZipMeanPrice()

    def expected(self, source, ids: np.ndarray) -> np.ndarray | None:
        return readers.read_expected(source.path.parent / schema.EXPECTED_FILE, ids)

    def evaluate(self, actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, float]:
        return evaluate_prices(actual, predicted, weights)

    # --- serving and monitoring (cd4ml/problems/houses/serving.py) ---
    serving = SERVING
    drift_key = "zipcode"  # the column of Table.inputs whose shares monitoring's drift compares

    def add_actuals(self, actuals: Path, target: Path) -> Any:
        """Append a drop of arrived actual sales to the training sales (`feedback`; feedback.py)."""
        from cd4ml.problems.houses.feedback import add_actuals  # deferred: for this command only

        return add_actuals(actuals, target)

    # --- data generation (generate.py; docs/data.md) --------------------------------------------
    default_file = schema.SALES_FILE  # in data/houses, beside zipcodes.csv and expected.csv

    def data_folder(self, kind: str) -> str:
        return "houses" if kind == "workshop" else f"houses-{kind}"  # data/houses, data/houses-tiny, ...

    def generate(self, size: str, out: Path, seed: int) -> dict:
        from cd4ml.problems.houses.generate import generate  # deferred: for this command only

        summary = generate(size, out, seed=seed)
        return {**summary, "message": f"wrote {summary['rows']:,} house sales in {summary['zipcodes']} zip codes to {out}"}

    def generate_actuals(self, events: Path, out: Path, size: str, seed: int) -> dict:
        """The sale prices of the houses forecast in the log, from the generator's pricing (size: unused)."""
        from cd4ml.problems.houses.actuals import write_actuals  # deferred: for this command only

        summary = write_actuals(events, out, seed)
        return {**summary, "message": f"wrote {summary['rows']:,} actual sale prices of the houses forecast in {events} "
                                      f"({summary['first']} to {summary['last']}, seed {seed}) to {out}"}
