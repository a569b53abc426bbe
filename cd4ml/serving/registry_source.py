"""Where a server's models come from: the registry's production alias (and nowhere else)."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from cd4ml import registry
from cd4ml.config import TrackingSettings
from cd4ml.serving.model_store import LoadedModel


def production_fetcher(
    tracking: TrackingSettings, allowed_types: Iterable[str], serving: Any = None,
) -> Callable[[str | None], LoadedModel | None]:
    """fetch(current_version) for a ModelStore: the production version when it is another one
    than current_version, None when unchanged or when nothing is deployed yet. Raises when the registry cannot be reached or the
    version cannot be loaded, so the store keeps what it has and reports why. serving: the problem's
    Serving (cd4ml.problems), which derives what it needs from the loaded model."""
    allowed = tuple(allowed_types)
    name = tracking.registered_model
    clients: list = []

    def fetch(current: str | None) -> LoadedModel | None:
        if not clients:
            clients.append(registry.client(tracking))
        version = registry.production(clients[0], name)
        if version is None:  # nothing deployed yet (or the alias was removed): keep what we have
            return None
        if version.number == current:
            return None
        model = registry.load(clients[0], version, name, allowed)
        return LoadedModel(
            version=version.number,
            run_id=version.run_id,
            git_commit=version.tags.get("git.commit", ""),
            model=model,
            loaded_at=time.time(),
            serving=serving,
        )

    return fetch
