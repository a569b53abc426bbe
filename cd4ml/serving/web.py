"""The sales-forecast page: a plain HTML form (GET /?date=...&item_nbr=...), rendered on the server.

The form works without JavaScript; static/forecast.js only saves the page reload by asking
/prediction itself. Bad input re-renders the form with the user's values and the error.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from cd4ml.serving.forecast import EARLIEST, LATEST, BadInput, forecast, parse_forecast_request, record
from cd4ml.serving.services import DEPLOY_COMMANDS, services

bp = Blueprint("web", __name__)

FAR_DAYS = 365  # a date further than this outside the model's data gets a note


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


@bp.get("/")
def index() -> Any:
    found = services()
    model = found.store.current  # read once, like the API
    if model is None:
        return render_template("no_model.html", reason=found.store.last_error,
                               commands=DEPLOY_COMMANDS.split(" && ")), 503
    args = request.args
    values = {
        "date": args.get("date", default_day(model.period, date.today())),
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
                           earliest=EARLIEST.isoformat(), latest=LATEST.isoformat(),
                           note=date_note(values["date"], model.period), far_days=FAR_DAYS)
    if result is not None:
        record(found.sink, result)  # the page is ready: its latency includes rendering it
    return page, 400 if error else 200


@bp.get("/favicon.ico")
def favicon() -> Any:
    """Browsers ask for /favicon.ico whatever the page links: send them to the icon we have."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)
