"""The sales-forecast page: a plain HTML form (GET /?date=...&item_nbr=...), rendered on the server.

The form works without JavaScript; static/forecast.js only saves the page reload by asking
/prediction itself. Bad input re-renders the form with the user's values and the error.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, render_template, request

from cd4ml.serving.api import EARLIEST, LATEST, BadInput, forecast, parse_forecast_request, record
from cd4ml.serving.app import DEPLOY_COMMANDS, services

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> Any:
    found = services()
    model = found.store.current  # read once, like the API
    if model is None:
        return render_template("no_model.html", reason=found.store.last_error,
                               commands=DEPLOY_COMMANDS.split(" && ")), 503
    args = request.args
    values = {
        "date": args.get("date", date.today().isoformat()),
        "item_nbr": args.get("item_nbr", ""),
        "store_nbr": args.get("store_nbr", str(model.default_store or "")),
        "onpromotion": args.get("onpromotion", "").lower() in ("true", "on", "1", "yes"),
    }
    result = error = None
    if "date" in args or "item_nbr" in args:
        try:
            result = forecast(model, parse_forecast_request(args, model, strict=False))
        except BadInput as err:
            error = err
    page = render_template("index.html", model=model, values=values, result=result, error=error,
                           earliest=EARLIEST.isoformat(), latest=LATEST.isoformat())
    if result is not None:
        record(found.sink, result)  # the page is ready: its latency includes rendering it
    return page, 400 if error else 200
