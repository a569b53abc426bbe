"""The model registry: versions, the `production` alias, promotion and rollback.

The only module that registers versions or moves aliases. Versions carry the lineage of the
run that made them (git commit, build number, data fingerprint) and whether the acceptance
gate accepted them; only accepted versions can be promoted.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any, Iterable

from cd4ml import tracking
from cd4ml.config import TrackingSettings
from cd4ml.errors import Cd4mlError, ConfigError, DataError, ExperimentRefused, ModelRejected, ServiceUnreachable

ALIAS = "production"
LINEAGE_TAGS = tracking.LINEAGE_TAGS


@dataclass(frozen=True)
class Version:
    """One registered model version, as the CLI and the server need it."""

    number: str
    run_id: str
    source: str
    tags: dict[str, str]

    @property
    def accepted(self) -> bool:
        return self.tags.get("accepted") == "true"


@dataclass(frozen=True)
class Move:
    """What a promotion or rollback did to the alias."""

    name: str
    previous: str | None
    current: str
    seconds: float

    def __str__(self) -> str:
        before = f"v{self.previous}" if self.previous else "nothing"
        return f"{self.name}@{ALIAS}: {before} -> v{self.current} ({self.seconds:.2f} s)"


def client(tracking_settings: TrackingSettings):
    """An MlflowClient on the configured store, for tracking and registry alike (fails fast when a
    remote one does not answer). Every function here takes it: none uses MLflow's global URI."""
    return tracking.client(tracking_settings)


def run(mlflow_client, run_id: str):
    """The MLflow run `run_id`: DataError (exit 2) when the store has no such run, ServiceUnreachable
    (exit 3) when the store does not answer."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_run(run_id)
    except MlflowException as err:
        if _is_not_found(err):
            raise DataError(f"no such run {run_id!r} in {mlflow_client.tracking_uri}",
                            "Check the id (the pipeline prints it), or the store MLFLOW_TRACKING_URI points at.") from None
        raise ServiceUnreachable(f"cannot read run {run_id} from MLflow: {_one_line(err)}", "Is MLflow up?") from None
    except Exception as err:  # network errors from the REST client
        raise ServiceUnreachable(f"cannot read run {run_id} from MLflow: {_one_line(err)}", "Is MLflow up?") from None


def production(mlflow_client, name: str) -> Version | None:
    """The version the production alias points at, or None when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        found = mlflow_client.get_model_version_by_alias(name, ALIAS)
    except MlflowException as err:
        if _is_not_found(err):
            return None
        raise _unreachable(err) from None
    except Exception as err:  # network errors from the REST client
        raise _unreachable(err) from None
    return _version(found)


def versions(mlflow_client, name: str) -> list[Version]:
    """Every version of the registered model, newest first."""
    from mlflow.exceptions import MlflowException

    try:
        found = mlflow_client.search_model_versions(f"name = '{name}'")
    except MlflowException as err:
        if _is_not_found(err):
            return []
        raise _unreachable(err) from None
    return sorted((_version(v) for v in found), key=lambda v: int(v.number), reverse=True)


def register(mlflow_client, name: str, run_id: str, model_uri: str, run_tags: dict[str, str]) -> Version:
    """The version made from this run's model (a models:/<model id> URI): the existing one if it
    was registered before."""
    from mlflow.exceptions import MlflowException

    for existing in versions(mlflow_client, name):
        if existing.run_id == run_id:
            return existing
    tags = {k: v for k, v in run_tags.items() if k in LINEAGE_TAGS}
    tags.update({"accepted": "true", "run_id": run_id})
    try:
        mlflow_client.create_registered_model(name)
    except MlflowException as err:
        if str(err.error_code) not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise _unreachable(err) from None
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else None
    with tracking.global_uri_for(mlflow_client):  # MLflow's embedded registry reads the global URI here
        return _version(mlflow_client.create_model_version(name, model_uri, run_id=run_id, tags=tags, model_id=model_id))


def deployable(mlflow_client, run_id: str, script: str, model_uri: str | None = None) -> tuple[Any, str]:
    """(the MLflow run, its model's URI) when the gate accepted a production candidate; ModelRejected
    (exit 4) when the gate rejected it or never judged it, ExperimentRefused (exit 6) when it is an
    experiment (its cd4ml.run_kind tag: cd4ml/run_kind.py). model_uri: the one the pipeline recorded."""
    found = run(mlflow_client, run_id)
    verdict = tracking.verdict(found)
    if verdict == tracking.REJECTED:
        raise ModelRejected(
            f"run {run_id} was rejected by the acceptance gate; it is not deployed.",
            "Improve the model and run the pipeline again, or revert the change that made it (git revert).",
        )
    tags = found.data.tags
    if tags.get(tracking.RUN_KIND) == tracking.EXPERIMENT:
        raise ExperimentRefused(
            f"run {run_id} is an experiment ({tags.get(tracking.RUN_KIND_REASON, 'no reason recorded')}); "
            "deploy takes only production candidates.",
            "To ship it, make it the default: commit the change to the problem's params file on main and "
            "let the pipeline build it (docs/experiments.md).",
        )
    if verdict != tracking.ACCEPTED:
        raise ModelRejected(
            f"run {run_id} was not judged by the acceptance gate; it is not deployed.",
            f"Run `{script} acceptance` first, and deploy only an accepted model.",
        )
    return found, model_uri or tracking.logged_model_uri(mlflow_client, found)


def deploy(mlflow_client, name: str, run_id: str, model_uri: str | None, script: str) -> Move:
    """Register an accepted run's model (once) and point production at it."""
    found, uri = deployable(mlflow_client, run_id, script, model_uri)
    return promote(mlflow_client, name, register(mlflow_client, name, run_id, uri, found.data.tags))


def promote(mlflow_client, name: str, version: Version) -> Move:
    """Point the production alias at an accepted version."""
    if not version.accepted:
        raise ModelRejected(
            f"version {version.number} of {name} was not accepted by the gate, so it cannot go to production.",
            "Run `run_python_script.py acceptance` on its run first.",
        )
    started = time.perf_counter()
    before = production(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, ALIAS, version.number)
    mlflow_client.set_model_version_tag(name, version.number, "promoted_at", _now())
    return Move(name, before.number if before else None, version.number, time.perf_counter() - started)


def rollback(mlflow_client, name: str, to: str | None = None) -> Move:
    """Move production back to the previous accepted version (or to version `to`); no retraining."""
    started = time.perf_counter()
    current = production(mlflow_client, name)
    candidates = [v for v in versions(mlflow_client, name) if v.accepted]
    if to is not None:
        target = next((v for v in candidates if v.number == str(to)), None)
        if target is None:
            known = ", ".join(v.number for v in candidates) or "none"
            raise ConfigError(
                f"{name} has no accepted version {to}; accepted versions: {known}.",
                "Name one of them with --to.",
            )
    else:
        if current is None:
            raise ConfigError(
                f"nothing is deployed: {name} has no production version to roll back from.",
                "Deploy a model first (pipeline, acceptance, deploy), or name an accepted version with --to.",
            )
        older = [v for v in candidates if int(v.number) < int(current.number)]
        if not older:
            raise ConfigError(
                f"{name} has no accepted version older than production (v{current.number}).",
                "There is nothing to roll back to; name a version with --to.",
            )
        target = older[0]
    mlflow_client.set_registered_model_alias(name, ALIAS, target.number)
    mlflow_client.set_model_version_tag(name, target.number, "promoted_at", _now())
    return Move(name, current.number if current else None, target.number, time.perf_counter() - started)


def load(mlflow_client, version: Version, name: str, allowed_types: Iterable[str]) -> Any:
    """The fitted model of a version, downloaded through mlflow_client's store. Only skops files
    whose declared types are all allowed are loaded: never a pickle, never a type we do not know."""
    import mlflow.artifacts
    import mlflow.sklearn
    from mlflow.models import Model

    uri = f"models:/{name}/{version.number}"
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=_artifact_location(mlflow_client, version.source),
                                                        dst_path=folder, tracking_uri=mlflow_client.tracking_uri)
            flavor = Model.load(local).flavors.get("sklearn", {})
        except Exception as err:
            raise DataError(f"cannot read {uri}: {_one_line(err)}", "Its artifacts may be missing; roll back or redeploy.") from None
        _check_trusted(uri, flavor, allowed_types)
        try:
            return mlflow.sklearn.load_model(local)
        except Exception as err:
            raise DataError(f"cannot load {uri}: {_one_line(err)}", "Its artifacts may be missing or corrupt; roll back or redeploy.") from None


def _artifact_location(mlflow_client, source: str) -> str:
    """Where a version's files are, asked of this client's store: MLflow's own resolution of a
    models:/ URI asks the global tracking URI's store instead (MLflow 3.17, artifacts/__init__.py)."""
    if source.startswith("models:/m-"):
        return mlflow_client.get_logged_model(source.removeprefix("models:/")).artifact_location
    return source


def _check_trusted(uri: str, flavor: dict, allowed_types: Iterable[str]) -> None:
    """Refuse a model that is not skops, or declares a type we do not trust."""
    if flavor.get("serialization_format") != "skops":
        raise Cd4mlError(
            f"{uri} is saved as {flavor.get('serialization_format')!r}, not skops; refusing to load it.",
            "Only models logged by this project's pipeline (skops, no pickle) can be served.",
        )
    declared = set(flavor.get("skops_trusted_types") or ())
    unknown = sorted(declared - set(allowed_types))
    if unknown:
        raise Cd4mlError(
            f"{uri} declares types this server does not trust: {', '.join(unknown)}.",
            "Only models logged by this project's pipeline can be served.",
        )


def _one_line(err: Exception) -> str:
    """MLflow's and skops' messages span lines; an error a user sees is one."""
    return " ".join(str(err).split())


def _version(found) -> Version:
    return Version(number=str(found.version), run_id=found.run_id or "", source=found.source, tags=dict(found.tags or {}))


def _is_not_found(err) -> bool:
    return str(getattr(err, "error_code", "")) in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def _unreachable(err) -> ServiceUnreachable:
    return ServiceUnreachable(f"the model registry did not answer: {err}", "Check MLFLOW_TRACKING_URI and that MLflow is up.")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
