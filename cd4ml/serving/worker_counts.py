"""Event counts of every worker of one server, so that /version answers the same whichever worker replies.

Each gunicorn worker has its own sink and counts. Every second a worker writes its counts to
<folder>/<pid>.json (atomically: a write and a rename); /version adds its own live counts to the
latest files of its siblings. The CLI empties the folder before a server starts, so the sums are
those of this server: a worker that gunicorn replaced keeps its last counts in the sum.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

SUMMED = ("sent", "dropped", "queued")


def reset(folder: Path) -> None:
    """Forget the counts of a previous server on this port (before the workers start)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


class WorkerCounts:
    """Publishes this worker's counts (own()) every `seconds`, and sums them with its siblings'."""

    def __init__(self, folder: Path, own: Callable[[], dict[str, Any]], seconds: float = 1.0) -> None:
        self.folder = Path(folder)
        self._own = own
        self._seconds = seconds
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cd4ml-worker-counts", daemon=True)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.publish()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._seconds + 1)
        self.publish()  # the final counts, after the sink's last flush

    def publish(self) -> None:
        path = self.folder / f"{self._pid}.json"
        temporary = path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps({k: self._own().get(k, 0) for k in SUMMED}))
            temporary.replace(path)
        except OSError:
            pass  # counts are a report: a full disk must not fail a worker

    def total(self) -> dict[str, Any]:
        """own() with sent, dropped and queued summed over every worker, and how many workers that is."""
        mine = self._own()
        summed = {k: mine.get(k, 0) for k in SUMMED}
        workers = 1
        for path in self.folder.glob("*.json"):
            if path.stem == str(self._pid):
                continue
            try:
                theirs = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced right now: next time
            workers += 1
            for key in SUMMED:
                summed[key] += int(theirs.get(key, 0))
        return {**mine, **summed, "workers": workers, "this_worker": {k: mine.get(k, 0) for k in SUMMED}}

    def _loop(self) -> None:
        while not self._stop.wait(self._seconds):
            self.publish()
