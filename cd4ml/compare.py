"""The saved comparison: the experiments of a problem beside its production version, on the same metrics.

MLflow has no saved views, so this is the comparison the instructions point to: `run_python_script.py
compare` prints a table and two MLflow UI links (their format is MLflow 3.17.2's UI: the experiment
page's `searchFilter` parameter and the `#/compare-runs?runs=[...]&experiments=[...]` route).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import quote

from cd4ml import registry, tracking
from cd4ml.metrics import score_cell

METRIC_ORDER = ("r2", "nwrmsle", "rmse", "mae", "mape")  # the columns, when the runs have them
EXPERIMENTS_FILTER = f"tags.`{tracking.RUN_KIND}` = '{tracking.EXPERIMENT}'"


@dataclass(frozen=True)
class Row:
    label: str  # "production v3" or "experiment"
    run_id: str
    model: str
    verdict: str
    reason: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Comparison:
    experiment_id: str | None
    metric: str  # the gate's metric
    rows: list[Row]  # production first (when there is one), then the experiments, newest first


def compare(mlflow_client, experiment: str, registered_model: str, metric: str, limit: int = 10) -> Comparison:
    """Production's run and the last `limit` experiment runs of the MLflow experiment."""
    found = mlflow_client.get_experiment_by_name(experiment)
    rows = []
    production = registry.production(mlflow_client, registered_model)
    if production is not None:
        rows.append(_row(f"production v{production.number}", registry.run(mlflow_client, production.run_id)))
    if found is not None:
        runs = mlflow_client.search_runs([found.experiment_id], filter_string=EXPERIMENTS_FILTER,
                                         order_by=["attributes.start_time DESC"], max_results=limit)
        rows.extend(_row("experiment", run) for run in runs)
    return Comparison(found.experiment_id if found else None, metric, rows)


def _row(label: str, run) -> Row:
    tags = run.data.tags
    return Row(label, run.info.run_id, run.data.params.get("model", "?"), tags.get(tracking.VERDICT, "not judged"),
               tags.get(tracking.RUN_KIND_REASON, ""), dict(run.data.metrics))


def text(comparison: Comparison) -> str:
    """The table: one line per run, the gate's metric first, and production's score on each
    experiment's own validation rows (the gate's comparison) where the gate recorded it."""
    if not comparison.rows:
        return "no production version and no experiment runs yet"
    names = [comparison.metric] + [m for m in METRIC_ORDER if m != comparison.metric
                                   and any(m in row.metrics for row in comparison.rows)]
    against = tracking.PRODUCTION_METRIC.format(metric=comparison.metric)
    header = f"{'run':<16}{'id':<10}{'model':<20}{'verdict':<12}" + "".join(f"{n:>10}" for n in names)
    lines = [header + f"{'prod. on its rows':>19}  why"]
    for row in comparison.rows:
        cells = "".join(score_cell(row.metrics[n]) if n in row.metrics else f"{'-':>10}" for n in names)
        versus = f"{score_cell(row.metrics[against]):>19}" if against in row.metrics else f"{'-':>19}"
        lines.append(f"{row.label:<16}{row.run_id[:8]:<10}{row.model:<20}{row.verdict:<12}{cells}{versus}  {row.reason}")
    return "\n".join(lines)


def ui_links(base_url: str, comparison: Comparison) -> list[str]:
    """The MLflow UI's experiment page filtered to the experiments, and its compare-runs page of these runs."""
    if comparison.experiment_id is None:
        return []
    base = base_url.rstrip("/")
    ids: Sequence[str] = [row.run_id for row in comparison.rows]
    links = [f"{base}/#/experiments/{comparison.experiment_id}?searchFilter={quote(EXPERIMENTS_FILTER)}"]
    if len(ids) > 1:
        experiments: list[Any] = [comparison.experiment_id]
        links.append(f"{base}/#/compare-runs?runs={quote(json.dumps(list(ids)))}"
                     f"&experiments={quote(json.dumps(experiments))}")
    return links
