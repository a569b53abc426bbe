"""Process and filter: type raw rows, clip returns, keep the chosen stores and items. Pure."""

from __future__ import annotations

import math
from datetime import date
from typing import Callable, Iterable, Iterator, Mapping

from cd4ml.errors import DataError

Row = dict[str, object]

_TRUE = frozenset({"true", "1", "t", "yes"})
_FALSE = frozenset({"false", "0", "f", "no", ""})


def process_row(raw: Mapping[str, object]) -> Row:
    """One raw row typed and cleaned; returns (negative sales) are clipped to zero."""
    return {
        "id": _integer(raw, "id") if str(raw.get("id", "")).strip() else None,
        "date": _date(raw, "date"),
        "store_nbr": _integer(raw, "store_nbr"),
        "item_nbr": _integer(raw, "item_nbr"),
        "unit_sales": max(_number(raw, "unit_sales"), 0.0),
        "onpromotion": _flag(raw, "onpromotion"),
        "family": str(raw["family"]).strip(),
        "class": str(raw["class"]).strip(),
        "perishable": _flag(raw, "perishable", allow_empty=False),
        "dayoff": _flag(raw, "dayoff", allow_empty=False),
    }


def process_item(raw: Mapping[str, object]) -> Row:
    """The item columns of a raw row (or of an items.csv row) typed, as process_row types them."""
    return {
        "family": str(raw["family"]).strip(),
        "class": str(raw["class"]).strip(),
        "perishable": _flag(raw, "perishable", allow_empty=False),
    }


def process_rows(
    raws: Iterable[tuple[int, Mapping[str, object] | DataError]],
    source: str,
    max_bad_rows: int = 0,
    on_bad: Callable[[DataError], None] | None = None,
) -> Iterator[Row]:
    """Type and clean (line, raw row) pairs; one pass. Bad rows (and lines the reader could not
    read, which come as their DataError) fail the stream, or are skipped and reported through
    on_bad while there are at most max_bad_rows of them."""
    bad = 0
    for line, raw in raws:
        try:
            if isinstance(raw, DataError):  # a line the reader could not read counts like a row that does not parse
                raise raw
            yield process_row(raw)
        except DataError as err:
            located = err.at(source, line)
            bad += 1
            if bad > max_bad_rows:
                if max_bad_rows:
                    raise DataError(
                        f"more than {max_bad_rows} bad row(s); the last: {located}",
                        "Fix the data, or raise [data] max_bad_rows in params.toml.",
                        path=source,
                    ) from None
                raise located from None
            if on_bad:
                on_bad(located)


def filter_rows(
    rows: Iterable[Row], items: frozenset[int] | None, stores: frozenset[int] | None
) -> Iterator[Row]:
    """The rows of the chosen items and stores (None chooses all)."""
    for row in rows:
        if (items is None or row["item_nbr"] in items) and (stores is None or row["store_nbr"] in stores):
            yield row


def _text(raw: Mapping[str, object], column: str) -> str:
    return str(raw.get(column, "")).strip()


def _bad(column: str, value: str, hint: str) -> DataError:
    return DataError("cannot parse the value", hint, column=column, value=value)


def _integer(raw: Mapping[str, object], column: str) -> int:
    text = _text(raw, column)
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if number.is_integer():
            return int(number)
        raise _bad(column, text, f"{column} must be a whole number.") from None


def _number(raw: Mapping[str, object], column: str) -> float:
    text = _text(raw, column)
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise _bad(column, text, f"{column} must be a finite number, e.g. 3 or 1.25.")
    return number


def _date(raw: Mapping[str, object], column: str) -> date:
    text = _text(raw, column)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _bad(column, text, f"{column} must be a real date written YYYY-MM-DD.") from None


def _flag(raw: Mapping[str, object], column: str, allow_empty: bool = True) -> bool:
    text = _text(raw, column)
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE and (allow_empty or lowered):
        return False
    raise _bad(column, text, f"{column} must be True/False or 1/0.")
