"""The forecast request both the page and the API answer: parse it, forecast it, record its event.

What a request holds and how it is checked belongs to the problem (its Serving, cd4ml.problems):
parse_forecast_request asks the loaded model's problem, which raises BadInput naming the field;
forecast adds the version that answered; record emits the event with the problem's event fields.
web.py (the form) and api.py (/prediction) both use these three, so they cannot disagree.
"""

from __future__ import annotations

import time
from typing import Any

from flask import request

from cd4ml.events import EventSink, prediction_event
from cd4ml.request_fields import BadInput
from cd4ml.serving.model_store import LoadedModel
from cd4ml.serving.services import STARTED

__all__ = ["BadInput", "COMMON_FIELDS", "forecast", "parse_forecast_request", "record"]

COMMON_FIELDS = ("prediction", "model_version", "run_id")  # in every answer and event, whatever the problem


def parse_forecast_request(args: Any, model: LoadedModel, strict: bool = True) -> Any:
    """Check the query parameters against the deployed model; raise BadInput naming the field.

    strict: unknown parameters are errors too (the API); the page ignores them.
    """
    return model.serving.parse(args, model, strict)


def forecast(model: LoadedModel, req: Any) -> dict[str, Any]:
    """The forecast for one checked request, with the version that made it."""
    return {**model.serving.answer(model, req), "model_version": model.version, "run_id": model.run_id}


def record(sink: EventSink, answer: dict[str, Any], model: LoadedModel) -> None:
    """Emit the event of an answered forecast, once its response is ready. Its latency_ms is the time
    this worker spent on the request: from the moment it handed the parsed HTTP request to the app
    (STARTED, stamped by cd4ml.serving.app) until now, so routing, checking the input, the forecast and
    building the response body. Not in it: the network, and the wait in the listen queue for a worker."""
    started = request.environ.get(STARTED, time.perf_counter())
    serving = model.serving
    sink.emit(prediction_event(
        problem=serving.problem, **{k: answer[k] for k in (*serving.event_fields, *COMMON_FIELDS)},
        latency_ms=(time.perf_counter() - started) * 1000.0,
    ))
