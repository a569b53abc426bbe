"""Checking one field of a forecast request: what every problem's request schema builds on.

Pure (no Flask): `args` is anything with getlist(name) and iteration over names, such as
Werkzeug's MultiDict. A problem's serving module (cd4ml/problems/*/serving.py) parses its fields
with these and raises BadInput naming the field; the server answers it with a 400.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterable

NUMBER = re.compile(r"[0-9]{1,9}")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


class BadInput(Exception):
    """A request parameter is missing or wrong; the message says how to fix it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def no_unknown(args: Any, fields: Iterable[str]) -> None:
    """Raise BadInput for the first parameter that is not one of fields."""
    allowed = tuple(fields)
    for name in args:
        if name not in allowed:
            raise BadInput(name, f"Unknown parameter {shown(name)}; this endpoint takes {', '.join(allowed)}.")


def one(args: Any, name: str, example: str, required: bool = True) -> str | None:
    """The one stripped value of `name` (None when optional and absent); BadInput when missing,
    given twice or empty. example: e.g. "date=2016-08-01", for the message."""
    values = args.getlist(name)
    if not values:
        if required:
            raise BadInput(name, f"{name} is required, e.g. {example}.")
        return None
    if len(values) > 1:
        raise BadInput(name, f"Give {name} once; got it {len(values)} times.")
    value = values[0].strip()
    if not value:
        fix = f"give a value, e.g. {example}" + ("." if required else ", or leave it out.")
        raise BadInput(name, f"{name} is empty; {fix}")
    return value


def iso_date(text: str, name: str, example: str, earliest: date, latest: date) -> str:
    """A calendar day written YYYY-MM-DD, between earliest and latest; returned as given."""
    if not ISO_DATE.fullmatch(text):
        raise BadInput(name, f"{name} must be a date written YYYY-MM-DD, e.g. {example}; got {shown(text)}.")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInput(name, f"{name} {text} is not a day of the calendar; check the month and day.") from None
    if not earliest <= day <= latest:
        raise BadInput(name, f"{name} must be between {earliest} and {latest}; got {text}.")
    return text


def boolean(text: str, name: str) -> bool:
    """true/false, 1/0, yes/no, on/off (any case)."""
    try:
        return BOOLEANS[text.lower()]
    except KeyError:
        raise BadInput(name, f"{name} must be true or false; got {shown(text)}.") from None


def number(text: str, name: str, what: str, example: str, low: float, high: float) -> float:
    """A decimal number in [low, high]; `what` says what it is ("the living area in square feet")."""
    try:
        value = float(text)
    except ValueError:
        raise BadInput(name, f"{name} must be {what}, a number such as {example}; got {shown(text)}.") from None
    if not low <= value <= high:  # NaN fails this too
        raise BadInput(name, f"{name} must be between {low:g} and {high:g}; got {shown(text)}.")
    return value


def shown(text: str, limit: int = 40) -> str:
    """A user's value, quoted and cut short, for an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "…")
