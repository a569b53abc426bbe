"""One daemon thread that refreshes something now and then: the model store's and the report cache's.

    poller = Poller("cd4ml-model-poll", store.refresh, every=10.0, nudged=store.nudged)
    poller.start(); ...; poller.stop()

It refreshes once at start (unless `first` says not to), then every `every` seconds (never
again if 0), and as soon as `nudged()` turns true, which it asks every `check_seconds`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


class Poller:
    """Calls `refresh` in a daemon thread named `name`: at start, every `every` seconds, and when nudged."""

    def __init__(self, name: str, refresh: Callable[[], Any], every: float,
                 nudged: Callable[[], bool] | None = None, check_seconds: float = 0.25,
                 first: Callable[[], bool] | None = None) -> None:
        self.name = name
        self.every = every
        self.check_seconds = check_seconds
        self._refresh = refresh
        self._nudged = nudged
        self._first = first or (lambda: True)  # whether to refresh at start
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The thread while started (it may have ended by itself when every is 0), None after stop()."""
        return self._thread

    def start(self) -> None:
        """Start the thread (once: a running poller is left alone)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (waits for a refresh in progress up to `timeout` seconds)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        if self._first():
            self._refresh()
        if self.every <= 0 and self._nudged is None:
            return  # refreshed once; only explicit refreshes from now on
        step = self.check_seconds if self._nudged is not None else self.every
        due = time.monotonic() + self.every
        while not self._stopping.wait(step):
            nudged = self._nudged is not None and self._nudged()
            if nudged or (self.every > 0 and time.monotonic() >= due):
                self._refresh()
                due = time.monotonic() + self.every
