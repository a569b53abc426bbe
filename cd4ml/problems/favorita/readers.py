"""Readers for the two Favorita layouts: the workshop's single CSV and Kaggle's folder.

Both yield *raw rows*: dicts of column name to text, in one common shape
(id, date, store_nbr, item_nbr, unit_sales, onpromotion, family, class, perishable, dayoff)
each with its line number in its file, as (line, raw row) pairs; a line that cannot be read
comes as (line, its DataError) in the row's place, so a caller counts or raises it. Typing and
cleaning is `process`'s job.

Each file is read once, in large binary chunks that are hashed as they pass (the data
fingerprint). When the caller only wants some items, the item numbers are pushed down: a
chunk is searched for them as whole numbers and only those candidate lines are parsed, so
rows the filter would drop cost almost nothing. Candidates are a superset of the wanted rows;
they are parsed and only the wanted items are yielded. Quoted fields may contain commas, not newlines.
"""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from cd4ml.errors import DataError
from cd4ml.problems.favorita import schema

CHUNK_BYTES = 1 << 22
_DIGITS = frozenset(b"0123456789")

RawRow = dict[str, object]
Numbered = tuple[int, "RawRow | DataError"]  # a line number and its raw row, or why it cannot be read
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)

WORKSHOP_REQUIRED = ("date", "item_nbr", "unit_sales", "family", "class", "perishable", "dayoff")
KAGGLE_TRAIN_REQUIRED = ("date", "store_nbr", "item_nbr", "unit_sales")


@dataclass
class ReadStats:
    """What a read saw: data lines scanned, lines parsed, bytes, time, and the fingerprint."""

    lines: int = 0
    parsed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256


def open_source(
    path: Path, items: frozenset[int] | None = None, progress: Progress | None = None
) -> "WorkshopSource | KaggleSource":
    """The reader for a workshop CSV file or a folder in the Kaggle layout."""
    path = Path(path)
    if path.is_dir():
        return KaggleSource(path, items, progress)
    if not path.exists():
        raise DataError(
            f"data source {path} does not exist",
            "Generate data with `python3 run_python_script.py generate-data`, or set "
            "[data] source in params.toml (or --data) to a workshop CSV file or a Kaggle folder.",
        )
    return WorkshopSource(path, items, progress)


class WorkshopSource:
    """The workshop's single file (one store, items joined, dayoff per row)."""

    calendar: frozenset[date] | None = None  # days off are given per row

    def __init__(self, path: Path, items: frozenset[int] | None, progress: Progress | None) -> None:
        self.path = path
        self.items = items
        self.progress = progress
        self.stats = ReadStats()

    def rows(self) -> Iterator[Numbered]:
        """(line, raw row) of the file, in file order; a single pass."""
        scan = _Scan(self.path, self.items, self.stats, self.progress)
        header = scan.header(WORKSHOP_REQUIRED, "the workshop layout")
        store = str(schema.WORKSHOP_STORE)
        for line, fields in scan.records():
            if isinstance(fields, DataError):
                yield line, fields
                continue
            row: RawRow = dict(zip(header, fields))
            row.setdefault("store_nbr", store)
            row.setdefault("onpromotion", "")
            row.setdefault("id", "")
            yield line, row
        self.stats.sha256 = self.stats.files[self.path.name]


class KaggleSource:
    """A folder with Kaggle's train.csv, items.csv, holidays_events.csv (and stores.csv)."""

    def __init__(self, folder: Path, items: frozenset[int] | None, progress: Progress | None) -> None:
        self.folder = folder
        self.path = folder / schema.TRAIN_FILE
        self.items = items
        self.progress = progress
        self.stats = ReadStats()
        if not self.path.exists():
            raise DataError(
                f"{self.path} does not exist",
                "A Kaggle-layout folder needs train.csv, items.csv and holidays_events.csv.",
            )
        self._items = self._read_items()
        self.calendar = self._read_days_off()
        for name in (schema.STORES_FILE,):
            if (folder / name).exists():
                self.stats.files[name] = _sha256(folder / name)

    def rows(self) -> Iterator[RawRow]:
        """Raw rows of train.csv joined with items.csv and the days off; a single pass."""
        scan = _Scan(self.path, self.items, self.stats, self.progress)
        header = scan.header(KAGGLE_TRAIN_REQUIRED, "Kaggle's train.csv")
        yield from join_train(header, scan.records(), self.item_facts, self.calendar, self.path)
        self.stats.sha256 = _combined(self.stats.files)

    @property
    def item_facts(self) -> dict[str, dict[str, str]]:
        """items.csv as read: item number (normalised text) -> family, class, perishable (text)."""
        return self._items

    def fingerprint(self, train_sha256: str) -> str:
        """The folder's fingerprint, given the sha256 of the train.csv bytes read (batch runs)."""
        self.stats.files[self.path.name] = train_sha256
        self.stats.sha256 = _combined(self.stats.files)
        return self.stats.sha256

    def _read_items(self) -> dict[str, dict[str, str]]:
        path = self.folder / schema.ITEMS_FILE
        rows = _read_small(path, ("item_nbr", "family", "class", "perishable"), self.stats)
        return {
            normal_item(r["item_nbr"]): {"family": r["family"], "class": r["class"], "perishable": r["perishable"]}
            for r in rows
        }

    def _read_days_off(self) -> frozenset[date]:
        path = self.folder / schema.HOLIDAYS_FILE
        rows = _read_small(path, schema.HOLIDAYS_COLUMNS, self.stats)
        days = set()
        for line, r in enumerate(rows, start=2):
            national = r["locale"].strip() == "National"
            moved = r["transferred"].strip().lower() == "true"
            if national and r["type"].strip() in schema.DAY_OFF_TYPES and not moved:
                try:
                    days.add(date.fromisoformat(r["date"].strip()))
                except ValueError:
                    raise DataError(
                        "cannot parse the date", "Dates are written YYYY-MM-DD.",
                        path=str(path), line=line, column="date", value=r["date"],
                    ) from None
        return frozenset(days)


def join_train(
    header: list[str], records: Iterable[tuple[int, list[str]]], item_facts: dict[str, dict[str, str]],
    calendar: frozenset[date], path: Path,
) -> Iterator[Numbered]:
    """train.csv records (line number, fields) as (line, raw row) joined with items.csv and the days off."""
    item_at = header.index("item_nbr")
    date_at = header.index("date")
    days_off = {d.isoformat() for d in calendar}
    for line, fields in records:
        if isinstance(fields, DataError):
            yield line, fields
            continue
        row: RawRow = dict(zip(header, fields))
        info = item_facts.get(fields[item_at].strip()) or item_facts.get(normal_item(fields[item_at]))
        if info is None:
            raise DataError(
                "item not found in items.csv",
                "Every item_nbr in train.csv needs a row in items.csv.",
                path=str(path), line=line, column="item_nbr", value=fields[item_at],
            )
        row.update(info)
        row["dayoff"] = "True" if fields[date_at].strip() in days_off else "False"
        row.setdefault("onpromotion", "")
        row.setdefault("id", "")
        yield line, row


# --- train.csv in byte ranges, for the batch path (batches.py) and Dask -----------------------

@dataclass(frozen=True)
class TrainParts:
    """train.csv cut into byte ranges of whole lines: the batches of the batch path and the tasks
    of a Dask run. As for the row readers, quoted fields must not hold newlines."""

    path: Path
    columns: tuple[str, ...]  # the header's column names
    start: int  # the first byte after the header line
    end: int  # the byte after the last line read (the file's size unless max_rows cut it short)
    ranges: tuple[tuple[int, int], ...]

    @property
    def bytes(self) -> int:
        return self.end - self.start


def split_train(path: Path, part_bytes: int, max_rows: int | None = None) -> TrainParts:
    """Byte ranges of about part_bytes each, every one starting at a line; max_rows: only the
    first max_rows data lines."""
    scan = _Scan(path, None, ReadStats(), None)
    columns = scan.header(KAGGLE_TRAIN_REQUIRED, "Kaggle's train.csv")
    start = scan.stats.bytes
    f = scan._file
    try:
        end = path.stat().st_size if max_rows is None else _end_of_line(f, start, max_rows)
        ranges, at = [], start
        while at < end:
            cut = min(at + part_bytes, end)
            if cut < end:
                f.seek(cut - 1)
                cut = min(cut - 1 + len(f.readline()), end)  # just after the line holding byte cut - 1
            ranges.append((at, cut))
            at = cut
    finally:
        f.close()
    return TrainParts(path, tuple(columns), start, end, tuple(ranges))


def _end_of_line(f: BinaryIO, start: int, lines: int) -> int:
    """The offset just after the given number of lines from start (or the end of the file)."""
    f.seek(start)
    at = start
    while lines > 0:
        block = f.read(CHUNK_BYTES)
        if not block:
            return at
        found = block.count(b"\n")
        if found < lines:
            lines -= found
            at += len(block)
            continue
        cut = -1
        for _ in range(lines):
            cut = block.index(b"\n", cut + 1)
        return at + cut + 1
    return at


def read_range(path: Path, start: int, end: int) -> bytes:
    """The bytes of train.csv from start to end."""
    with path.open("rb") as f:
        f.seek(start)
        return f.read(end - start)


def header_bytes(parts: TrainParts) -> bytes:
    """train.csv's header line, as in the file (the start of its fingerprint)."""
    return read_range(parts.path, 0, parts.start)


def sha256_of(path: Path, end: int) -> str:
    """The sha256 of a file's first `end` bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        left = end
        while left > 0:
            block = f.read(min(CHUNK_BYTES, left))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def tail_start(parts: TrainParts, nbytes: int) -> int:
    """The start of the first whole line in the last nbytes of the data read."""
    if parts.end - parts.start <= nbytes:
        return parts.start
    with parts.path.open("rb") as f:
        f.seek(parts.end - nbytes - 1)
        return parts.end - nbytes - 1 + len(f.readline())


def first_line(parts: TrainParts, offset: int) -> int:
    """The line number of the line starting at offset (the header is line 1): only for errors,
    as it counts the newlines before it."""
    line = 2
    with parts.path.open("rb") as f:
        f.seek(parts.start)
        left = offset - parts.start
        while left > 0:
            block = f.read(min(CHUNK_BYTES, left))
            if not block:
                break
            line += block.count(b"\n")
            left -= len(block)
    return line


def parse_lines(parts: TrainParts, text: bytes, line: int, items: frozenset[int] | None) -> Iterator[tuple[int, list[str]]]:
    """The row readers' parse of these train.csv lines (line: the number of the first): (line
    number, fields) of each data line, only those of the chosen items, as KaggleSource.rows reads them."""
    scan = _Scan(parts.path, items, ReadStats(), None)
    scan.width = len(parts.columns)
    if items is not None:
        scan.item_at = parts.columns.index("item_nbr")
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return scan._parse(text, line)


class _Scan:
    """One binary pass over a CSV file: header, then (line number, fields) of data lines."""

    def __init__(self, path: Path, items: frozenset[int] | None, stats: ReadStats, progress: Progress | None):
        self.path = path
        self.tokens = sorted(str(i).encode() for i in items) if items is not None else None
        self.wanted = frozenset(str(i) for i in items) if items is not None else None
        self.item_at = -1
        self.stats = stats
        self.progress = progress
        self.width = 0
        self._file = None
        self._hash = hashlib.sha256()

    def header(self, required: tuple[str, ...], layout: str) -> list[str]:
        """Open the file and read its header (BOM and CRLF taken); check required columns."""
        self._file = self.path.open("rb")
        first = self._file.readline()
        self._hash.update(first)
        self.stats.bytes += len(first)
        try:
            text = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            self._file.close()
            raise DataError("the header is not UTF-8 text", "Is this a CSV file?", path=str(self.path), line=1) from None
        columns = [c.strip() for c in next(csv.reader([text.rstrip("\r\n")]), [])]
        missing = [c for c in required if c not in columns]
        if missing:
            self._file.close()
            raise DataError(
                f"missing column(s) {', '.join(missing)}; found {', '.join(columns) or 'none'}",
                f"{layout} needs columns {', '.join(required)}.",
                path=str(self.path), line=1,
            )
        self.width = len(columns)
        if self.wanted is not None:
            self.item_at = columns.index("item_nbr")
        return columns

    def records(self) -> Iterator[tuple[int, list[str] | DataError]]:
        """Data lines as field lists; only candidate lines when items were pushed down. A line that
        cannot be read (not UTF-8, wrong number of fields) comes as its DataError, in its place."""
        started = time.perf_counter()
        total = self.path.stat().st_size
        line = 2
        carry = b""
        try:
            while True:
                block = self._file.read(CHUNK_BYTES)
                if not block:
                    break
                self._hash.update(block)
                self.stats.bytes += len(block)
                data = carry + block if carry else block
                cut = data.rfind(b"\n") + 1
                body, carry = data[:cut], data[cut:]
                if body:
                    yield from self._parse(body, line)
                    line += body.count(b"\n")
                if self.progress:
                    self.progress(self.stats.bytes, total)
            if carry.strip():
                yield from self._parse(carry + b"\n", line)
                line += 1
        finally:
            self._file.close()
        self.stats.lines += line - 2
        self.stats.seconds += time.perf_counter() - started
        self.stats.files[self.path.name] = self._hash.hexdigest()

    def _parse(self, body: bytes, first_line: int) -> Iterator[tuple[int, list[str]]]:
        if self.tokens is None:
            numbered = zip(range(first_line, first_line + body.count(b"\n")), body.split(b"\n"))
        else:
            numbered = self._candidates(body, first_line)
        for line, raw in numbered:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield line, self._bad(line, "the line is not UTF-8 text (binary garbage?)", raw)
                continue
            fields = next(csv.reader([text]), [])
            if not fields:
                continue  # a blank line
            self.stats.parsed += 1
            if len(fields) != self.width:
                yield line, self._bad(line, f"expected {self.width} fields, found {len(fields)}", raw)
                continue
            if self.wanted is None or normal_item(fields[self.item_at]) in self.wanted:
                yield line, fields

    def _candidates(self, body: bytes, first_line: int) -> Iterator[tuple[int, bytes]]:
        """Lines holding one of the item numbers as a whole number, in file order."""
        starts = set()
        for token in self.tokens:
            at = body.find(token)
            while at != -1:
                end = at + len(token)
                if (at == 0 or body[at - 1] not in _DIGITS) and (end == len(body) or body[end] not in _DIGITS):
                    starts.add(body.rfind(b"\n", 0, at) + 1)
                at = body.find(token, end)
        line, counted_to = first_line, 0
        for start in sorted(starts):
            line += body.count(b"\n", counted_to, start)
            counted_to = start
            yield line, body[start:body.index(b"\n", start)]

    def _bad(self, line: int, message: str, raw: bytes) -> DataError:
        return DataError(
            message,
            "Fix or remove the line, or set [data] max_bad_rows in params.toml to skip bad rows.",
            path=str(self.path), line=line, value=raw[:80].decode("utf-8", "replace"),
        )


def _read_small(path: Path, required: tuple[str, ...], stats: ReadStats) -> list[dict[str, str]]:
    """A small side file (items, holidays) read whole, with the same header checks."""
    if not path.exists():
        raise DataError(
            f"{path} does not exist",
            "A Kaggle-layout folder needs train.csv, items.csv and holidays_events.csv.",
        )
    scan = _Scan(path, None, ReadStats(), None)
    header = scan.header(required, path.name)
    rows = []
    for _, fields in scan.records():
        if isinstance(fields, DataError):
            raise fields  # side files are small: every line must be right
        rows.append(dict(zip(header, fields)))
    stats.files[path.name] = scan.stats.files[path.name]
    return rows


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _combined(files: dict[str, str]) -> str:
    """One fingerprint for a folder: the sha256 of its files' names and sha256s, sorted."""
    text = "".join(f"{name}:{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def normal_item(item: str) -> str:
    """An item number as text the way the join matches it: "99197", "99197.0" and " 99197" alike."""
    text = item.strip().strip('"')
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def read_expected(path: Path, ids: "np.ndarray") -> "np.ndarray | None":
    """The generator's noise-free expected sales for these row ids, or None when unknown."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not path.exists() or len(ids) == 0 or (ids < 0).any():
        return None
    types = {"id": pa.int64(), "expected": pa.float64()}
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    known, values = table["id"].to_numpy(), table["expected"].to_numpy()
    order = np.argsort(known, kind="stable")
    known, values = known[order], values[order]
    at = np.clip(np.searchsorted(known, ids), 0, len(known) - 1)
    if len(known) == 0 or not np.array_equal(known[at], ids):
        return None
    return values[at]


def read_expected_ids(path: Path, ids: "np.ndarray", block_bytes: int = 1 << 24) -> "np.ndarray | None":
    """read_expected in bounded memory, for data at scale: expected.csv is written in id order,
    so it is read from the line of the smallest id wanted on (found by bisecting the file) until
    every wanted id is found, keeping only those. The whole file is read when that misses some
    (an unsorted file)."""
    import numpy as np

    if not path.exists() or len(ids) == 0 or (ids < 0).any():
        return None
    wanted = np.unique(ids)
    with path.open("rb") as f:
        header = f.readline()
        data_start = len(header)
        start = _bisect_id(f, data_start, path.stat().st_size, int(wanted[0]))
        found = _scan_expected(f, start, wanted, header, block_bytes)
        if found is None and start > data_start:
            found = _scan_expected(f, data_start, wanted, header, block_bytes)
    if found is None:
        return None
    return found[np.searchsorted(wanted, ids)]


def _bisect_id(f: BinaryIO, low: int, high: int, target: int) -> int:
    """A line start at or before the line of id `target`, in a file sorted by its first column."""
    while high - low > (1 << 20):
        middle = (low + high) // 2
        f.seek(middle)
        f.readline()
        at = f.tell()
        first = f.readline().split(b",", 1)[0]
        try:
            before = int(first) < target
        except ValueError:
            return low
        if before:
            low = at
        else:
            high = middle
    return low


def _scan_expected(f: BinaryIO, start: int, wanted: "np.ndarray", header: bytes, block_bytes: int) -> "np.ndarray | None":
    """The expected value of every wanted id (sorted) from start on, or None if one is missing."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [c.strip() for c in header.decode("utf-8-sig").strip().split(",")]
    types = {"id": pa.int64(), "expected": pa.float64()}
    values = np.full(len(wanted), np.nan)
    seen = np.zeros(len(wanted), dtype=bool)
    f.seek(start)
    while not seen.all():
        block = f.read(block_bytes)
        if not block:
            break
        block += f.readline()  # to the end of its last line
        table = pacsv.read_csv(
            pa.py_buffer(block), read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=["id", "expected"]),
        )
        found = table["id"].to_numpy()
        at = np.minimum(np.searchsorted(wanted, found), len(wanted) - 1)
        hit = wanted[at] == found
        values[at[hit]] = table["expected"].to_numpy()[hit]
        seen[at[hit]] = True
    return values if seen.all() else None
