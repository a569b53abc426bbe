"""Features: what the model sees of one forecast request (a date, a product, a store). Pure.

The SalesFeatures transformer is the first step of the model's sklearn Pipeline, so the
product catalogue and the calendar of days off travel inside the model artifact: training
and serving compute features with the same code and the same facts.
"""

from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EPOCH_WEEKDAY = 3  # 1970-01-01, day 0 of day numbers (Arrow's date32), was a Thursday
REQUEST_COLUMNS = ("date", "item_nbr", "store_nbr", "onpromotion")

Catalogue = Mapping[int, Mapping[str, Any]]


def is_payday(day: date) -> bool:
    """Public-sector wages are paid on the 15th and on the last day of the month."""
    return day.day == 15 or day.day == _calendar.monthrange(day.year, day.month)[1]


def as_date(value: Any) -> date:
    """A date from a date, a datetime (or pandas Timestamp) or an ISO string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def feature_row(request: Mapping[str, Any], catalogue: Catalogue, days_off: frozenset[date]) -> dict[str, Any]:
    """The features of one request: strings are one-hot encoded later, numbers pass through."""
    day = as_date(request["date"])
    item = int(request["item_nbr"])
    facts = catalogue.get(item, {})
    return {
        "item_nbr": str(item),
        "store_nbr": str(int(request["store_nbr"])),
        "family": facts.get("family", ""),
        "class": facts.get("class", ""),
        "perishable": 1.0 if facts.get("perishable") else 0.0,
        "dayofweek": WEEKDAYS[day.weekday()],
        "month": float(day.month),
        "day": float(day.day),
        "dayofyear": float(day.timetuple().tm_yday),
        "payday": 1.0 if is_payday(day) else 0.0,
        "dayoff": 1.0 if day in days_off else 0.0,
        "onpromotion": 1.0 if request.get("onpromotion") else 0.0,
    }


# --- the date features of many rows at once (the scale path) -----------------------------------

_EPOCH = date(1970, 1, 1).toordinal()


def days_of(dates: Iterable[date]) -> np.ndarray:
    """Dates as sorted int32 day numbers (days since 1970-01-01, Arrow's date32)."""
    return np.array(sorted(d.toordinal() - _EPOCH for d in dates), dtype=np.int32)


def date_of(day: int) -> date:
    """A day number as a date."""
    return date.fromordinal(int(day) + _EPOCH)


def calendar_columns(days: np.ndarray, days_off: np.ndarray) -> dict[str, np.ndarray]:
    """feature_row's date features for int32 day numbers: dayofweek (0 = Monday), month, day,
    dayofyear, payday (the 15th or the month's last day) and dayoff, each computed once per
    distinct date."""
    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        empty = np.zeros(0)
        return {name: empty for name in ("dayofweek", "month", "day", "dayofyear", "payday", "dayoff")}
    first, last = int(days.min()), int(days.max())
    span = np.arange(first, last + 1, dtype=np.int64)
    d = span.astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    year_start = d.astype("datetime64[Y]")
    day = (d - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    month_length = ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(np.int64)
    table = {
        "dayofweek": (span + EPOCH_WEEKDAY) % 7,
        "month": (month_start - year_start.astype("datetime64[M]")).astype(np.int64) + 1,
        "day": day,
        "dayofyear": (d - year_start.astype("datetime64[D]")).astype(np.int64) + 1,
        "payday": (day == 15) | (day == month_length),
        "dayoff": np.isin(span, days_off),
    }
    at = days - first
    return {name: values[at] for name, values in table.items()}


def build_catalogue(rows: Iterable[Mapping[str, Any]], names: Mapping[int, str]) -> dict[int, dict[str, Any]]:
    """Each item's name, family, class and perishable flag, from processed rows."""
    catalogue: dict[int, dict[str, Any]] = {}
    for row in rows:
        item = int(row["item_nbr"])
        if item not in catalogue:
            catalogue[item] = {
                "name": names.get(item) or f"Item {item} ({row['family']})",
                "family": row["family"],
                "class": row["class"],
                "perishable": bool(row["perishable"]),
            }
    return catalogue


class SalesFeatures(TransformerMixin, BaseEstimator):
    """Requests (dicts or a DataFrame with date, item_nbr, store_nbr[, onpromotion]) to feature dicts.

    catalogue: {item_nbr: {"name", "family", "class", "perishable"}} of the products the model knows.
    calendar: the days off, as ISO date strings.
    period: the first and last date of the data it was built from, as ISO strings (for servers
        that precompute forecasts, and for date pickers).
    """

    def __init__(
        self, catalogue: Catalogue | None = None, calendar: tuple[str, ...] = (), period: tuple[str, str] | None = None
    ) -> None:
        self.catalogue = catalogue
        self.calendar = calendar
        self.period = period

    def fit(self, X: Any = None, y: Any = None) -> "SalesFeatures":
        self.days_off_ = frozenset(date.fromisoformat(d) for d in self.calendar)
        return self

    def transform(self, X: Any) -> list[dict[str, Any]]:
        catalogue = self.catalogue or {}
        return [feature_row(request, catalogue, self.days_off_) for request in requests(X)]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "days_off_")


def requests(X: Any) -> Iterator[Mapping[str, Any]]:
    """The requests in X, a DataFrame or an iterable of dicts, one dict at a time."""
    if hasattr(X, "itertuples"):  # a pandas DataFrame
        columns = [c for c in REQUEST_COLUMNS if c in X.columns]
        for values in X[columns].itertuples(index=False, name=None):
            yield dict(zip(columns, values))
    else:
        yield from X
