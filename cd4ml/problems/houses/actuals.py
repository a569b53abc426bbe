"""Actual sales of the houses the server was asked about, for `generate-data --problem houses
--actuals-for EVENTS`: what monitoring's live accuracy scores and `feedback` adds to the data.

    summary = write_actuals(Path("data/predictions.jsonl"), Path("data/houses-actuals"), seed=42)

Each distinct sale_id of the houses prediction events (the latest request of a sale asked more
than once, as live accuracy scores the latest forecast) is sold at a price drawn by the
generator's own process (generate.log_price: the zip code's level in the seed's zip-code table,
log price linear in log square feet, the noise), its noise drawn from (seed, sale_id), so a sale
keeps its price whichever others are asked. Written in the sales layout: sales.csv, the seed's
zipcodes.csv beside it (so the houses reader reads the folder as a data source) and expected.csv.
Other problems' events are passed over; malformed lines and houses events whose request does not
parse are skipped and counted; a zip code not in the seed's table is skipped and counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from cd4ml.errors import DataError
from cd4ml.problems.houses import schema
from cd4ml.problems.houses.generate import NOISE_SIGMA, expected_prices, log_price, make_zipcodes, sale_prices
from cd4ml.problems.houses.serving import SERVING
from cd4ml.request_fields import BadInput

_NOISE_STREAM = 3  # the generator's random streams: 1 zip codes, 2 sales; 3 the actual sales of requests


def asked_sales(lines: Iterable[str]) -> tuple[list[dict[str, Any]], int]:
    """The latest request of each sale_id in houses prediction events (JSONL lines, as
    cd4ml/events.py writes them), checked as the server checks them; and how many lines were
    malformed. Pure."""
    latest: dict[str, tuple[str, int, dict[str, Any]]] = {}
    malformed = 0
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            malformed += 1
            continue
        if not isinstance(event, dict):
            malformed += 1
            continue
        if event.get("problem") != SERVING.problem or event.get("event") != "prediction":
            continue
        try:
            request = SERVING.parse(_Query({k: _text(event[k]) for k in SERVING.fields if k in event}), None)
        except BadInput:
            malformed += 1
            continue
        stamp = str(event.get("@timestamp", ""))
        seen = latest.get(request["sale_id"])
        if seen is None or (stamp, number) >= seen[:2]:
            latest[request["sale_id"]] = (stamp, number, request)
    return [entry[2] for entry in latest.values()], malformed


def price_sales(requests: list[dict[str, Any]], zipcodes: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, int]:
    """The requests as sales (the sales columns, and expected_price) priced by the generator's
    process in this zip-code table (make_zipcodes(seed)), in date order; and how many were
    skipped for a zip code the table lacks. Pure."""
    levels = zipcodes.set_index("zipcode")["level"]
    known = [r for r in requests if r["zipcode"] in levels.index]
    sales = pd.DataFrame(known, columns=[c for c in schema.SALES_COLUMNS if c != "price"])
    sales["sale_id"] = sales["sale_id"].astype(np.int64)
    sales = sales.sort_values(["sale_date", "sale_id"], kind="stable").reset_index(drop=True)
    mu = log_price(sales, levels.reindex(sales["zipcode"]).to_numpy(dtype=float))
    noise = np.array([np.random.default_rng([seed, _NOISE_STREAM, int(i)]).normal(0, NOISE_SIGMA)
                      for i in sales["sale_id"]])
    sales["price"] = sale_prices(mu, noise).astype(np.int64)
    sales["expected_price"] = expected_prices(mu)
    return sales, len(requests) - len(known)


def write_actuals(events: Path, out: Path, seed: int) -> dict:
    """Write the actual sales of the houses asked about in the event log into out (see the module
    doc); {"rows", "first", "last" (sale dates), "unknown_zipcodes", "malformed"}."""
    events = Path(events)
    if not events.is_file():
        raise DataError(f"{events} does not exist: no house prices asked for to write the actual sales of",
                        "Serve the houses model and ask it for prices first, or name the event log "
                        "(data/predictions.jsonl).")
    with events.open("r", encoding="utf-8", errors="replace") as lines:
        requests, malformed = asked_sales(lines)
    if not requests:
        raise DataError(f"{events} holds no houses prediction events",
                        "Ask the houses model for prices first (/houses/ or /houses/prediction).")
    zipcodes = make_zipcodes(seed)
    sales, unknown = price_sales(requests, zipcodes, seed)
    if sales.empty:
        raise DataError(f"none of the {len(requests)} sale(s) asked for in {events} is in a zip code of seed {seed}'s table",
                        "Give the seed the houses data was generated with (--seed).")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    zipcodes[list(schema.ZIPCODES_COLUMNS)].to_csv(out / schema.ZIPCODES_FILE, index=False)
    sales[list(schema.SALES_COLUMNS)].to_csv(out / schema.SALES_FILE, index=False)
    sales[list(schema.EXPECTED_COLUMNS)].to_csv(out / schema.EXPECTED_FILE, index=False)
    return {"rows": len(sales), "first": sales["sale_date"].iloc[0], "last": sales["sale_date"].iloc[-1],
            "unknown_zipcodes": unknown, "malformed": malformed}


def _text(value: Any) -> str:
    """An event field's JSON value as the query text the server parsed it from."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Query(dict):
    """An event's fields as the query parameters Serving.parse reads (request_fields: getlist)."""

    def getlist(self, name: str) -> list[str]:
        return [self[name]] if name in self else []
