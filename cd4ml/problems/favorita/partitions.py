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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cd4ml.errors import DataError
from cd4ml.problems.favorita.batches import (
    ItemTable, Rejected, filter_batch, join_batch, parse_train, process_batch,
)
from cd4ml.problems.favorita.process import filter_rows, process_rows
from cd4ml.problems.favorita.readers import (
    TrainParts, first_line, header_bytes, join_train, parse_lines, read_range, sha256_of, tail_start,
)

MAX_STORE = 9999  # store numbers index dense arrays of store x item cells

JOINED_SCHEMA = pa.schema([
    ("id", pa.int64()), ("date", pa.date32()), ("store_nbr", pa.int64()), ("item_nbr", pa.int64()),
    ("unit_sales", pa.float64()), ("onpromotion", pa.bool_()), ("family", pa.string()),
    ("class", pa.string()), ("perishable", pa.bool_()), ("dayoff", pa.bool_()),
])


@dataclass(frozen=True)
class Batch:
    """One partition after the batch stages: the rows kept, the data lines read, rows skipped."""

    table: pa.Table
    lines: int
    by_rows: bool = False  # read by the row functions, as Arrow refused the lines
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Partitions:
    """train.csv in partitions, with what the batch stages need to read any one of them."""

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
