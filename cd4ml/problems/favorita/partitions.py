"""train.csv partition by partition through the batch path: the unit of work of the scale path,
in one process or as Dask tasks.

A partition is a byte range of whole lines (readers.split_train). `Partitions.batch` reads it and
runs the batch stages (batches.py: parse, process, filter, join); when Arrow refuses the lines,
the row functions read them instead (readers.join_train, process_rows, filter_rows), so a batch
is always what the row path would give, or the row path's own error. `Partitions.columns` turns a
batch into the compact columns the scale path aggregates (cd4ml/pipeline/scale.py):

    day     int32    days since 1970-01-01
    cell    int32    store_nbr * n_items + the item's position in items.csv (sorted)
    target  float64  unit_sales, returns clipped to zero
    promo   bool     onpromotion
    id      int64    the row id, -1 when empty

A Partitions object holds everything a worker needs (small: items.csv and the days off) and is
sent to Dask workers as it is; the workers read train.csv from the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cd4ml.errors import DataError
from cd4ml.problems.favorita import schema
from cd4ml.problems.favorita.batches import (
    ItemTable, Rejected, filter_batch, join_batch, parse_train, process_batch,
)
from cd4ml.problems.favorita.compact import CompactSalesFeatures
from cd4ml.problems.favorita.features import build_catalogue, date_of
from cd4ml.problems.favorita.process import filter_rows, process_rows
from cd4ml.problems.favorita.readers import (
    TrainParts, first_line, header_bytes, join_train, parse_lines, read_expected_ids, read_range, sha256_of,
    tail_start,
)

MAX_STORE = 9999  # store numbers index dense arrays of store x item cells

JOINED_SCHEMA = pa.schema([
    ("id", pa.int64()), ("date", pa.date32()), ("store_nbr", pa.int64()), ("item_nbr", pa.int64()),
    ("unit_sales", pa.float64()), ("onpromotion", pa.bool_()), ("family", pa.string()),
    ("class", pa.string()), ("perishable", pa.bool_()), ("dayoff", pa.bool_()),
])

if TYPE_CHECKING:
    import pandas as pd

    from cd4ml.pipeline.scale import Scanned


@dataclass(frozen=True)
class Batch:
    """One partition after the batch stages: the rows kept, the data lines read, rows skipped."""

    table: pa.Table
    lines: int
    by_rows: bool = False  # read by the row functions, as Arrow refused the lines
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Partitions:
    """train.csv in partitions, with what the batch stages need to read any one of them, and what
    the scale path asks of its rows (features, weights, requests, expected sales)."""

    parts: TrainParts
    items: ItemTable
    item_facts: dict[str, dict[str, str]]  # items.csv as the row readers hold it (for the fallback)
    calendar: frozenset[date]
    days_off: np.ndarray  # int32 day numbers
    chosen_items: frozenset[int] | None
    chosen_stores: frozenset[int] | None
    max_bad_rows: int = 0

    def __len__(self) -> int:
        return len(self.parts.ranges)

    # --- the scale path's view of rows in its compact columns (cd4ml/pipeline/scale.py) -----------
    def features(self, scanned: "Scanned") -> CompactSalesFeatures:
        """The model's features step, its encodings learned from the totals of every training row."""
        items = self.items
        n_items = len(items.numbers)
        sums, counts = scanned.cell_totals()
        cells = np.union1d(np.flatnonzero(counts), scanned.valid["cell"])
        positions = np.unique(cells % n_items) if n_items else np.zeros(0, dtype=np.int64)
        catalogue = build_catalogue(
            ({"item_nbr": int(items.numbers[k]), "family": items.family[k], "class": items.klass[k],
              "perishable": bool(items.perishable[k])} for k in positions),
            schema.WORKSHOP_PRODUCTS,
        )
        features = CompactSalesFeatures(
            catalogue=catalogue,
            calendar=tuple(sorted(d.isoformat() for d in self.calendar)),
            period=(date_of(scanned.first_day).isoformat(), date_of(scanned.last_day).isoformat()),
            item_nbr=items.numbers,
            family=items.family,
            perishable=items.perishable,
        )
        return features.fit_totals(sums, counts)

    def weights(self, frame: dict) -> np.ndarray:
        """The metric weights (perishable) of rows in the scale path's columns."""
        return self.items.perishable[frame["cell"] % len(self.items.numbers)]

    def requests(self, frame: dict) -> pd.DataFrame:
        """Rows in the scale path's columns as forecast requests (the model's input)."""
        return self.request_table(frame).to_pandas()

    def request_table(self, frame: dict) -> pa.Table:
        """The same requests as an Arrow table (dates as ISO text), for millions of rows."""
        store, position = self.store_and_position(frame["cell"].astype(np.int64))
        return pa.table({
            "date": pa.array(frame["day"], pa.int32()).cast(pa.date32()).cast(pa.string()),
            "item_nbr": pa.array(self.items.numbers[position], pa.int64()),
            "store_nbr": pa.array(store, pa.int64()),
            "onpromotion": pa.array(frame["promo"], pa.bool_()),
        })

    def drift_keys(self, frame: dict) -> np.ndarray:
        """The item number of each row in compact columns: the training profile's drift key."""
        numbers = self.items.numbers
        return numbers[frame["cell"] % len(numbers)]

    def expected(self, ids: np.ndarray) -> np.ndarray | None:
        """The noise-free expected targets of these row ids, read in bounded memory."""
        return read_expected_ids(self.path.parent / schema.EXPECTED_FILE, ids)

    @property
    def path(self) -> Path:
        return self.parts.path

    @property
    def data_bytes(self) -> int:
        """The bytes of data lines read (the header left out)."""
        return self.parts.bytes

    def header(self) -> bytes:
        """train.csv's header line: the start of the bytes its fingerprint covers."""
        return header_bytes(self.parts)

    def sha256(self) -> str:
        """The sha256 of the bytes read: the header and the data lines (the whole file unless max_rows)."""
        return sha256_of(self.parts.path, self.parts.end)

    def read(self, index: int) -> bytes:
        start, end = self.parts.ranges[index]
        return read_range(self.parts.path, start, end)

    def batch(self, index: int, text: bytes | None = None) -> Batch:
        """Partition `index` read, processed, filtered and joined (text: its bytes, if already read)."""
        return self.batch_of(*self.parts.ranges[index], text)

    def tail_batch(self, nbytes: int) -> Batch:
        """The last lines of the data read (about nbytes), through the batch stages: a probe of
        the last dates."""
        end = self.parts.end
        start = tail_start(self.parts, nbytes)
        return self.batch_of(start, end)

    def batch_of(self, start: int, end: int, text: bytes | None = None) -> Batch:
        """The lines from byte start to end read, processed, filtered and joined."""
        text = read_range(self.parts.path, start, end) if text is None else text
        lines = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
        try:
            raw = parse_train(text, self.parts.columns)
            kept = filter_batch(process_batch(raw), self.chosen_items, self.chosen_stores)
            return Batch(join_batch(kept, self.items, self.days_off), lines)
        except Rejected:
            return self._by_rows(start, text, lines)

    def _by_rows(self, start: int, text: bytes, lines: int) -> Batch:
        """The row path over these lines: the reference result, or its located error."""
        path = self.parts.path
        line = first_line(self.parts, start)
        records = parse_lines(self.parts, text, line, self.chosen_items)
        raws = join_train(list(self.parts.columns), records, self.item_facts, self.calendar, path)
        skipped: list[str] = []
        processed = process_rows(raws, str(path), self.max_bad_rows, lambda err: skipped.append(str(err)))
        rows = list(filter_rows(processed, self.chosen_items, self.chosen_stores))
        return Batch(pa.Table.from_pylist(rows, schema=JOINED_SCHEMA), lines, True, tuple(skipped))

    def columns(self, batch: pa.Table) -> dict[str, np.ndarray]:
        """A batch as the scale path's compact columns (see the module's docstring)."""
        store = batch["store_nbr"].to_numpy()
        if len(store) and (store.min() < 0 or store.max() > MAX_STORE):
            bad = int(store.min() if store.min() < 0 else store.max())
            raise DataError(
                f"store_nbr {bad} is outside 0..{MAX_STORE}, which the scale path supports",
                "Renumber the stores, or use the row path ([scale] mode = \"off\").",
                path=str(self.parts.path), column="store_nbr", value=str(bad),
            )
        position = self.items.positions(batch["item_nbr"].to_numpy())
        cell = store * len(self.items.numbers) + position
        return {
            "day": pc.cast(batch["date"], pa.int32()).to_numpy(),
            "cell": cell.astype(np.int32),
            "target": batch["unit_sales"].to_numpy(),
            "promo": batch["onpromotion"].to_numpy(zero_copy_only=False),
            "id": pc.fill_null(batch["id"], -1).to_numpy(),
        }

    def store_and_position(self, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The store number and item position of each cell."""
        n_items = len(self.items.numbers)
        return cell // n_items, cell % n_items
