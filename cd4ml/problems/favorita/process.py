"""Process and filter: type raw rows, clip returns, keep the chosen stores and items. Pure."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Mapping

from cd4ml.errors import DataError
from cd4ml.problems.fields import flag as _flag, integer as _integer, number as _number, process_numbered, when as _date

Row = dict[str, object]


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
    """Type and clean (line, raw row) pairs with process_row; one pass (fields.process_numbered)."""
    return process_numbered(raws, process_row, source, max_bad_rows, on_bad)


def filter_rows(
    rows: Iterable[Row], items: frozenset[int] | None, stores: frozenset[int] | None
) -> Iterator[Row]:
    """The rows of the chosen items and stores (None chooses all)."""
    for row in rows:
        if (items is None or row["item_nbr"] in items) and (stores is None or row["store_nbr"] in stores):
            yield row
