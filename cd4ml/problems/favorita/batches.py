"""The batch path: the stages of the readers and of process.py on Arrow batches of train.csv. Pure.

The row functions (the readers' join, process_row, filter_rows, feature_row) stay the readable
reference. These functions do the same to a whole batch of rows at once with Arrow's CSV parser
and numpy kernels, and tests/unit/test_batches.py checks on random input that both paths give
the same rows. A batch is a pyarrow Table:

    parse_train(text, columns)           train.csv lines -> raw batch (Arrow types the columns)
    process_batch(raw)                   returns clipped at 0, empty onpromotion False
    filter_batch(batch, items, stores)   the chosen items and stores
    join_batch(batch, items, days_off)   family, class, perishable from items.csv; dayoff

(features.calendar_columns computes feature_row's date features for a whole column of dates.)

Arrow is stricter than the row functions in a few corners ("47.0" or "+47" as a store number,
" True" with a space, "20160101" as a date). When it refuses a batch, `Rejected` is raised and
the caller runs the row functions over the same lines instead:
they either read them (so the result is the row path's by construction) or raise the row path's
own error, located by file and line.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cd4ml.problems.favorita.process import process_item
from cd4ml.problems.fields import FALSE as _FALSE, TRUE as _TRUE

# The columns of train.csv a batch reads, and the Arrow type of each.
TRAIN_TYPES = {
    "id": pa.int64(),
    "date": pa.date32(),
    "store_nbr": pa.int64(),
    "item_nbr": pa.int64(),
    "unit_sales": pa.float64(),
    "onpromotion": pa.bool_(),
}
REQUIRED = ("date", "store_nbr", "item_nbr", "unit_sales")  # id and onpromotion may be missing or empty
LOOKUP_LIMIT = 1 << 25  # item numbers below this are looked up in a table (128 MB at most), others searched


class Rejected(Exception):
    """Arrow cannot read this batch the way the row functions would: use them instead."""


def _spellings(words: Iterable[str]) -> list[str]:
    """Every upper/lower-case spelling of the words (process.py compares flags case-blind)."""
    return sorted({"".join(chars) for word in words for chars in itertools.product(*({c.lower(), c.upper()} for c in word))})


_CONVERT = dict(
    column_types=TRAIN_TYPES,
    include_columns=list(TRAIN_TYPES),
    include_missing_columns=True,  # no id or onpromotion column: all empty, as the readers do
    null_values=[""],
    true_values=_spellings(_TRUE),
    false_values=_spellings(_FALSE - {""}),
    strings_can_be_null=True,
    quoted_strings_can_be_null=True,
)


def parse_train(text: bytes, columns: Sequence[str]) -> pa.Table:
    """Data lines of train.csv (no header; `columns` names them) as a raw batch.

    Raises Rejected when Arrow cannot type a value the row functions might still read, or finds
    a value they would refuse (an empty date, a non-finite number)."""
    read = pacsv.ReadOptions(column_names=list(columns), use_threads=False, block_size=max(len(text), 1) + 1)
    try:
        raw = pacsv.read_csv(pa.py_buffer(text), read_options=read, convert_options=pacsv.ConvertOptions(**_CONVERT))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise Rejected(str(err)) from None
    if any(raw[name].null_count for name in REQUIRED):
        raise Rejected("an empty value in a required column")
    if len(raw) and not pc.all(pc.is_finite(raw["unit_sales"])).as_py():
        raise Rejected("a unit_sales value that is not a finite number")
    return raw


BATCH_SCHEMA = pa.schema([
    ("id", pa.int64()), ("date", pa.date32()), ("store_nbr", pa.int64()), ("item_nbr", pa.int64()),
    ("unit_sales", pa.float64()), ("onpromotion", pa.bool_()),
])


def process_batch(raw: pa.Table) -> pa.Table:
    """process_row on a whole batch: returns (negative sales) clipped to zero, empty onpromotion False."""
    return pa.Table.from_arrays(
        [
            raw["id"],
            raw["date"],
            raw["store_nbr"],
            raw["item_nbr"],
            pc.max_element_wise(raw["unit_sales"], pa.scalar(0.0)),
            pc.fill_null(raw["onpromotion"], False),
        ],
        schema=BATCH_SCHEMA,
    )


def filter_batch(batch: pa.Table, items: frozenset[int] | None, stores: frozenset[int] | None) -> pa.Table:
    """filter_rows on a whole batch: the rows of the chosen items and stores (None chooses all)."""
    keep = None
    for column, chosen in (("item_nbr", items), ("store_nbr", stores)):
        if chosen is not None:
            mask = pc.is_in(batch[column], value_set=pa.array(sorted(chosen), pa.int64()))
            keep = mask if keep is None else pc.and_(keep, mask)
    return batch if keep is None else batch.filter(keep)


@dataclass(frozen=True)
class ItemTable:
    """items.csv as arrays, sorted by item number, typed by process_item. An item whose perishable
    flag the row functions refuse is marked unreadable: only a row of that item fails, as in the
    row path."""

    numbers: np.ndarray  # int64, sorted
    family: tuple[str, ...]
    klass: tuple[str, ...]
    perishable: np.ndarray  # bool
    unreadable: np.ndarray  # bool

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, object]]) -> ItemTable:
        """From items.csv rows (item_nbr, family, class, perishable as text); as in the readers'
        join, the last row of an item number wins."""
        from cd4ml.errors import DataError
        from cd4ml.problems.favorita.readers import normal_item

        typed: dict[int, tuple[str, str, bool | None]] = {}
        for row in rows:
            try:
                number = int(normal_item(str(row["item_nbr"])))
            except ValueError:
                continue  # the row path never matches such an item either
            try:
                facts = process_item(row)
                typed[number] = (facts["family"], facts["class"], facts["perishable"])
            except DataError:
                typed[number] = (str(row["family"]).strip(), str(row["class"]).strip(), None)
        numbers = sorted(typed)
        return cls(
            numbers=np.array(numbers, dtype=np.int64),
            family=tuple(typed[n][0] for n in numbers),
            klass=tuple(typed[n][1] for n in numbers),
            perishable=np.array([bool(typed[n][2]) for n in numbers], dtype=bool),
            unreadable=np.array([typed[n][2] is None for n in numbers], dtype=bool),
        )

    def positions(self, item_nbr: np.ndarray) -> np.ndarray:
        """Each item number's position in the table (int32); raises Rejected for an unknown item
        or one whose perishable flag cannot be read."""
        item_nbr = np.asarray(item_nbr, dtype=np.int64)
        if len(item_nbr) == 0:
            return np.zeros(0, dtype=np.int32)
        lookup = self._lookup
        if lookup is not None and 0 <= item_nbr.min() and item_nbr.max() < len(lookup):
            at = lookup[item_nbr]
            if (at < 0).any():
                raise Rejected("an item not found in items.csv")
        else:
            at = np.minimum(np.searchsorted(self.numbers, item_nbr), max(len(self.numbers) - 1, 0))
            if len(self.numbers) == 0 or not np.array_equal(self.numbers[at], item_nbr):
                raise Rejected("an item not found in items.csv")
        if self.unreadable.any() and self.unreadable[at].any():
            raise Rejected("an item whose perishable flag cannot be read")
        return at.astype(np.int32, copy=False)

    @cached_property
    def _lookup(self) -> np.ndarray | None:
        """item number -> position (-1: none), when the numbers are small enough for a table."""
        if len(self.numbers) == 0 or self.numbers[0] < 0 or self.numbers[-1] >= LOOKUP_LIMIT:
            return None
        lookup = np.full(int(self.numbers[-1]) + 1, -1, dtype=np.int32)
        lookup[self.numbers] = np.arange(len(self.numbers), dtype=np.int32)
        return lookup


def join_batch(batch: pa.Table, items: ItemTable, days_off: np.ndarray) -> pa.Table:
    """The readers' join on a whole batch: family, class and perishable of each row's item, and
    whether its date is a day off (days_off: int32 day numbers from days_of)."""
    at = items.positions(batch["item_nbr"].to_numpy())
    indices = pa.array(at, pa.int32())
    day = pc.cast(batch["date"], pa.int32()).to_numpy()
    return (
        batch.append_column("family", pa.DictionaryArray.from_arrays(indices, pa.array(items.family, pa.string())))
        .append_column("class", pa.DictionaryArray.from_arrays(indices, pa.array(items.klass, pa.string())))
        .append_column("perishable", pa.array(items.perishable[at], pa.bool_()))
        .append_column("dayoff", pa.array(np.isin(day, days_off), pa.bool_()))
    )
