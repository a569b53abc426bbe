"""The houses problem behind the server: its request (one sale's columns), form, event fields, join key.

A request holds the columns of a sale as the generator writes them (generate.py, process.py):
sale_id (a whole number), sale_date, zipcode, lot_size_sf, beds, baths, year_built,
kitchen_refurbished, square_feet, pool, parking (a count of spaces), style, multi_family. Not
the state: the fitted model knows each training zip code's (features.HouseFeatures), so the
server needs no data files. The target is price (dollars); live accuracy joins actual sale
prices on sale_id, which the request and its event carry as text ("42", the join key's form:
HousesServing.actual). HousesProblem wires it: `serving = SERVING`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from cd4ml.request_fields import BadInput, boolean, iso_date, no_unknown, number, one, shown

EARLIEST, LATEST = date(1900, 1, 1), date(2100, 12, 31)
_ZIPCODE = re.compile(r"[0-9]{5}")
_SALE_ID = re.compile(r"[0-9]{1,12}")
_WORD = re.compile(r"[A-Za-z0-9_ -]{1,40}")


@dataclass(frozen=True)
class Field:
    """One request field: its form input and its checks. kind: number, integer, boolean, date, zipcode,
    word (a category), id (a sale's number, kept as text). low/high: a number's range; example: a
    valid value of the workshop data (data/houses, default seed), for messages and the form."""

    name: str
    label: str
    kind: str
    example: str
    low: float | None = None
    high: float | None = None
    required: bool = True
    default: str = ""


FIELDS = (
    Field("sale_id", "Sale id", "id", "100001"),  # the workshop data's sales are 1..100000: a new one
    Field("sale_date", "Sale date", "date", "2018-01-15"),  # the data ends 2017-12-31
    Field("zipcode", "Zip code", "zipcode", "10004"),  # in California, in zipcodes.csv of the default seed
    Field("square_feet", "Living area (sq ft)", "number", "1850", 100, 50_000),
    Field("lot_size_sf", "Lot size (sq ft)", "number", "6000", 0, 10_000_000),
    Field("beds", "Bedrooms", "integer", "3", 0, 30),
    Field("baths", "Bathrooms", "number", "2", 0, 30),
    Field("year_built", "Year built", "integer", "1978", 1700, 2100),
    Field("style", "Style", "word", "ranch"),
    Field("parking", "Parking spaces", "integer", "2", 0, 10),
    Field("kitchen_refurbished", "Kitchen refurbished", "boolean", "false", required=False, default="false"),
    Field("pool", "Pool", "boolean", "false", required=False, default="false"),
    Field("multi_family", "Multi-family", "boolean", "false", required=False, default="false"),
)
NAMES = tuple(f.name for f in FIELDS)
# Elasticsearch field families of the event fields (elasticsearch/index-template.json maps them).
EVENT_TYPES = {"sale_id": "keyword", "sale_date": "date", "zipcode": "keyword", "square_feet": "number",
               "lot_size_sf": "number", "beds": "number", "baths": "number", "year_built": "number",
               "style": "keyword", "parking": "number", "kitchen_refurbished": "boolean", "pool": "boolean",
               "multi_family": "boolean"}
_INPUT_TYPES = {"number": "number", "integer": "number", "date": "date", "boolean": "checkbox"}


@dataclass(frozen=True)
class Facts:
    """What a loaded houses model offers: the categories its encoder saw (empty: it cannot tell)."""

    choices: dict[str, tuple[str, ...]]  # style -> the values seen in training
    items: tuple = ()  # /items: the houses problem has no catalogue


class HousesServing:
    """The Serving of cd4ml.problems for the houses problem."""

    problem = "houses"
    title = "House prices"
    heading = "What will this house sell for?"
    fields = NAMES
    event_fields = NAMES
    event_types = EVENT_TYPES
    join_key = ("sale_id",)
    drift_label = None  # a zip code names itself
    requested_date = "sale_date"
    form_template = "form.html"
    example = "&".join(f"{f.name}={f.example}" for f in FIELDS if f.required)

    def facts(self, model: Any, catalogue: Any = None) -> Facts:
        return Facts(choices={name: seen for name in ("style",) if (seen := categories(model, name))})

    def parse(self, args: Any, loaded: Any, strict: bool = True) -> dict[str, Any]:
        if strict:
            no_unknown(args, NAMES)
        choices = getattr(loaded, "choices", {})
        request = {}
        for f in FIELDS:
            text = one(args, f.name, f"{f.name}={f.example}", required=f.required)
            request[f.name] = _parse(f, f.default if text is None else text, choices.get(f.name, ()))
        return request

    def answer(self, loaded: Any, request: dict[str, Any]) -> dict[str, Any]:
        """The model reads the columns it knows (features.REQUEST_COLUMNS, the state from the zip
        code) and ignores the rest (sale_id, sale_date)."""
        import pandas as pd  # deferred: the model's input is a one-row frame of the request's columns

        value = float(loaded.model.predict(pd.DataFrame([request]))[0])
        return {"prediction": value, **request}

    def asked(self, args: Any) -> bool:
        return any(name in args for name in NAMES)

    def form_values(self, args: Any, loaded: Any) -> dict[str, Any]:
        choices = getattr(loaded, "choices", {})
        values = {f.name: args.get(f.name, f.example if f.kind != "boolean" else "") for f in FIELDS}
        for f in FIELDS:
            if f.kind == "boolean":
                values[f.name] = args.get(f.name, "").lower() in ("true", "on", "1", "yes")
        form_fields = [
            {"name": f.name, "label": f.label, "choices": choices.get(f.name, ()),
             "kind": "select" if choices.get(f.name) else _INPUT_TYPES.get(f.kind, "text"),
             "min": f.low, "max": f.high, "step": "any" if f.kind == "number" else None}
            for f in FIELDS
        ]
        return {"values": values, "form_fields": form_fields}

    def shown(self, prediction: float) -> str:
        return f"${prediction:,.0f}"

    def openapi(self) -> str:
        return openapi_text()

    def actual(self, row: Any) -> tuple[tuple, float, bool]:
        """A processed sales row as live accuracy joins it: (sale_id,), the actual sale price, no weight."""
        return (str(row["sale_id"]),), row["price"], False


def categories(model: Any, name: str) -> tuple[str, ...]:
    """The values of a one-hot column `name` in the model's DictVectorizer vocabulary ("style=ranch")."""
    vocabulary = getattr(getattr(model, "named_steps", {}).get("encode"), "vocabulary_", None) or {}
    return tuple(sorted({value for key in vocabulary if (parts := str(key).partition("="))[0] == name
                         for value in [parts[2]] if value}))


def _parse(f: Field, text: str, choices: tuple[str, ...]) -> Any:
    if f.kind == "id":
        if not _SALE_ID.fullmatch(text) or int(text) == 0:
            raise BadInput(f.name, f"{f.name} must be a whole number of up to 12 digits, e.g. {f.example}; got {shown(text)}.")
        return str(int(text))  # "0042" and "42" are one sale: the join key's text of sale_id 42
    if f.kind == "date":
        return iso_date(text, f.name, f.example, EARLIEST, LATEST)
    if f.kind == "zipcode":
        if not _ZIPCODE.fullmatch(text):
            raise BadInput(f.name, f"{f.name} must be five digits, e.g. {f.example}; got {shown(text)}.")
        return text
    if f.kind == "boolean":
        return boolean(text, f.name)
    if f.kind == "word":
        if choices and text not in choices:
            raise BadInput(f.name, f"{f.name} {shown(text)} is not one the deployed model knows; use one of {', '.join(choices)}.")
        if not _WORD.fullmatch(text):
            raise BadInput(f.name, f"{f.name} must be a word such as {f.example}; got {shown(text)}.")
        return text
    value = number(text, f.name, f.label.lower(), f.example, f.low, f.high)  # type: ignore[arg-type]
    if f.kind == "integer":
        if value != int(value):
            raise BadInput(f.name, f"{f.name} must be a whole number, e.g. {f.example}; got {shown(text)}.")
        return int(value)
    return value


@lru_cache(maxsize=1)
def openapi_text() -> str:
    """The OpenAPI 3 description of the houses API at /houses/ (built from FIELDS)."""
    schemas = {"number": {"type": "number"}, "integer": {"type": "integer"}, "boolean": {"type": "boolean"},
               "date": {"type": "string", "format": "date"}, "zipcode": {"type": "string", "pattern": "^[0-9]{5}$"},
               "word": {"type": "string"}, "id": {"type": "string", "pattern": "^[0-9]{1,12}$"}}
    parameters = []
    for f in FIELDS:
        schema = dict(schemas[f.kind])
        if f.low is not None:
            schema.update(minimum=f.low, maximum=f.high)
        parameters.append({"name": f.name, "in": "query", "required": f.required, "description": f.label,
                           "schema": schema, "example": f.example})
    error = {"type": "object", "required": ["error", "field"],
             "properties": {"error": {"type": "string"}, "field": {"type": "string", "nullable": True}}}
    prediction = {"type": "object", "required": ["prediction", *NAMES, "model_version", "run_id"],
                  "properties": {"prediction": {"type": "number", "description": "the expected sale price, dollars"},
                                 **{p["name"]: p["schema"] for p in parameters},
                                 "model_version": {"type": "string"}, "run_id": {"type": "string"}}}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "CD4ML house prices", "version": "1",
                 "description": "The houses problem's forecast API; bad input is a 400 with {error, field}."},
        "servers": [{"url": "/houses"}],
        "paths": {"/prediction": {"get": {
            "operationId": "houses_prediction", "summary": "The expected sale price of one house",
            "parameters": parameters,
            "responses": {
                "200": {"description": "the forecast", "content": {"application/json": {"schema": prediction}}},
                "400": {"description": "bad input", "content": {"application/json": {"schema": error}}},
                "503": {"description": "no model deployed", "content": {"application/json": {"schema": error}}},
            }}}},
    }
    return json.dumps(document, indent=2)


SERVING = HousesServing()
