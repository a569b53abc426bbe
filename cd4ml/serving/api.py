"""The JSON API: /prediction, /health, /version, /items, POST /reload and its description, /openapi.json.

Bad input is a 400 with {"error": what is wrong and how to fix it, "field": the parameter};
no model yet is a 503 saying how to deploy one. A request reads the store's current model
once and answers with that model only, so a hot swap never mixes two versions.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from cd4ml.serving.forecast import BadInput, forecast, parse_forecast_request, record
from cd4ml.serving.model_store import default_serving
from cd4ml.serving.services import no_model_message, problem_store, services

bp = Blueprint("api", __name__)


def _error(status: int, message: str, field: str | None = None, **extra: Any) -> Any:
    response = jsonify(error=message, field=field, **extra)
    response.status_code = status
    return response


@bp.get("/prediction")
def prediction() -> Any:
    found, store = services(), problem_store()
    model = store.current  # read once: this request uses this model only
    if model is None:
        return _error(503, no_model_message(store))
    try:
        req = parse_forecast_request(request.args, model)
    except BadInput as err:
        return _error(400, err.message, err.field)
    answer = forecast(model, req)
    response = jsonify(answer)
    record(found.sink, answer, model)
    return response


@bp.get("/health")
def health() -> Any:
    store = problem_store()
    model = store.current
    if model is None:
        response = jsonify(status="not ready", reason=no_model_message(store))
        response.status_code = 503
        return response
    return jsonify(status="ready", model_version=model.version)


@bp.get("/version")
def version() -> Any:
    found = services()
    status = problem_store().status
    return jsonify(
        app_version=current_app.config["APP_VERSION"],
        model_version=status.pop("version"),
        worker=os.getpid(),
        **status,
        events=found.counts.total() if found.counts is not None else found.sink.stats(),
    )


@bp.get("/items")
def items() -> Any:
    store = problem_store()
    model = store.current
    if model is None:
        return _error(503, no_model_message(store))
    return jsonify(list(model.items))


@bp.get("/openapi.json")
def openapi() -> Any:
    current = problem_store().current
    document = (current.serving if current is not None else default_serving()).openapi()
    return current_app.response_class(document, mimetype="application/json")


def openapi_document() -> str:
    """The OpenAPI 3 description of the default problem's API (its Serving.openapi())."""
    return default_serving().openapi()


@bp.post("/reload")
def reload() -> Any:
    found = services()
    if not found.admin_token:
        return _error(403, "Reloading is disabled: this server has no admin token. "
                           "Set CD4ML_ADMIN_TOKEN in the server's environment and restart it.", "Authorization")
    if not _authorized(request.headers.get("Authorization", ""), found.admin_token):
        response = _error(401, "Send the admin token as the header 'Authorization: Bearer <CD4ML_ADMIN_TOKEN>'.",
                          "Authorization")
        response.headers["WWW-Authenticate"] = 'Bearer realm="cd4ml"'
        return response
    store = problem_store()
    swapped = store.refresh()
    store.nudge()  # and the other workers of this server
    status = store.status
    if status["last_error"]:
        return _error(503, f"Could not check the registry: {status['last_error']}", None, swapped=False, **status)
    return jsonify(swapped=swapped, **status)


def _authorized(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass"))

