"""Process: type raw house sales (text) into rows; a bad value fails with its file and line. Pure."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Mapping

from cd4ml.errors import DataError
from cd4ml.problems.fields import bad, field_text as text, flag, integer, number, process_numbered, when
from cd4ml.problems.houses.schema import STYLES

Row = dict[str, object]


def process_row(raw: Mapping[str, object]) -> Row:
    """One raw sale typed: counts are whole numbers, sizes and prices positive, style one of STYLES."""
    style = text(raw, "style").lower()
    if style not in STYLES:
        raise bad("style", text(raw, "style"), f"style must be one of {', '.join(STYLES)}.")
    return {
        "sale_id": integer(raw, "sale_id"),
        "sale_date": when(raw, "sale_date"),
        "zipcode": text(raw, "zipcode"),
        "state": text(raw, "state"),
        "lot_size_sf": _at_least(raw, "lot_size_sf", 0.0),
        "beds": integer(raw, "beds"),
        "baths": _at_least(raw, "baths", 0.0),
        "year_built": integer(raw, "year_built"),
        "kitchen_refurbished": flag(raw, "kitchen_refurbished", allow_empty=False),
        "square_feet": _positive(raw, "square_feet"),
        "pool": flag(raw, "pool", allow_empty=False),
        "parking": integer(raw, "parking"),
        "style": style,
        "multi_family": flag(raw, "multi_family", allow_empty=False),
        "price": _positive(raw, "price"),
    }


def process_rows(
    raws: Iterable[tuple[int, Mapping[str, object] | DataError]], source: str, max_bad_rows: int = 0,
    on_bad: Callable[[DataError], None] | None = None,
) -> Iterator[Row]:
    """Type (line, raw sale) pairs; one pass; bad rows fail it, or are skipped up to max_bad_rows."""
    return process_numbered(raws, process_row, source, max_bad_rows, on_bad)


def _at_least(raw: Mapping[str, object], column: str, low: float) -> float:
    value = number(raw, column)
    if value < low:
        raise bad(column, text(raw, column), f"{column} must be >= {low:g}.")
    return value


def _positive(raw: Mapping[str, object], column: str) -> float:
    value = number(raw, column)
    if value <= 0:
        raise bad(column, text(raw, column), f"{column} must be > 0.")
    return value
