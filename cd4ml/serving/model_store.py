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
from pathlib import Path
from typing import Any, Callable

from cd4ml.errors import Cd4mlError
from cd4ml.events import iso_utc
from cd4ml.serving.poller import Poller

# How often a worker looks at the nudge file that POST /reload on a sibling worker touches.
NUDGE_CHECK_SECONDS = 0.25


@dataclass(frozen=True)
class LoadedModel:
    """One registry version, loaded and ready to answer, with what its problem derives from it.

    serving: the problem's Serving (cd4ml.problems), by default that of the default problem;
    facts: serving.facts(model, catalogue), once at load. A problem's facts are read as attributes
    of the loaded model too (Favorita's `loaded.stores`, `loaded.items`, `loaded.predict_one`).
    """

    version: str  # registry version number as text, e.g. "3"
    run_id: str
    git_commit: str
    model: Any  # the fitted sklearn Pipeline
    catalogue: Any = None  # what the problem's facts start from when the model does not say (or None)
    loaded_at: float = 0.0  # time.time()
    serving: Any = field(default=None, repr=False, compare=False)
    facts: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        serving = self.serving if self.serving is not None else default_serving()
        object.__setattr__(self, "serving", serving)
        object.__setattr__(self, "facts", serving.facts(self.model, self.catalogue))
        if self.catalogue is None:
            object.__setattr__(self, "catalogue", getattr(self.facts, "catalogue", None))

    def __getattr__(self, name: str) -> Any:  # only for names the dataclass lacks: the problem's facts
        if name == "facts":
            raise AttributeError(name)
        return getattr(self.facts, name)


def default_serving() -> Any:
    """The Serving of params.toml's default problem."""
    from cd4ml.config import DEFAULTS
    from cd4ml.problems import get_problem

    return get_problem(DEFAULTS["problem"]).serving


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
