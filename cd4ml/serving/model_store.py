"""The model a server answers with, and the thread that swaps it when production moves.

A request reads `store.current` once and uses only that LoadedModel, so a swap (one reference
assignment) can never make a request fail or mix two models. When the registry cannot be
reached, or the new version cannot be loaded, the store keeps the model it has and says why
in `status["last_error"]`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

from cd4ml.errors import Cd4mlError
from cd4ml.events import iso_utc
from cd4ml.problems.favorita.schema import WORKSHOP_STORE

# Forecasts are deterministic per model, so repeated questions are answered from a small cache
# that lives and dies with its LoadedModel: a swap starts with an empty cache, no key can leak
# across versions. 8,192 entries of (date, item, store, promo) -> float cost about 1.5 MB.
PREDICTION_CACHE_SIZE = 8192


@dataclass(frozen=True)
class LoadedModel:
    """One registry version, loaded and ready to answer."""

    version: str  # registry version number as text, e.g. "3"
    run_id: str
    git_commit: str
    model: Any  # the fitted sklearn Pipeline
    catalogue: Mapping[int, Mapping[str, Any]]  # from model.named_steps["features"].catalogue
    loaded_at: float  # time.time()
    stores: frozenset[int] = field(init=False, compare=False)  # stores the encoder has seen
    default_store: int | None = field(init=False, compare=False)  # what a request may leave out
    items: tuple[dict[str, Any], ...] = field(init=False, repr=False, compare=False)
    predict_one: Callable[[str, int, int, bool], float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "stores", known_stores(self.model))
        set_(self, "default_store", default_store(self.stores))
        set_(self, "items", tuple(sorted(
            ({"item_nbr": int(item), "name": str(facts.get("name", item)), "family": str(facts.get("family", ""))}
             for item, facts in self.catalogue.items()),
            key=lambda row: (row["name"].startswith("Item "), row["name"].lower(), row["item_nbr"]),
        )))
        set_(self, "predict_one", _cached_predictor(self.model, PREDICTION_CACHE_SIZE))


def default_store(stores: frozenset[int]) -> int | None:
    """The store a request may leave out: the only one known, else the workshop's store 47 if known
    (or if the model cannot tell), else none: the request must name one."""
    if len(stores) == 1:
        return next(iter(stores))
    if not stores or WORKSHOP_STORE in stores:
        return WORKSHOP_STORE
    return None


def known_stores(model: Any) -> frozenset[int]:
    """The store numbers the model's DictVectorizer saw in training (empty when it cannot tell)."""
    steps = getattr(model, "named_steps", {})
    vocabulary = getattr(steps.get("encode"), "vocabulary_", None) or {}
    found = set()
    for name in vocabulary:
        prefix, _, value = str(name).partition("=")
        if prefix == "store_nbr" and value.isdigit():
            found.add(int(value))
    return frozenset(found)


def _cached_predictor(model: Any, size: int) -> Callable[[str, int, int, bool], float]:
    """model.predict on one request dict, memoised; the cache holds the model, not the LoadedModel."""

    @lru_cache(maxsize=size)
    def predict_one(day: str, item_nbr: int, store_nbr: int, onpromotion: bool) -> float:
        request = {"date": day, "item_nbr": item_nbr, "store_nbr": store_nbr, "onpromotion": onpromotion}
        return float(model.predict([request])[0])

    return predict_one


class ModelStore:
    """Holds the production model; a daemon thread asks `fetch` for a newer one every poll_seconds.

    fetch(current_version) returns a new LoadedModel when production points at another version,
    None when unchanged; it raises ServiceUnreachable (registry down) or another Cd4mlError
    (that version cannot be loaded). poll_seconds=0 tries once at start, then only on refresh().
    """

    def __init__(
        self,
        fetch: Callable[[str | None], LoadedModel | None],
        poll_seconds: float,
        logger: logging.Logger | None = None,
    ) -> None:
        self._fetch = fetch
        self.poll_seconds = poll_seconds
        self._logger = logger or logging.getLogger(__name__)
        self._current: LoadedModel | None = None
        self._refresh_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_check: float | None = None
        self.swaps = 0

    @property
    def current(self) -> LoadedModel | None:
        """The model to answer with: read it once per request."""
        return self._current

    def refresh(self) -> bool:
        """Ask the registry once; True when the model was swapped. Never raises."""
        with self._refresh_lock:
            current = self._current
            try:
                new = self._fetch(current.version if current else None)
            except Exception as err:  # keep serving the model we have, whatever went wrong
                self._failed(err, current)
                return False
            finally:
                self.last_check = time.time()
            self.last_error = None
            if new is None:
                return False
            self._current = new  # one reference assignment: requests see the old or the new model
            self.swaps += 1
            self._logger.info(
                "serving model version %s (run %s)%s", new.version, new.run_id,
                f", was version {current.version}" if current else "",
            )
            return True

    def _failed(self, err: Exception, current: LoadedModel | None) -> None:
        message = str(err) if isinstance(err, Cd4mlError) else f"{type(err).__name__}: {err}"
        keeping = f"; still serving version {current.version}" if current else "; no model loaded yet"
        if message != self.last_error:  # once per distinct error, not on every poll
            if isinstance(err, Cd4mlError):
                self._logger.warning("model refresh failed: %s%s", message, keeping)
            else:
                self._logger.exception("model refresh failed unexpectedly%s", keeping)
        self.last_error = message

    def start(self) -> None:
        """Start the poll thread: it loads at once unless refresh() ran already, then checks every
        poll_seconds (never again if 0)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._poll, name="cd4ml-model-poll", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (waits for a refresh in progress up to `timeout` seconds)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self) -> None:
        if self.last_check is None:
            self.refresh()
        while self.poll_seconds > 0 and not self._stopping.wait(self.poll_seconds):
            self.refresh()

    @property
    def status(self) -> dict[str, Any]:
        """What is served and how the last registry check went (times as ISO-8601 UTC)."""
        current = self._current
        return {
            "version": current.version if current else None,
            "run_id": current.run_id if current else None,
            "git_commit": current.git_commit if current else None,
            "loaded_at": iso_utc(current.loaded_at) if current else None,
            "last_error": self.last_error,
            "last_check": iso_utc(self.last_check) if self.last_check is not None else None,
        }
