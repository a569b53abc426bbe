"""Favorita behind the server: its request (date, item_nbr, store_nbr, onpromotion), form, event fields.

The server (cd4ml/serving/) asks FavoritaProblem.serving, a FavoritaServing, for everything about the
request: parse() checks the query parameters against the deployed model and raises BadInput naming
the field; answer() forecasts a checked request; facts() derives once per loaded model what the form
offers (products, stores, the data's period) and a forecast grid that makes most requests a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

from cd4ml.problems.favorita.schema import WORKSHOP_STORE
from cd4ml.request_fields import NUMBER, BadInput, boolean, iso_date, no_unknown, one, shown

FIELDS = ("date", "item_nbr", "store_nbr", "onpromotion")
EVENT_FIELDS = ("date", "item_nbr", "item_name", "store_nbr", "onpromotion")
JOIN_KEY = ("date", "item_nbr", "store_nbr")
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
FAR_DAYS = 365  # a date further than this outside the model's data gets a note on the form
_SHOWN_ITEMS = 5
# Forecasts are deterministic per model, so repeated questions are answered from a small cache
# that lives and dies with its loaded model: a swap starts with an empty cache, no key can leak
# across versions. 8,192 entries of (date, item, store, promo) -> float cost about 1.5 MB.
PREDICTION_CACHE_SIZE = 8192
# The largest forecast grid precomputed at load (items x stores x days x promotion); about 40 ms
# per 10,000 cells, once per model version.
GRID_MAX_CELLS = 20_000


@dataclass(frozen=True)
class ForecastRequest:
    date: str  # YYYY-MM-DD
    item_nbr: int
    store_nbr: int
    onpromotion: bool


@dataclass(frozen=True)
class Facts:
    """What a loaded Favorita model offers, derived once when it is loaded."""

    catalogue: Mapping[int, Mapping[str, Any]]  # from model.named_steps["features"].catalogue
    stores: frozenset[int]  # stores the encoder has seen
    default_store: int | None  # what a request may leave out
    items: tuple[dict[str, Any], ...]  # the products, for the form and /items
    period: tuple[str, str] | None  # first and last day of its data, ISO
    predict_one: Callable[[str, int, int, bool], float]


class FavoritaServing:
    """The Serving of cd4ml.problems for Favorita."""

    problem = "favorita"
    title = "Sales forecast (Favorita)"
    fields = FIELDS
    event_fields = EVENT_FIELDS
    # Elasticsearch field families of the event fields (elasticsearch/index-template.json maps them).
    event_types = {"date": "date", "item_nbr": "number", "item_name": "keyword", "store_nbr": "number",
                   "onpromotion": "boolean"}
    join_key = JOIN_KEY
    drift_label = "item_name"
    requested_date = "date"
    form_template = "index.html"
    heading = "How many will we sell?"
    example = "date=2016-08-01&item_nbr=99197"

    def shown(self, prediction: float) -> str:
        return f"{prediction:.1f} units"

    def facts(self, model: Any, catalogue: Any = None) -> Facts:
        features = getattr(model, "named_steps", {}).get("features")
        catalogue = features.catalogue if catalogue is None else catalogue
        stores = known_stores(model)
        period = getattr(features, "period", None)
        items = tuple(sorted(
            ({"item_nbr": int(item), "name": str(facts.get("name", item)), "family": str(facts.get("family", ""))}
             for item, facts in catalogue.items()),
            key=lambda row: (row["name"].startswith("Item "), row["name"].lower(), row["item_nbr"]),
        ))
        grid = forecast_grid(model, catalogue, stores)
        return Facts(catalogue, stores, default_store(stores), items, tuple(period) if period else None,
                     _cached_predictor(model, PREDICTION_CACHE_SIZE, grid))

    def parse(self, args: Any, loaded: Any, strict: bool = True) -> ForecastRequest:
        """Check the query parameters against the deployed model; strict: unknown ones are errors too
        (the API); the page ignores them."""
        if strict:
            no_unknown(args, FIELDS)
        day = iso_date(one(args, "date", "date=2016-08-01"), "date", "2016-08-01", EARLIEST, LATEST)
        item = _parse_item(one(args, "item_nbr", "item_nbr=99197"), loaded)
        store_text = one(args, "store_nbr", "store_nbr=47", required=loaded.default_store is None)
        store = loaded.default_store if store_text is None else _parse_store(store_text, loaded)
        promo_text = one(args, "onpromotion", "onpromotion=false", required=False)
        promo = False if promo_text is None else boolean(promo_text, "onpromotion")
        return ForecastRequest(day, item, store, promo)  # type: ignore[arg-type]

    def answer(self, loaded: Any, req: ForecastRequest) -> dict[str, Any]:
        value = loaded.predict_one(req.date, req.item_nbr, req.store_nbr, req.onpromotion)
        return {
            "prediction": value, "item_nbr": req.item_nbr,
            "item_name": str(loaded.catalogue[req.item_nbr].get("name", req.item_nbr)),
            "date": req.date, "store_nbr": req.store_nbr, "onpromotion": req.onpromotion,
        }

    def asked(self, args: Any) -> bool:
        """Whether the page's query asks for a forecast (else it shows the empty form)."""
        return "date" in args or "item_nbr" in args

    def form_values(self, args: Any, loaded: Any) -> dict[str, Any]:
        values = {
            "date": args.get("date", default_day(loaded.period, date.today())),
            "item_nbr": args.get("item_nbr", ""),
            "store_nbr": args.get("store_nbr", str(loaded.default_store or "")),
            "onpromotion": args.get("onpromotion", "").lower() in ("true", "on", "1", "yes"),
        }
        return {"values": values, "earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat(),
                "note": date_note(values["date"], loaded.period), "far_days": FAR_DAYS}

    def openapi(self) -> str:
        return openapi_text()

    def actual(self, row: Mapping[str, Any]) -> tuple[tuple, float, bool]:
        """A processed sales row as live accuracy joins it: its key, unit sales, perishable."""
        return (row["date"].isoformat(), row["item_nbr"], row["store_nbr"]), row["unit_sales"], row["perishable"]


@lru_cache(maxsize=1)
def openapi_text() -> str:
    """The OpenAPI 3 description of Favorita's API (openapi.json beside this module), read once."""
    return Path(__file__).with_name("openapi.json").read_text(encoding="utf-8")


def default_day(period: tuple[str, str] | None, today: date) -> str:
    """The form's first date: the day after the model's data ends (the first day it truly forecasts)."""
    return (date.fromisoformat(period[1]) + timedelta(days=1)).isoformat() if period else today.isoformat()


def date_note(day: str, period: tuple[str, str] | None) -> str | None:
    """A note when `day` lies more than FAR_DAYS outside the model's data, else None."""
    try:
        asked = date.fromisoformat(day)
    except ValueError:
        return None
    if not period:
        return None
    first, last = date.fromisoformat(period[0]), date.fromisoformat(period[1])
    if asked > last + timedelta(days=FAR_DAYS):
        return (f"{day} is {(asked - last).days:,} days after the model's data ends ({last}): the forecast "
                "follows the calendar and the products' averages, not recent sales.")
    if asked < first - timedelta(days=FAR_DAYS):
        return f"{day} is {(first - asked).days:,} days before the model's data begins ({first})."
    return None


def _parse_item(text: str, loaded: Any) -> int:
    if not NUMBER.fullmatch(text):
        raise BadInput("item_nbr", f"item_nbr must be a product number (digits only), e.g. 99197; got {shown(text)}.")
    item = int(text)
    if item not in loaded.catalogue:
        known = ", ".join(_label(row) for row in loaded.items[:_SHOWN_ITEMS])
        raise BadInput(
            "item_nbr",
            f"item_nbr {item} is not a product the deployed model (version {loaded.version}) knows. "
            f"Known products include {known}; GET /items lists all {len(loaded.catalogue)}.",
        )
    return item


def _label(row: dict[str, Any]) -> str:
    generic = row["name"].startswith(f"Item {row['item_nbr']}")
    return str(row["item_nbr"]) if generic else f"{row['item_nbr']} ({row['name']})"


def _parse_store(text: str, loaded: Any) -> int:
    if not NUMBER.fullmatch(text):
        raise BadInput("store_nbr", f"store_nbr must be a store number (digits only), e.g. 47; got {shown(text)}.")
    store = int(text)
    if loaded.stores and store not in loaded.stores:
        known = ", ".join(map(str, sorted(loaded.stores)[:20]))
        raise BadInput("store_nbr", f"store_nbr {store} is not a store the deployed model knows; use one of {known}.")
    return store


def default_store(stores: frozenset[int]) -> int | None:
    """The store a request may leave out: the only one known, else the workshop's store 47 if known
    (or if the model cannot tell), else none: the request must name one."""
    if len(stores) == 1:
        return next(iter(stores))
    if not stores or WORKSHOP_STORE in stores:
        return WORKSHOP_STORE
    return None


def known_stores(model: Any) -> frozenset[int]:
    """The store numbers the model's DictVectorizer saw in training (empty when it cannot tell)."""
    steps = getattr(model, "named_steps", {})
    vocabulary = getattr(steps.get("encode"), "vocabulary_", None) or {}
    found = set()
    for name in vocabulary:
        prefix, _, value = str(name).partition("=")
        if prefix == "store_nbr" and value.isdigit():
            found.add(int(value))
    return frozenset(found)


def forecast_grid(model: Any, catalogue: Mapping[int, Any], stores: frozenset[int]) -> dict[tuple, float]:
    """Every forecast of the model's products and stores, with and without promotion, from the
    first day of its data to a year after the last, predicted in one batch when a model is
    loaded: a request in that range is a dictionary lookup. Empty when the grid would exceed
    GRID_MAX_CELLS (then requests use the model, memoised) or the model does not know its period."""
    period = getattr(getattr(model, "named_steps", {}).get("features"), "period", None)
    if not period or not stores:
        return {}
    first, last = date.fromisoformat(period[0]), date.fromisoformat(period[1]) + timedelta(days=365)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    if len(days) * len(catalogue) * len(stores) * 2 > GRID_MAX_CELLS:
        return {}
    keys = [(day, int(item), store, promo) for item in catalogue for store in sorted(stores)
            for promo in (False, True) for day in days]
    requests = [{"date": d, "item_nbr": i, "store_nbr": s, "onpromotion": p} for d, i, s, p in keys]
    return dict(zip(keys, map(float, model.predict(requests))))


def _cached_predictor(model: Any, size: int, grid: Mapping[tuple, float]) -> Callable[[str, int, int, bool], float]:
    """A forecast from the precomputed grid, else model.predict on one request dict, memoised;
    the cache holds the model, not the loaded model."""

    @lru_cache(maxsize=size)
    def from_model(day: str, item_nbr: int, store_nbr: int, onpromotion: bool) -> float:
        request = {"date": day, "item_nbr": item_nbr, "store_nbr": store_nbr, "onpromotion": onpromotion}
        return float(model.predict([request])[0])

    def predict_one(day: str, item_nbr: int, store_nbr: int, onpromotion: bool) -> float:
        found = grid.get((day, item_nbr, store_nbr, onpromotion))
        return found if found is not None else from_model(day, item_nbr, store_nbr, onpromotion)

    return predict_one


SERVING = FavoritaServing()
