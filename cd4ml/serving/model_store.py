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
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

from cd4ml.errors import Cd4mlError
from cd4ml.events import iso_utc
from cd4ml.problems.favorita.schema import WORKSHOP_STORE
from cd4ml.serving.poller import Poller

# Forecasts are deterministic per model, so repeated questions are answered from a small cache
# that lives and dies with its LoadedModel: a swap starts with an empty cache, no key can leak
# across versions. 8,192 entries of (date, item, store, promo) -> float cost about 1.5 MB.
PREDICTION_CACHE_SIZE = 8192
# How often a worker looks at the nudge file that POST /reload on a sibling worker touches.
NUDGE_CHECK_SECONDS = 0.25
# The largest forecast grid precomputed at load (items x stores x days x promotion); about 40 ms
# per 10,000 cells, once per model version.
GRID_MAX_CELLS = 20_000


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
    period: tuple[str, str] | None = field(init=False, compare=False)  # first and last day of its data, ISO
    predict_one: Callable[[str, int, int, bool], float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "stores", known_stores(self.model))
        set_(self, "default_store", default_store(self.stores))
        period = getattr(getattr(self.model, "named_steps", {}).get("features"), "period", None)
        set_(self, "period", tuple(period) if period else None)
        set_(self, "items", tuple(sorted(
            ({"item_nbr": int(item), "name": str(facts.get("name", item)), "family": str(facts.get("family", ""))}
             for item, facts in self.catalogue.items()),
            key=lambda row: (row["name"].startswith("Item "), row["name"].lower(), row["item_nbr"]),
        )))
        grid = forecast_grid(self.model, self.catalogue, self.stores)
        set_(self, "predict_one", _cached_predictor(self.model, PREDICTION_CACHE_SIZE, grid))


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


def forecast_grid(model: Any, catalogue: Mapping[int, Any], stores: frozenset[int]) -> dict[tuple, float]:
    """Every forecast of the model's products and stores, with and without promotion, from the
    first day of its data to a year after the last, predicted in one batch when a model is
    loaded: a request in that range is a dictionary lookup. Empty when the grid would exceed
    GRID_MAX_CELLS (then requests use the model, memoised) or the model does not know its period."""
    period = getattr(getattr(model, "named_steps", {}).get("features"), "period", None)
    if not period or not stores:
        return {}
    first, last = date.fromisoformat(period[0]), date.fromisoformat(period[1]) + timedelta(days=365)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    if len(days) * len(catalogue) * len(stores) * 2 > GRID_MAX_CELLS:
        return {}
    keys = [(day, int(item), store, promo) for item in catalogue for store in sorted(stores)
            for promo in (False, True) for day in days]
    requests = [{"date": d, "item_nbr": i, "store_nbr": s, "onpromotion": p} for d, i, s, p in keys]
    return dict(zip(keys, map(float, model.predict(requests))))


def _cached_predictor(model: Any, size: int, grid: Mapping[tuple, float]) -> Callable[[str, int, int, bool], float]:
    """A forecast from the precomputed grid, else model.predict on one request dict, memoised;
    the cache holds the model, not the LoadedModel."""

    @lru_cache(maxsize=size)
    def from_model(day: str, item_nbr: int, store_nbr: int, onpromotion: bool) -> float:
        request = {"date": day, "item_nbr": item_nbr, "store_nbr": store_nbr, "onpromotion": onpromotion}
        return float(model.predict([request])[0])

    def predict_one(day: str, item_nbr: int, store_nbr: int, onpromotion: bool) -> float:
        found = grid.get((day, item_nbr, store_nbr, onpromotion))
        return found if found is not None else from_model(day, item_nbr, store_nbr, onpromotion)

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
        nudge_path: Path | None = None,
    ) -> None:
        self._fetch = fetch
        self.poll_seconds = poll_seconds
        self.nudge_path = nudge_path  # shared by the workers of one server: see nudge()
        self._seen_nudge = _mtime(nudge_path)
        self._logger = logger or logging.getLogger(__name__)
        self._current: LoadedModel | None = None
        self._refresh_lock = threading.Lock()
        self.poller = Poller("cd4ml-model-poll", self.refresh, poll_seconds,
                              nudged=self._nudged if nudge_path is not None else None,
                              check_seconds=NUDGE_CHECK_SECONDS, first=lambda: self.last_check is None)
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
        poll_seconds (never again if 0), and within NUDGE_CHECK_SECONDS of a nudge."""
        self.poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (waits for a refresh in progress up to `timeout` seconds)."""
        self.poller.stop(timeout)

    def nudge(self) -> None:
        """Tell the other workers of this server to refresh now (after POST /reload here): they
        watch the nudge file's time and refresh within NUDGE_CHECK_SECONDS."""
        if self.nudge_path is None:
            return
        touch_nudge_file(self.nudge_path)
        self._seen_nudge = _mtime(self.nudge_path)

    def _nudged(self) -> bool:
        seen = _mtime(self.nudge_path)
        if seen != self._seen_nudge:
            self._seen_nudge = seen
            return True
        return False

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


# --- nudge files: how POST /reload, deploy and rollback reach every worker of a local server ----

NUDGE_NAME = "reload-{port}.stamp"


def nudge_file(data_dir: Path, port: int) -> Path:
    """The file the workers of the server on this port watch (in the data folder it serves from)."""
    return data_dir / NUDGE_NAME.format(port=port)


def touch_nudge_file(path: Path) -> None:
    """Change the file's time: every worker watching it refreshes within NUDGE_CHECK_SECONDS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time.time()}\n")


def nudge_local_servers(data_dir: Path) -> int:
    """Make every server serving from this data folder look at the registry now, as POST /reload
    does (it only makes them ask the registry: no model or version is named); how many files.
    A file left by a server that has stopped costs nothing."""
    found = sorted(data_dir.glob(NUDGE_NAME.format(port="*"))) if data_dir.is_dir() else []
    for path in found:
        touch_nudge_file(path)
    return len(found)


def _mtime(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
