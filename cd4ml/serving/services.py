"""What the blueprints share: the services registered on the app, and the no-model answer.

create_app (serving/app.py) registers a Services on the app; api.py, web.py and monitoring.py
read it with services(). This module imports no blueprint and no app, so nothing imports back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from flask import current_app, g

from cd4ml.events import EventSink
from cd4ml.serving.model_store import ModelStore

# How to get a first model into production; shown by /prediction, /health and the page.
DEPLOY_COMMANDS = (
    "python3 run_python_script.py pipeline && python3 run_python_script.py acceptance"
    " && python3 run_python_script.py deploy"
)

STARTED = "cd4ml.started"  # the WSGI environ key: when this worker handed the request to the app


@dataclass(frozen=True)
class Services:
    """What the blueprints use, registered on the app as app.extensions["cd4ml"]."""

    store: ModelStore
    sink: EventSink
    admin_token: str | None
    reports: Any = None  # a serving.reports.ReportCache when the events go to fluentd (no local log)
    counts: Any = None  # a serving.worker_counts.WorkerCounts: the event counts of every worker of the server
    problems: Mapping[str, ModelStore] = field(default_factory=dict)  # every problem served, by name (store among them)

    def store_for(self, problem: str | None) -> ModelStore:
        """The store of the problem in the URL (/<problem>/...), else the default problem's."""
        return self.problems[problem] if problem else self.store

    def deployed(self) -> list[str]:
        """The problems served that have a model now, for the links on every page."""
        return [name for name, store in self.problems.items() if store.current is not None]


def problem_store() -> ModelStore:
    """The store of the problem this request is for (set by the /<problem>/... routes)."""
    return services().store_for(g.get("problem"))


def services() -> Services:
    """The services of the app handling this request."""
    return current_app.extensions["cd4ml"]


def no_model_message(store: ModelStore) -> str:
    """Why there is nothing to answer with, and how to deploy a model."""
    why = f" The last registry check failed: {_sentence(store.last_error)}" if store.last_error else ""
    return (
        f"No model is deployed yet.{why} Deploy one with: {DEPLOY_COMMANDS} "
        "(this server picks it up by itself within its poll interval)."
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
