"""The forecast request both the page and the API answer: parse it, forecast it, record its event.

parse_forecast_request checks the query parameters against the deployed model and raises BadInput
naming the field; forecast answers a checked request with that model; record emits its event.
web.py (the form) and api.py (/prediction) both use these three, so they cannot disagree.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import request

from cd4ml.events import EventSink, prediction_event
from cd4ml.serving.model_store import LoadedModel
from cd4ml.serving.services import STARTED

FIELDS = ("date", "item_nbr", "store_nbr", "onpromotion")
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"[0-9]{1,9}")
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
_SHOWN_ITEMS = 5


class BadInput(Exception):
    """A request parameter is missing or wrong; the message says how to fix it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ForecastRequest:
    date: str  # YYYY-MM-DD
    item_nbr: int
    store_nbr: int
    onpromotion: bool


def parse_forecast_request(args: Any, model: LoadedModel, strict: bool = True) -> ForecastRequest:
    """Check the query parameters against the deployed model; raise BadInput naming the field.

    strict: unknown parameters are errors too (the API); the page ignores them.
    """
    if strict:
        for name in args:
            if name not in FIELDS:
                raise BadInput(name, f"Unknown parameter {_shown(name)}; this endpoint takes {', '.join(FIELDS)}.")
    day = _parse_date(_one(args, "date", "date=2016-08-01"))
    item = _parse_item(_one(args, "item_nbr", "item_nbr=99197"), model)
    store_text = _one(args, "store_nbr", "store_nbr=47", required=model.default_store is None)
    store = model.default_store if store_text is None else _parse_store(store_text, model)
    promo_text = _one(args, "onpromotion", "onpromotion=false", required=False)
    promo = False if promo_text is None else _parse_bool(promo_text)
    return ForecastRequest(day, item, store, promo)  # type: ignore[arg-type]


def _one(args: Any, name: str, example: str, required: bool = True) -> str | None:
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


def _parse_date(text: str) -> str:
    if not _ISO_DATE.fullmatch(text):
        raise BadInput("date", f"date must be a date written YYYY-MM-DD, e.g. 2016-08-01; got {_shown(text)}.")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInput("date", f"date {text} is not a day of the calendar; check the month and day.") from None
    if not EARLIEST <= day <= LATEST:
        raise BadInput("date", f"date must be between {EARLIEST} and {LATEST}; got {text}.")
    return text


def _parse_item(text: str, model: LoadedModel) -> int:
    if not _NUMBER.fullmatch(text):
        raise BadInput("item_nbr", f"item_nbr must be a product number (digits only), e.g. 99197; got {_shown(text)}.")
    item = int(text)
    if item not in model.catalogue:
        known = ", ".join(_label(row) for row in model.items[:_SHOWN_ITEMS])
        raise BadInput(
            "item_nbr",
            f"item_nbr {item} is not a product the deployed model (version {model.version}) knows. "
            f"Known products include {known}; GET /items lists all {len(model.catalogue)}.",
        )
    return item


def _label(row: dict[str, Any]) -> str:
    generic = row["name"].startswith(f"Item {row['item_nbr']}")
    return str(row["item_nbr"]) if generic else f"{row['item_nbr']} ({row['name']})"


def _parse_store(text: str, model: LoadedModel) -> int:
    if not _NUMBER.fullmatch(text):
        raise BadInput("store_nbr", f"store_nbr must be a store number (digits only), e.g. 47; got {_shown(text)}.")
    store = int(text)
    if model.stores and store not in model.stores:
        known = ", ".join(map(str, sorted(model.stores)[:20]))
        raise BadInput("store_nbr", f"store_nbr {store} is not a store the deployed model knows; use one of {known}.")
    return store


def _parse_bool(text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise BadInput("onpromotion", f"onpromotion must be true or false; got {_shown(text)}.") from None


def _shown(text: str, limit: int = 40) -> str:
    """A user's value, quoted and cut short, for an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def forecast(model: LoadedModel, req: ForecastRequest) -> dict[str, Any]:
    """The forecast for one checked request, with the version that made it."""
    value = model.predict_one(req.date, req.item_nbr, req.store_nbr, req.onpromotion)
    return {
        "prediction": value, "item_nbr": req.item_nbr, "item_name": str(model.catalogue[req.item_nbr].get("name", req.item_nbr)),
        "date": req.date, "store_nbr": req.store_nbr, "onpromotion": req.onpromotion,
        "model_version": model.version, "run_id": model.run_id,
    }


def record(sink: EventSink, answer: dict[str, Any]) -> None:
    """Emit the event of an answered forecast, once its response is ready. Its latency_ms is the time
    this worker spent on the request: from the moment it handed the parsed HTTP request to the app
    (STARTED, stamped by cd4ml.serving.app) until now, so routing, checking the input, the forecast and
    building the response body. Not in it: the network, and the wait in the listen queue for a worker."""
    started = request.environ.get(STARTED, time.perf_counter())
    sink.emit(prediction_event(**{k: answer[k] for k in EVENT_FIELDS},
                               latency_ms=(time.perf_counter() - started) * 1000.0))


EVENT_FIELDS = ("date", "item_nbr", "item_name", "store_nbr", "onpromotion", "prediction", "model_version", "run_id")
