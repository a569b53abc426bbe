"""Readers of the houses data: sales.csv joined with zipcodes.csv (beside it), and expected.csv.

The source yields (line, raw row) pairs: dicts of column name to text, with the zip code's
state, city and metro joined in; a line that cannot be read comes as (line, its DataError), so
a caller counts or raises it. Typing is `process`'s job. Files are read once and hashed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from cd4ml.errors import DataError
from cd4ml.problems.houses import schema

GENERATE = "Generate it with `python3 run_python_script.py generate-data --problem houses`"
Numbered = tuple[int, "dict[str, str] | DataError"]


@dataclass
class ReadStats:
    """What a read saw: data lines, bytes, time, and the fingerprint of both files."""

    lines: int = 0
    bytes: int = 0
    seconds: float = 0.0
    sha256: str = ""


def open_source(path: Path, progress: Callable[[int, int], None] | None = None) -> "SalesSource":
    """The sales file named in [data] source (a file, or a folder holding sales.csv)."""
    path = Path(path)
    if path.is_dir():
        path = path / schema.SALES_FILE
    if not path.is_file():
        raise DataError(f"houses data source {path} does not exist",
                        f"{GENERATE}, or set [data] source in params-houses.toml (or --data) to a sales.csv file.")
    return SalesSource(path, progress)


class SalesSource:
    """sales.csv and the zipcodes.csv beside it."""

    def __init__(self, path: Path, progress: Callable[[int, int], None] | None = None) -> None:
        self.path = path
        self.progress = progress
        self.stats = ReadStats()
        self.zipcodes_path = path.parent / schema.ZIPCODES_FILE
        if not self.zipcodes_path.is_file():
            raise DataError(f"{self.zipcodes_path} does not exist: the sales' zip codes are looked up there",
                            f"{GENERATE}, or put the zip-code table (zipcode,state,city,metro) beside {path.name}.")

    def rows(self) -> Iterator[Numbered]:
        """(line, raw row) of sales.csv with state, city and metro joined, in file order; one pass."""
        started = time.perf_counter()
        digest = hashlib.sha256()
        zip_bytes = self.zipcodes_path.read_bytes()
        digest.update(zip_bytes)
        places = read_zipcodes(zip_bytes, self.zipcodes_path)
        data = self.path.read_bytes()
        digest.update(data)
        self.stats.bytes = len(data) + len(zip_bytes)
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
        header = _header(next(reader, []), schema.SALES_COLUMNS, self.path)
        width = len(header)
        for line, fields in enumerate(reader, start=2):
            if not fields:
                continue
            self.stats.lines += 1
            if len(fields) != width:
                yield line, DataError(f"the line has {len(fields)} fields, the header {width}",
                                      "Each line needs one value per column of the header.")
                continue
            raw = dict(zip(header, fields))
            place = places.get(raw["zipcode"].strip())
            if place is None:
                yield line, DataError("the zip code is not in " + schema.ZIPCODES_FILE,
                                      f"Add it to {self.zipcodes_path}.", column="zipcode", value=raw["zipcode"])
                continue
            yield line, {**raw, **place}
        self.stats.sha256 = digest.hexdigest()
        self.stats.seconds = time.perf_counter() - started
        if self.progress:
            self.progress(self.stats.bytes, self.stats.bytes)


def read_zipcodes(data: bytes, path: Path) -> dict[str, dict[str, str]]:
    """zipcodes.csv: zip code -> state, city, metro."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    header = _header(next(reader, []), schema.ZIPCODES_COLUMNS, path)
    places = {}
    for line, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            raise DataError(f"the line has {len(fields)} fields, the header {len(header)}",
                            "Each line needs zipcode, state, city and metro.", path=str(path), line=line)
        row = dict(zip(header, (f.strip() for f in fields)))
        if not row["state"]:
            raise DataError("the state is empty", "Every zip code needs its state.",
                            path=str(path), line=line, column="state", value="")
        places[row["zipcode"]] = {"state": row["state"], "city": row["city"], "metro": row["metro"]}
    return places


def _header(fields: list[str], required: tuple[str, ...], path: Path) -> list[str]:
    header = [f.strip() for f in fields]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"the header lacks the column(s) {', '.join(missing)}",
                        f"A houses file needs {', '.join(required)}.", path=str(path), line=1)
    return header


def read_expected(path: Path, ids: np.ndarray) -> np.ndarray | None:
    """The generator's noise-free expected prices of these sale ids, or None when unknown."""
    import pandas as pd

    if not path.is_file() or len(ids) == 0:
        return None
    table = pd.read_csv(path, dtype={"sale_id": np.int64, "expected_price": float}).set_index("sale_id")
    found = table["expected_price"].reindex(ids)
    return None if found.isna().any() else found.to_numpy()


def read_sale_ids(path: Path) -> set[str]:
    """The sale_id text of every data line of a sales file (bad lines too: their ids are taken)."""
    with Path(path).open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = _header(next(reader, []), ("sale_id",), Path(path))
        at = header.index("sale_id")
        return {_sale_id(fields[at]) for fields in reader if len(fields) > at}


def read_expected_rows(path: Path) -> dict[str, str]:
    """expected.csv as text: sale_id -> expected_price ({} when there is none)."""
    if not Path(path).is_file():
        return {}
    with Path(path).open("r", encoding="utf-8-sig", newline="") as f:
        return {_sale_id(r["sale_id"]): r["expected_price"].strip() for r in csv.DictReader(f)}


def _sale_id(text: str) -> str:
    """A sale_id as the join key writes it: "0042" and "42" are one sale."""
    text = text.strip()
    return str(int(text)) if text.isdigit() else text
