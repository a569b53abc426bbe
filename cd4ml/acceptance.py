"""The acceptance gate: a pure decide() and the loading of its inputs from MLflow.

The challenger (the run the pipeline just made) is judged on its validation rows, relative checks
first: it must beat the naive baseline on those rows by min_gain, and, when a production model
exists, must not be worse than production on those same rows by more than the tolerance; then,
as a safety net, it must lie within [min, max]. The gate fails closed: no answer from MLflow is
a rejection.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

from cd4ml import registry, tracking
from cd4ml.config import Settings
from cd4ml.metrics import HIGHER_IS_BETTER
from cd4ml.errors import DataError


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    message: str
    reasons: tuple[str, ...]


def decide(
    metric: str, value: float, baseline_value: float, min_gain: float, low: float, high: float, tolerance: float,
    production_value: float | None, production_version: str | None, run_id: str = "",
) -> Verdict:
    """Accept when the metric beats the baseline's (on the same rows) by min_gain, is not worse
    than production's (on the same rows) by more than the tolerance, and lies within [low, high]. Pure."""
    higher = HIGHER_IS_BETTER[metric]
    reasons = []
    gain = (value - baseline_value) if higher else (baseline_value - value)
    if not gain >= min_gain - 1e-12:  # NaN (no baseline on the run, or no value) is a rejection; 1e-12: float noise
        reasons.append(
            f"it beats the naive baseline ({baseline_value:.4f}) by {gain:.4f}, less than min_gain {min_gain:.4f}"
        )
    if production_value is not None:
        worse_by = (production_value - value) if higher else (value - production_value)
        if not worse_by <= tolerance:
            reasons.append(
                f"it is worse than production v{production_version} ({production_value:.4f}) by "
                f"{worse_by:.4f}, more than the tolerance {tolerance:.4f}"
            )
    if math.isnan(value) or not low <= value <= high:
        reasons.append(f"{metric} {value:.4f} is outside [{low:.4f}, {high:.4f}]")
    accepted = not reasons
    champion = (
        f"production v{production_version} scores {production_value:.4f} on the same validation rows"
        if production_value is not None else "no production model yet"
    )
    message = (
        f"Run {run_id or '?'}: {metric} = {value:.4f}; the naive baseline scores {baseline_value:.4f} on the same "
        f"validation rows (min_gain {min_gain:.4f}); {champion} (tolerance {tolerance:.4f}); "
        f"acceptable range [{low:.4f}, {high:.4f}]. "
        + ("ACCEPTED." if accepted else "REJECTED: " + "; ".join(reasons) + ".")
    )
    return Verdict(accepted, message, tuple(reasons))


def last_run(settings: Settings) -> dict[str, Any]:
    """The run the pipeline recorded last (data/last_run.json)."""
    path = settings.paths.last_run_file
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: no pipeline run to judge", f"Run `{settings.commands.script} pipeline` first.") from None
    except json.JSONDecodeError:
        raise DataError(f"{path} is not valid JSON", "Run the pipeline again to rewrite it.") from None


def judge(settings: Settings, run_id: str, allowed_types: list[str]) -> Verdict:
    """Gather the gate's inputs from MLflow, decide, and record the verdict on the run."""
    client = registry.client(settings.tracking)
    metric = settings.acceptance.metric
    run = registry.run(client, run_id)
    value = run.data.metrics.get(metric, math.nan)
    champion = registry.production(client, settings.tracking.registered_model)
    production_value = None
    if champion is not None and champion.run_id != run_id:
        rows = _validation_rows(client, run_id)
        model = registry.load(client, champion, settings.tracking.registered_model, allowed_types)
        from cd4ml.problems import get_problem  # deferred: the pure decide() and its tests need no numpy

        production_value = _score(model, rows, metric, get_problem(settings.problem).evaluate)
    baseline_value = run.data.metrics.get(f"baseline_{metric}", math.nan)  # scored on the same rows by the pipeline
    gate = settings.acceptance
    verdict = decide(
        metric, value, baseline_value, gate.min_gain, gate.min, gate.max, gate.tolerance,
        production_value, champion.number if champion and production_value is not None else None, run_id,
    )
    tracking.record_verdict(client, run_id, verdict.accepted, verdict.message)
    if production_value is not None:
        tracking.record_production_score(client, run_id, metric, production_value, champion.number)
    return verdict


def _validation_rows(client, run_id: str):
    import pandas as pd  # deferred: the pure decide() and its tests need no pandas

    return pd.read_parquet(io.BytesIO(tracking.artifact_bytes(client, run_id, tracking.VALIDATION_ROWS)))


def _score(model, rows, metric: str, evaluate) -> float:
    predicted = model.predict(rows.drop(columns=["target", "weight"]))
    return evaluate(rows["target"].to_numpy(), predicted, rows["weight"].to_numpy())[metric]
