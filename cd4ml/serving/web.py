"""The forecast page: a plain HTML form (GET /?date=...&item_nbr=...), rendered on the server.

The problem says which template shows its form and what the form's values are (its Serving,
cd4ml.problems); this blueprint serves it at / for the default problem and at /<problem>/ for
each problem served. The form works without JavaScript; static/forecast.js only saves the page
reload by asking /prediction itself. Bad input re-renders the form with the user's values and the error.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for

from cd4ml.serving.forecast import BadInput, forecast, parse_forecast_request, record
from cd4ml.serving.services import DEPLOY_COMMANDS, problem_store, services

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> Any:
    found, store = services(), problem_store()
    model = store.current  # read once, like the API
    deployed = found.deployed()
    if model is None:
        return render_template("no_model.html", reason=store.last_error, deployed=deployed,
                               commands=DEPLOY_COMMANDS.split(" && ")), 503
    serving, args = model.serving, request.args
    result = error = None
    if serving.asked(args):
        try:
            result = forecast(model, parse_forecast_request(args, model, strict=False))
        except BadInput as err:
            error = err
    page = render_template(serving.form_template, model=model, serving=serving, result=result, error=error,
                           deployed=deployed, problem=g.get("problem"), api=_api_blueprint(),
                           **serving.form_values(args, model))
    if result is not None:
        record(found.sink, result, model)  # the page is ready: its latency includes rendering it
    return page, 400 if error else 200


def _api_blueprint() -> str:
    """The API blueprint of this page's problem (cd4ml/serving/app.py): its routes, for the page's links and script."""
    return "problem_api" if g.get("problem") else "api"


@bp.get("/favicon.ico")
def favicon() -> Any:
    """Browsers ask for /favicon.ico whatever the page links: send them to the icon we have."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)
