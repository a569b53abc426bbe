"""Typed fields of raw rows (text from a CSV file), for every problem's process step. Pure.

Each parser takes a raw row and a column and returns the typed value, or raises a DataError naming
the column, the value and the fix; process_numbered locates it in the file and counts bad rows.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Callable, Iterable, Iterator, Mapping

from cd4ml.errors import DataError

Row = dict[str, object]

TRUE = frozenset({"true", "1", "t", "yes"})
FALSE = frozenset({"false", "0", "f", "no", ""})


def process_numbered(
    raws: Iterable[tuple[int, Mapping[str, object] | DataError]],
    process_row: Callable[[Mapping[str, object]], Row],
    source: str,
    max_bad_rows: int = 0,
    on_bad: Callable[[DataError], None] | None = None,
) -> Iterator[Row]:
    """Type and clean (line, raw row) pairs with process_row; one pass. Bad rows (and lines the reader could not
    read, which come as their DataError) fail the stream, or are skipped and reported through
    on_bad while there are at most max_bad_rows of them."""
    skipped = 0
    for line, raw in raws:
        try:
            if isinstance(raw, DataError):  # a line the reader could not read counts like a row that does not parse
                raise raw
            yield process_row(raw)
        except DataError as err:
            located = err.at(source, line)
            skipped += 1
            if skipped > max_bad_rows:
                if max_bad_rows:
                    raise DataError(
                        f"more than {max_bad_rows} bad row(s); the last: {located}",
                        "Fix the data, or raise [data] max_bad_rows in params.toml.",
                        path=source,
                    ) from None
                raise located from None
            if on_bad:
                on_bad(located)


def field_text(raw: Mapping[str, object], column: str) -> str:
    return str(raw.get(column, "")).strip()


def bad(column: str, value: str, hint: str) -> DataError:
    return DataError("cannot parse the value", hint, column=column, value=value)


def integer(raw: Mapping[str, object], column: str) -> int:
    text = field_text(raw, column)
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if number.is_integer():
            return int(number)
        raise bad(column, text, f"{column} must be a whole number.") from None


def number(raw: Mapping[str, object], column: str) -> float:
    text = field_text(raw, column)
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise bad(column, text, f"{column} must be a finite number, e.g. 3 or 1.25.")
    return number


def when(raw: Mapping[str, object], column: str) -> date:
    text = field_text(raw, column)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise bad(column, text, f"{column} must be a real date written YYYY-MM-DD.") from None


def flag(raw: Mapping[str, object], column: str, allow_empty: bool = True) -> bool:
    text = field_text(raw, column)
    lowered = text.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE and (allow_empty or lowered):
        return False
    raise bad(column, text, f"{column} must be True/False or 1/0.")
