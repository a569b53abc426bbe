"""The model server's application factory: services registered on the app, three blueprints.

    app = create_app(settings.serving, store, sink)

The store (which model answers) and the sink (where prediction events go) are built by the
caller, so a test passes its own and gunicorn builds one per worker after the fork.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import cd4ml
from cd4ml.config import ServingSettings
from cd4ml.events import EventSink
from cd4ml.serving import api, monitoring, web
from cd4ml.serving.model_store import ModelStore, default_serving
from cd4ml.serving.services import STARTED, Services

MAX_BODY_BYTES = 16 * 1024  # no endpoint takes a body worth more: no model files, no pickles

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def create_app(serving: ServingSettings, store: ModelStore, sink: EventSink, reports: Any = None,
               counts: Any = None, problems: Mapping[str, ModelStore] | None = None) -> Flask:
    """The model server: the forecast page at /, the JSON API beside it. reports: where /monitoring
    finds the latest monitoring report when the sink writes no local log (serving.reports); counts:
    the event counts of all the server's workers, for /version (serving.worker_counts); problems:
    every problem served, by name, `store` (the default problem's, at today's routes) among them:
    each also answers at /<problem>/ and /<problem>/prediction etc. (docs/serving.md)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # keep the documented field order
    app.extensions["cd4ml"] = Services(store=store, sink=sink, admin_token=serving.admin_token, reports=reports,
                                        counts=counts, problems=dict(problems or {}))
    app.config["APP_VERSION"] = cd4ml.__version__
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    if problems:
        prefix = f"/<any({', '.join(problems)}):problem>"
        app.register_blueprint(api.bp, url_prefix=prefix, name="problem_api")
        app.register_blueprint(web.bp, url_prefix=prefix, name="problem_web")
        app.url_value_preprocessor(_problem_from_url)
        app.url_defaults(_problem_into_url)
    app.register_blueprint(monitoring.bp)
    app.before_request(_refuse_large_bodies)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.wsgi_app = _stamped(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _problem_from_url(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.problem = values.pop("problem", None) if values else None


def _problem_into_url(endpoint: str, values: dict[str, Any]) -> None:
    """url_for('.index') on a /<problem>/ page stays on that problem's routes."""
    if "problem" not in values and g.get("problem") and current_app.url_map.is_endpoint_expecting(endpoint, "problem"):
        values["problem"] = g.problem


def _stamped(wsgi_app: Any) -> Any:
    """The WSGI app, noting in environ[STARTED] when each request reached it (the events' latency_ms)."""
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ[STARTED] = time.perf_counter()
        return wsgi_app(environ, start_response)

    return app


def close_services(app: Flask, timeout: float = 5.0) -> None:
    """Stop polling, flush the prediction events and log how many were sent and dropped (at worker exit)."""
    found: Services | None = app.extensions.get("cd4ml")
    if found is not None:
        for store in {id(s): s for s in (found.store, *found.problems.values())}.values():
            store.stop(timeout)
        found.sink.close(timeout)
        if found.counts is not None:
            found.counts.stop()  # its last counts, for the siblings' /version
        events = found.sink.stats()
        where = events.get("address") or events.get("path")
        logging.getLogger(__name__).log(
            logging.WARNING if events["dropped"] else logging.INFO,
            "prediction events at exit: %d sent, %d dropped (%s %s)", events["sent"], events["dropped"], events["sink"], where,
        )
        if found.reports is not None:
            found.reports.stop(timeout)


def _refuse_large_bodies() -> None:
    # Werkzeug only enforces MAX_CONTENT_LENGTH when a body is read; we never read one.
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()


def _security_headers(response: Any) -> Any:
    response.headers.update(SECURITY_HEADERS)
    return response


def _http_error(err: HTTPException) -> Any:
    messages = {
        404: f"There is nothing at {request.path}. Try GET /prediction?{_example()}, "
             "/health, /version, /items or the page at /.",
        405: f"{request.method} is not allowed on {request.path}; "
             f"use {' or '.join(sorted(getattr(err, 'valid_methods', None) or ['another method']))}.",
        413: f"The request body is larger than {MAX_BODY_BYTES} bytes; this server takes no uploads.",
    }
    response = jsonify(error=messages.get(err.code or 500, err.description), field=None)
    response.status_code = err.code or 500
    allow = err.get_response().headers.get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


def _example() -> str:
    """A query that works against the default problem's model, for the 404 message."""
    current = current_app.extensions["cd4ml"].store.current
    return (current.serving if current is not None else default_serving()).example


def _unexpected_error(err: Exception) -> Any:
    logging.getLogger(__name__).exception("unexpected error on %s %s", request.method, request.path)
    response = jsonify(error="Internal error: this is a bug in the model server; the log has the details.",
                       field=None)
    response.status_code = 500
    return response
