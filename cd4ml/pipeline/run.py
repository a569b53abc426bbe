"""The pipeline run: read → process → filter → features → split → train → validate → track.

`train_and_validate` is the pure core (no IO); `run_pipeline` wires it to the data source,
MLflow and the progress reporter.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from cd4ml import plots, tracking
from cd4ml.config import Settings
from cd4ml.errors import ConfigError
from cd4ml.metrics import compare
from cd4ml.monitoring.profile import profile_bytes, training_profile
from cd4ml.pipeline.models import MODELS, SMALL_DATA_ROWS, make_forecaster, make_model, trusted_types
from cd4ml.pipeline.split import split
from cd4ml.pipeline.track import Prepared, RunResult, run_params, track
from cd4ml.problems import Problem, Table, get_problem
from cd4ml.progress import Reporter
from cd4ml.tracking_process import RunProcess




@dataclass
class Trained:
    """A fitted model and what validation said of it."""

    model: Pipeline
    metrics: dict[str, float]
    valid: np.ndarray  # mask of the validation rows in the table
    predicted: np.ndarray  # the model's forecast of the validation rows


def build_model(features: Any, levels: Any, model_name: str, params: dict[str, Any], seed: int) -> Pipeline:
    """Features, the baseline's levels, encoder and model as one sklearn Pipeline: they travel
    together, so cannot drift. A relative model fits the ratio to the level, which the levels
    step puts first in each row and the encoder keeps in column 0 (sort=False)."""
    if MODELS[model_name].relative and levels is None:
        raise ConfigError(f"params.toml [model] name {model_name!r} forecasts relative to the baseline, "
                          "which this problem does not give; choose another model.")
    forecaster, dense = make_forecaster(model_name, params, random_state=seed)
    steps = [("features", features)] + ([("levels", levels)] if levels is not None else [])
    return Pipeline([
        *steps,
        ("encode", DictVectorizer(sparse=not dense, sort=levels is None)),
        ("model", forecaster),
    ])


def train_and_validate(
    problem: Problem, table: Table, features: Any, valid: np.ndarray, model_name: str,
    params: dict[str, Any], seed: int, expected: np.ndarray | None = None,
) -> Trained:
    """Fit the model and the baseline on the rows before the validation days, score both on
    those days, and against the best achievable forecast when `expected` is known."""
    train = ~valid
    inputs, target = table.inputs, table.target
    model = build_model(features, problem.levels(), model_name, params, seed)
    with threadpool_limits(limits=1 if len(target) < SMALL_DATA_ROWS else None):
        model.fit(inputs[train], target[train])
        predicted = model.predict(inputs[valid])
    actual, weights = target[valid], table.weights[valid]
    baseline = problem.baseline().fit(inputs[train], target[train]).predict(inputs[valid])
    metrics = compare(actual, weights, predicted, baseline, expected, evaluate=problem.evaluate)
    metrics["rows_train"] = float(train.sum())
    metrics["rows_valid"] = float(valid.sum())
    return Trained(model, metrics, valid, predicted)


def split_of(settings: Settings, table: Table) -> tuple[np.ndarray, str]:
    """The validation rows by [split] (by date or by a hash of the row ids), and what the split was."""
    return split(settings.split_by, table.dates, table.ids, settings.validation_days, settings.validation_fraction,
                 settings.seed)


def check_feature_set(problem: Problem, settings: Settings) -> None:
    if settings.feature_set not in problem.feature_sets:
        raise ConfigError(f"params.toml [features] set must be one of {', '.join(problem.feature_sets)} for the "
                          f"{problem.name} problem; got {settings.feature_set!r}.")


def fit_and_validate(settings: Settings) -> tuple[Trained, Table]:
    """Read, split, train and validate as the pipeline does, without tracking (tests/model and
    `benchmark --matrix`)."""
    problem = get_problem(settings.problem)
    source = problem.open(settings.data)
    table = problem.collect(problem.rows(source, settings.data))
    valid, _ = split_of(settings, table)
    trained = train_and_validate(
        problem, table, problem.features(table, source, settings.feature_set), valid, settings.model.name,
        dict(settings.model.params), settings.seed, problem.expected(source, table.ids[valid]),
    )
    return trained, table


def run_pipeline(settings: Settings, reporter: Reporter, process: RunProcess | None = None) -> RunResult:
    """One tracked pipeline run on the row path; the run id is recorded for the acceptance gate.

    `process` is a tracking process already warming up (the CLI starts it before importing
    this module, so MLflow's import overlaps ours); without one, one is started here."""
    process = process or RunProcess(settings.tracking)
    try:
        problem = get_problem(settings.problem)
        check_feature_set(problem, settings)
        make_model(settings.model.name, dict(settings.model.params), settings.seed,  # bad params: no run
                   name_from=settings.model.name_from, params_from=settings.model.params_from)
        source = problem.open(settings.data, reporter.progress("read"))  # a missing file: no run
    except BaseException:
        process.cancel()
        raise

    def work(seconds: dict[str, float]) -> Prepared:
        clock = time.perf_counter()
        table = problem.collect(problem.rows(source, settings.data, on_bad=lambda e: reporter.say(f"skipped: {e}")))
        seconds["data"] = time.perf_counter() - clock
        kept = len(table.target)
        reporter.stage("data pass", seconds["data"], source.stats.lines, kept)

        clock = time.perf_counter()
        valid, cutoff = split_of(settings, table)
        trained = train_and_validate(
            problem, table, problem.features(table, source, settings.feature_set), valid, settings.model.name,
            dict(settings.model.params), settings.seed, problem.expected(source, table.ids[valid]),
        )
        seconds["train_validate"] = time.perf_counter() - clock
        reporter.stage("train+valid", seconds["train_validate"], int(trained.metrics["rows_train"]))
        return _prepared(settings, problem, source, table, trained, cutoff)

    return track(settings, reporter, process, problem.name, run_params(settings), {}, work)


def _prepared(settings: Settings, problem: Problem, source: Any, table: Table, trained: Trained, cutoff: Any) -> Prepared:
    """What the row path records: validation rows, training profile, the model, three plots."""
    train = ~trained.valid  # what monitoring compares live events with (docs/monitoring.md)
    profile = profile_bytes(training_profile(
        table.inputs[problem.drift_key].to_numpy()[train], table.dates[train], table.target[train], trained.predicted,
    ))
    example = table.inputs.loc[trained.valid, list(problem.request_columns)].head(5)
    return Prepared(
        metrics=trained.metrics,
        data={"sha256": source.stats.sha256, "rows_read": source.stats.lines, "rows_kept": len(table.target),
              "source": str(settings.data.source)},
        record=tracking.RunRecord(
            tags={tracking.VALIDATION_SPLIT: settings.split_by if settings.split_by == "date" else cutoff,
                  **({tracking.VALIDATION_FIRST_DATE: cutoff} if settings.split_by == "date" else {})},
            artifacts={tracking.VALIDATION_ROWS: _validation_rows(problem, table, trained.valid),
                       **({tracking.PROFILE_ARTIFACT: profile} if profile is not None else {})},
            model=tracking.LoggedModel(trained.model, example, trained.model.predict(example),
                                       [*problem.trusted_types, *trusted_types(settings.model.name)]),
        ),
        plots=_plots(trained, table),
    )


def _validation_rows(problem: Problem, table: Table, valid: np.ndarray) -> bytes:
    """The validation rows (model inputs, target, metric weight) as Parquet: the gate scores the
    production model on exactly these rows."""
    rows = table.inputs.loc[valid, list(problem.request_columns)].reset_index(drop=True)
    rows["target"] = table.target[valid]
    rows["weight"] = table.weights[valid]
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _plots(trained: Trained, table: Table) -> dict[str, Callable[[], Any]]:
    """The three plots (tracking.PLOTS), each drawn when it is logged."""
    actual = table.target[trained.valid]
    return dict(zip(tracking.PLOTS, (
        lambda: plots.predicted_vs_actual(actual, trained.predicted),
        lambda: plots.residuals_by_date(table.dates[trained.valid], actual, trained.predicted),
        lambda: plots.feature_importance(*_importance(trained, table)),
    )))


def _importance(trained: Trained, table: Table) -> tuple[list[str], np.ndarray, str]:
    """Native importances (trees), |coefficients| (linear), or permutation importance; and what they measure."""
    encode = trained.model.named_steps["encode"]
    estimator = trained.model.named_steps["model"].regressor_
    names = list(encode.get_feature_names_out())
    if hasattr(estimator, "feature_importances_"):
        return names, np.asarray(estimator.feature_importances_), plots.IMPURITY
    if hasattr(estimator, "coef_"):
        return names, np.abs(np.ravel(estimator.coef_)), "|coefficient| (of the encoded feature)"
    from sklearn.inspection import permutation_importance

    X = trained.model[:-1].transform(table.inputs[trained.valid])
    X = X.toarray() if hasattr(X, "toarray") else X
    with threadpool_limits(limits=1 if len(X) < SMALL_DATA_ROWS else None):
        result = permutation_importance(
            trained.model.named_steps["model"], X, table.target[trained.valid], n_repeats=3, random_state=0
        )
    return names, result.importances_mean, plots.PERMUTATION
