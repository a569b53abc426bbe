"""The Favorita problem behind the seam in cd4ml.problems: data, rows, features, baseline, its
generated data, and what the benchmarks ask of it (the model matrix, train.csv's column types)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from cd4ml.config import DataSettings
from cd4ml.errors import ConfigError, DataError
from cd4ml.metrics import evaluate
from cd4ml.problems import Table
from cd4ml.problems.favorita import readers, schema
from cd4ml.problems.favorita.baseline import DayOfWeekMean
from cd4ml.problems.favorita.batches import TRAIN_TYPES, ItemTable
from cd4ml.problems.favorita.compact import CompactSalesFeatures
from cd4ml.problems.favorita.levels import LevelFeatures
from cd4ml.problems.favorita.partitions import Partitions
from cd4ml.problems.favorita.features import REQUEST_COLUMNS, SalesFeatures, build_catalogue, days_of
from cd4ml.problems.favorita.process import filter_rows, process_rows
from cd4ml.problems.favorita.serving import SERVING


class FavoritaProblem:
    """How many units of each product will each store sell on a given date."""

    name = "favorita"

    def open(self, data: DataSettings, progress: Callable[[int, int], None] | None = None):
        return readers.open_source(data.source, items=data.items, progress=progress)

    def rows(self, source, data: DataSettings, on_bad: Callable[[DataError], None] | None = None) -> Iterator[dict]:
        processed = process_rows(source.rows(), str(source.path), data.max_bad_rows, on_bad)
        return filter_rows(processed, data.items, data.stores)

    def collect(self, rows: Iterator[dict]) -> Table:
        columns: dict[str, list] = {c: [] for c in ("id", "date", "store_nbr", "item_nbr", "onpromotion",
                                                  "unit_sales", "family", "class", "perishable", "dayoff")}
        for row in rows:
            for name, values in columns.items():
                values.append(row[name])
        if not columns["date"]:
            raise DataError(
                "no rows left after the filter",
                "Check [data] items and stores in params.toml (or --items) against the data.",
            )
        dates = np.array(columns["date"], dtype=object)
        inputs = pd.DataFrame({
            "date": [d.isoformat() for d in columns["date"]],
            "item_nbr": np.array(columns["item_nbr"], dtype=np.int64),
            "store_nbr": np.array(columns["store_nbr"], dtype=np.int64),
            "onpromotion": np.array(columns["onpromotion"], dtype=bool),
            "family": columns["family"],
            "class": columns["class"],
            "perishable": np.array(columns["perishable"], dtype=bool),
            "dayoff": np.array(columns["dayoff"], dtype=bool),
        })
        ids = np.array([-1 if i is None else i for i in columns["id"]], dtype=np.int64)
        return Table(
            inputs=inputs,
            target=np.array(columns["unit_sales"], dtype=float),
            dates=dates,
            weights=inputs["perishable"].to_numpy(),
            ids=ids,
        )

    def features(self, table: Table, source, feature_set: str = "default") -> SalesFeatures:
        frame = table.inputs
        catalogue = build_catalogue(
            frame[["item_nbr", "family", "class", "perishable"]].drop_duplicates("item_nbr").to_dict("records"),
            schema.WORKSHOP_PRODUCTS,
        )
        days_off = set(source.calendar or ())
        days_off.update(table.dates[frame["dayoff"].to_numpy()])
        return SalesFeatures(
            catalogue=catalogue,
            calendar=tuple(sorted(d.isoformat() for d in days_off)),
            period=(min(table.dates).isoformat(), max(table.dates).isoformat()),
        )

    metric_names = ("r2", "nwrmsle", "mae")
    feature_sets = ("default",)

    def evaluate(self, actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, float]:
        return evaluate(actual, predicted, weights)

    def levels(self) -> LevelFeatures:
        return LevelFeatures()

    def baseline(self) -> DayOfWeekMean:
        return DayOfWeekMean()

    def expected(self, source, ids: np.ndarray) -> np.ndarray | None:
        folder = source.path.parent
        return readers.read_expected(folder / schema.EXPECTED_FILE, ids)

    # --- the scale path (cd4ml/pipeline/scale.py; docs/scale.md) --------------------------------
    def partitions(self, source, data: DataSettings, part_bytes: int, max_rows: int | None = None) -> Partitions:
        """train.csv in byte ranges of about part_bytes, each read by the batch path
        (max_rows: only the first max_rows data lines)."""
        if not isinstance(source, readers.KaggleSource):
            raise ConfigError(
                f"the scale path reads a folder in the Kaggle layout; {source.path} is a single workshop file.",
                "Point [data] source (or --data) at a folder with train.csv, items.csv and holidays_events.csv, "
                'or use the row path ([scale] mode = "off").',
            )
        facts = source.item_facts
        return Partitions(
            parts=readers.split_train(source.path, part_bytes, max_rows),
            items=ItemTable.of({"item_nbr": item, **row} for item, row in facts.items()),
            item_facts=facts,
            calendar=source.calendar,
            days_off=days_of(source.calendar),
            chosen_items=data.items,
            chosen_stores=data.stores,
            max_bad_rows=data.max_bad_rows,
        )

    # The pyarrow types of train.csv's columns as the batch path reads them (the yardstick of
    # `benchmark --size full` reads them the same).
    scale_columns = TRAIN_TYPES

    # --- data generation (generate.py; docs/data.md) --------------------------------------------
    default_file = schema.WORKSHOP_FILE  # in data/workshop, beside the same data in the Kaggle layout

    def data_folder(self, kind: str) -> str:
        return kind  # data/tiny, data/workshop, data/full, data/actuals

    def generate(self, size: str, out: Path, seed: int) -> dict:
        """Both layouts: the Kaggle files and the workshop's single file."""
        from cd4ml.problems.favorita.generate import generate  # deferred: pyarrow's writers, for this command

        summary = generate(size, out, seed=seed)
        return {**summary, "message": f"wrote {summary['rows']:,} sales rows "
                                      f"({summary['workshop_rows']:,} in the workshop file) to {out}"}

    def generate_actuals(self, events: Path, out: Path, size: str, seed: int) -> dict:
        """The sales of every date forecast in the log (whenever served), in the Kaggle layout."""
        from cd4ml.monitoring.jsonl_events import forecast_days  # deferred: for this command only
        from cd4ml.problems.favorita.generate import generate_days

        days = forecast_days(events)
        summary = generate_days(size, days, out, seed=seed)
        return {**summary, "message": f"wrote {summary['rows']:,} actual sales rows of the {len(days)} days forecast "
                                      f"in {events} ({min(days)} to {max(days)}, {size} data, seed {seed}) to {out}"}

    def model_matrix(self) -> tuple:
        """The data sets the default model must beat the baseline on (matrix.py; benchmark --matrix)."""
        from cd4ml.problems.favorita.matrix import MATRIX  # deferred: the generator's imports

        return MATRIX

    request_columns = REQUEST_COLUMNS
    # --- serving and monitoring (cd4ml/problems/favorita/serving.py) ---
    serving = SERVING
    drift_key = "item_nbr"  # the column of Table.inputs whose shares monitoring's drift compares

    def add_actuals(self, actuals: Path, target: Path) -> Any:
        """Append a drop of arrived actual sales to the training data (`feedback`; feedback.py)."""
        from cd4ml.problems.favorita.feedback import add_actuals  # deferred: for this command only

        return add_actuals(actuals, target)
    # The types a fitted SalesFeatures (or CompactSalesFeatures) holds, for loading the model with
    # skops (no pickle).
    trusted_types = (
        f"{SalesFeatures.__module__}.SalesFeatures", f"{CompactSalesFeatures.__module__}.CompactSalesFeatures",
        f"{LevelFeatures.__module__}.LevelFeatures",
        "builtins.frozenset", "datetime.date",
    )
