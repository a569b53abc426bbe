"""Shared helpers for the serving tests: real small models trained with our real pipeline code."""

from __future__ import annotations

import re
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any, Callable

from cd4ml.config import DataSettings, ServingSettings
from cd4ml.events import prediction_event
from cd4ml.pipeline.run import train_and_validate
from cd4ml.pipeline.split import split_by_date
from cd4ml.problems import get_problem
from cd4ml.serving.model_store import LoadedModel

# Two sets of hyperparameters that give different forecasts for the same request.
PARAMS_A: dict[str, Any] = {"max_iter": 20, "learning_rate": 0.1}
PARAMS_B: dict[str, Any] = {"max_iter": 40, "learning_rate": 0.2, "max_leaf_nodes": 15}

ADMIN_TOKEN = "test-admin-token-0123456789"
# A request the tiny data's models know: Milk in store 47.
MILK = {"date": "2016-08-01", "item_nbr": 99197, "store_nbr": 47, "onpromotion": False}

# The prediction event schema (cd4ml/events.py), written out independently.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
SCHEMA = {
    "@timestamp": str, "schema_version": int, "event": str, "problem": str, "date": str, "item_nbr": int, "item_name": str,
    "store_nbr": int, "onpromotion": bool, "prediction": float, "model_version": str, "run_id": str,
    "latency_ms": float,
}


def an_event(**changes) -> dict:
    """A prediction event of Milk, with `changes`."""
    fields = dict(problem="favorita", date="2016-08-01", item_nbr=99197, item_name="Milk", store_nbr=47,
                  onpromotion=False, prediction=31.868488998671857, model_version="3", run_id="abc", latency_ms=0.25)
    fields.update(changes)
    return prediction_event(**fields)


def train(data: Path, params: dict[str, Any], model_name: str = "gradient_boosting", seed: int = 42):
    """A fitted Pipeline trained on a generated Kaggle-layout folder, as the pipeline does it."""
    return _train(Path(data), tuple(sorted(params.items())), model_name, seed)


@cache
def _train(data: Path, params: tuple, model_name: str, seed: int):
    problem = get_problem("favorita")
    settings = DataSettings(source=data, items=None, stores=None, max_bad_rows=0)
    source = problem.open(settings, None)
    table = problem.collect(problem.rows(source, settings))
    valid, _ = split_by_date(table.dates, 57)
    features = problem.features(table, source)
    return train_and_validate(problem, table, features, valid, model_name, dict(params), seed).model


def model_a(data: Path):
    return train(data, PARAMS_A)


def model_b(data: Path):
    return train(data, PARAMS_B)


def loaded(model, version: str, run_id: str | None = None, git_commit: str = "abc1234") -> LoadedModel:
    """A LoadedModel as the registry's fetch would build it."""
    return LoadedModel(
        version=version,
        run_id=run_id or f"run-{version}",
        git_commit=git_commit,
        model=model,
        catalogue=model.named_steps["features"].catalogue,
        loaded_at=time.time(),
    )


def serving_settings(admin_token: str | None = ADMIN_TOKEN, fluentd_host: str | None = None,
                     fluentd_port: int = 24224) -> ServingSettings:
    return ServingSettings(host="127.0.0.1", port=5005, poll_seconds=0.0, workers=1, admin_token=admin_token,
                           fluentd_host=fluentd_host, fluentd_port=fluentd_port)


class Registry:
    """A stand-in for the registry's fetch: answers with what the test puts in `outcome`.

    outcome: the LoadedModel production points at (None: no production model yet), or an
    exception to raise (ServiceUnreachable, Cd4mlError). `asked` records each current version.
    """

    def __init__(self, outcome: LoadedModel | Exception | None = None) -> None:
        self.outcome = outcome
        self.asked: list[str | None] = []

    def __call__(self, current: str | None) -> LoadedModel | None:
        self.asked.append(current)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if self.outcome is None or self.outcome.version == current:
            return None
        return self.outcome


def cycling_fetch(models: list[LoadedModel]) -> Callable[[str | None], LoadedModel | None]:
    """A registry whose production alias moves to the next model on every check."""
    lock = threading.Lock()
    state = {"next": 0}

    def fetch(current: str | None) -> LoadedModel | None:
        with lock:
            chosen = models[state["next"] % len(models)]
            state["next"] += 1
        return None if chosen.version == current else chosen

    return fetch


def wait_for(condition: Callable[[], Any], seconds: float = 10.0, what: str = "condition") -> Any:
    """Poll until condition() is truthy, or fail saying what did not happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"{what} did not happen within {seconds} s")
