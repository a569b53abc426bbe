"""A third, minimal problem for the seam test: y = 10·k plus noise, one integer feature k in 1..3.

Importing this module registers it (cd4ml.problems.register_problem), so processes started with
CD4ML_EXTRA_PROBLEMS=tests.toy find it: the CLI's pipeline, acceptance, deploy and serve's workers.
Its data is a CSV (date,k,y) that write_data() makes; its params file is params.toml beside this.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_absolute_error, r2_score

from cd4ml.problems import Table, register_problem
from cd4ml.request_fields import BadInput, no_unknown, number, one

PARAMS = Path(__file__).with_name("params.toml")


def write_data(path: Path, days: int = 60, seed: int = 0) -> Path:
    """days × three rows (k = 1, 2, 3) of y = 10·k + noise, from 2020-01-01."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["date", "k", "y"])
        for day in range(days):
            for k in (1, 2, 3):
                writer.writerow([(date(2020, 1, 1) + timedelta(days=day)).isoformat(), k, 10 * k + rng.normal()])
    return path


@dataclass
class Stats:
    lines: int
    parsed: int
    bytes: int
    seconds: float
    sha256: str


@dataclass
class Source:
    path: Path
    stats: Stats


class ToyFeatures(BaseEstimator, TransformerMixin):
    """Model inputs (a frame with column k) -> feature dicts {"k": k}."""

    def fit(self, X: Any, y: Any = None) -> "ToyFeatures":
        return self

    def transform(self, X: Any) -> list[dict[str, float]]:
        return [{"k": float(k)} for k in X["k"]]


class ToyProblem:
    name = "toy"
    request_columns = ("k",)
    trusted_types = (f"{ToyFeatures.__module__}.ToyFeatures",)
    metric_names = ("r2", "mae")
    feature_sets = ("default",)

    def open(self, data, progress=None) -> Source:
        body = Path(data.source).read_bytes()
        return Source(Path(data.source), Stats(body.count(b"\n") - 1, 0, len(body), 0.0, hashlib.sha256(body).hexdigest()))

    def rows(self, source: Source, data, on_bad=None):
        with source.path.open(newline="") as lines:
            for raw in csv.DictReader(lines):
                yield {"date": date.fromisoformat(raw["date"]), "k": int(raw["k"]), "y": float(raw["y"])}

    def collect(self, rows) -> Table:
        found = list(rows)
        return Table(inputs=pd.DataFrame({"k": np.array([r["k"] for r in found], dtype=np.int64)}),
                     target=np.array([r["y"] for r in found]), dates=np.array([r["date"] for r in found], dtype=object),
                     weights=np.zeros(len(found), dtype=bool), ids=np.full(len(found), -1, dtype=np.int64))

    def features(self, table: Table, source: Source, feature_set: str = "default") -> ToyFeatures:
        return ToyFeatures()

    def evaluate(self, actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, float]:
        return {"r2": float(r2_score(actual, predicted)), "mae": float(mean_absolute_error(actual, predicted))}

    def levels(self) -> None:
        return None

    def baseline(self) -> DummyRegressor:
        return DummyRegressor()

    def expected(self, source: Source, ids: np.ndarray) -> None:
        return None

    # --- serving and monitoring ---
    drift_key = "k"

    @property
    def serving(self) -> "ToyServing":
        return ToyServing()


@dataclass(frozen=True)
class Facts:
    items: tuple = ()


class ToyServing:
    problem = "toy"
    title = "Toy"
    heading = "What is y for this k?"
    fields = ("k",)
    event_fields = ("k",)
    event_types = {"k": "number"}
    join_key = ("k",)
    drift_label = None
    requested_date = None
    form_template = "form.html"
    example = "k=2"

    def facts(self, model: Any, catalogue: Any = None) -> Facts:
        return Facts()

    def parse(self, args: Any, loaded: Any, strict: bool = True) -> dict[str, int]:
        if strict:
            no_unknown(args, self.fields)
        value = number(one(args, "k", "k=2"), "k", "a whole number", "2", 1, 3)
        if value != int(value):
            raise BadInput("k", f"k must be 1, 2 or 3; got {value:g}.")
        return {"k": int(value)}

    def answer(self, loaded: Any, request: dict[str, int]) -> dict[str, Any]:
        return {"prediction": float(loaded.model.predict(pd.DataFrame([request]))[0]), **request}

    def asked(self, args: Any) -> bool:
        return "k" in args

    def form_values(self, args: Any, loaded: Any) -> dict[str, Any]:
        return {"values": {"k": args.get("k", "2")},
                "form_fields": [{"name": "k", "label": "k", "kind": "number", "choices": (), "min": 1, "max": 3,
                                 "step": 1}]}

    def shown(self, prediction: float) -> str:
        return f"{prediction:.2f}"

    def openapi(self) -> str:
        return json.dumps({"openapi": "3.0.3", "info": {"title": "toy", "version": "1"}, "servers": [{"url": "/toy"}],
                           "paths": {"/prediction": {"get": {"parameters": [{"name": "k", "in": "query"}],
                                                             "responses": {"200": {"description": "y"}}}}}})


register_problem("toy", ToyProblem, PARAMS, defaults={"data": {"source": "toy/toy.csv", "max_bad_rows": 0}},
                 metrics=ToyProblem.metric_names)
