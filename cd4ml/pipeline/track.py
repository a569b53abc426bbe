"""The one run choreography both pipeline paths share: each prepares what to record, this tracks it.

The row path (run.py) and the scale path (run_scale.py) differ in how they read and train; what
a run records (cd4ml/tracking.py names it) and in which order is decided here, once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from cd4ml import run_kind, tracking
from cd4ml.config import Settings
from cd4ml.progress import Reporter
from cd4ml.tracking_process import RunProcess, tracked_run


@dataclass
class Prepared:
    """What a path's work prepared for tracking, once its model is trained and validated."""

    metrics: dict[str, float]  # the model's validation metrics (the run's result)
    data: dict[str, Any]  # sha256, rows_read, rows_kept, source
    record: tracking.RunRecord  # path-specific tags and metrics, the artifacts and the model
    plots: Mapping[str, Callable[[], Any]]  # path -> draw the figure: here, while the tracking process logs the model


@dataclass
class RunResult:
    run_id: str
    experiment_id: str
    tracking_uri: str
    model_uri: str
    metrics: dict[str, float]
    data: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    run_kind: str = ""  # candidate or experiment (cd4ml/run_kind.py)

    def as_json(self) -> str:
        return json.dumps({
            "run_id": self.run_id, "experiment_id": self.experiment_id, "tracking_uri": self.tracking_uri,
            "model_uri": self.model_uri, "metrics": self.metrics, "data": self.data, "seconds": self.seconds,
            "run_kind": self.run_kind,
        }, sort_keys=True)


def run_params(settings: Settings) -> dict[str, Any]:
    """The params every pipeline run logs."""
    data = settings.data
    params: dict[str, Any] = {
        "problem": settings.problem,
        "seed": settings.seed,
        "model": settings.model.name,
        "data.source": str(data.source),
        "split.by": settings.split_by,
        **({"split.validation_days": settings.validation_days} if settings.split_by == "date"
           else {"split.validation_fraction": settings.validation_fraction}),
        "features.set": settings.feature_set,
    }
    for key, chosen in (("items", data.items), ("stores", data.stores)):
        if key in settings.raw["data"]:  # the problem's [data] has items and stores (Favorita's)
            params[f"data.{key}"] = "all" if chosen is None else ",".join(map(str, sorted(chosen)))
    params.update({f"model.{k}": v for k, v in settings.model.params.items()})
    return params


def track(settings: Settings, reporter: Reporter, process: RunProcess, problem_name: str, params: Mapping[str, Any],
          tags: Mapping[str, Any], work: Callable[[dict[str, float]], Prepared]) -> RunResult:
    """Start the run and log its params and lineage tags (so a failed run has them), have `work`
    read, train and validate (timing its stages into the dict it is given), then log what it
    prepared, end the run and record it for the acceptance gate."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    kind = run_kind.classify(settings)
    reporter.say(f"{kind}" + ("; deploy refuses it" if kind.experiment else ""))
    with tracked_run(process) as run:
        run.log(params=params, tags={
            **tracking.git_tags(settings.paths.root),
            **({tracking.BUILD_NUMBER: settings.tracking.build_number} if settings.tracking.build_number else {}),
            tracking.PROBLEM: problem_name, tracking.RUN_KIND: kind.kind, tracking.RUN_KIND_REASON: kind.reason, **tags,
        })
        prepared = work(seconds)
        clock = time.perf_counter()
        data, record = prepared.data, prepared.record
        record.metrics = {**prepared.metrics, **{f"seconds_{k}": v for k, v in seconds.items()}, **record.metrics}
        record.tags = {tracking.DATA_SHA256: data["sha256"], tracking.DATA_ROWS_READ: data["rows_read"],
                       tracking.DATA_ROWS_KEPT: data["rows_kept"], tracking.DATA_SOURCE: data["source"], **record.tags}
        run.log_record(record, prepared.plots)
    seconds["logging"] = time.perf_counter() - clock
    reporter.stage("logging", seconds["logging"])
    seconds["total"] = time.perf_counter() - started
    result = RunResult(
        run_id=run.id, experiment_id=run.experiment_id, tracking_uri=settings.tracking.uri,
        model_uri=run.model_uri, metrics=prepared.metrics, data=data, seconds=seconds, run_kind=kind.kind,
    )
    return record_last_run(settings, result)


def record_last_run(settings: Settings, result: RunResult) -> RunResult:
    """Write the run's result where the acceptance gate finds the last run."""
    settings.paths.last_run_file.parent.mkdir(parents=True, exist_ok=True)
    settings.paths.last_run_file.write_text(result.as_json() + "\n")
    return result
