"""Data files changed safely: rows appended to a CSV file through a temporary file beside it,
renamed over it, so a crash leaves the old file or the new one, never half of one. For every
problem's `feedback` (cd4ml/problems/*/feedback.py)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's first line, stripped."""
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        return [c.strip() for c in next(csv.reader(f), [])]


def csv_lines(header: list[str], records: Iterable[dict[str, str]]) -> Iterator[bytes]:
    """Each record as one CSV line of the header's columns, UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in records:
        writer.writerow([record.get(column, "") for column in header])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()


def append_rows(path: Path, header: list[str], records: Iterable[dict[str, str]]) -> None:
    """Copy the file to a temporary one, append the records, rename it over the file."""
    with replacing(path) as out, path.open("rb") as original:
        shutil.copyfileobj(original, out, 1 << 22)
        if out.tell():
            original.seek(-1, os.SEEK_END)
            if original.read(1) != b"\n":
                out.write(b"\n")
        for line in csv_lines(header, records):
            out.write(line)


class replacing:
    """A binary file beside `path` that replaces it on a clean exit, and is removed otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        fd, self.temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if kind is None:
                shutil.copymode(self.path, self.temp)
                os.replace(self.temp, self.path)
        finally:
            if os.path.exists(self.temp):
                os.unlink(self.temp)
