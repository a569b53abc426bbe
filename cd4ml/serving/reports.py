"""The latest monitoring report from MLflow, for a server whose events go to fluentd.

Such a server has no local event log and no data/monitoring/latest.json: `monitor` runs
elsewhere (Jenkins, a laptop) and logs its report as the artifact monitoring/report.json of a
run in the experiment [monitoring] experiment. A ReportCache asks MLflow for the latest one in
a daemon thread, at start and then every refresh_seconds; the /monitoring page only reads what
the thread last found (`cache.state`), so neither the page nor a forecast ever waits for MLflow.
When MLflow cannot be reached the state says so, and keeps the last report it had.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from cd4ml.config import Settings
from cd4ml.errors import Cd4mlError
from cd4ml.serving.poller import Poller

Fetch = Callable[[], "tuple[dict[str, Any], str] | None"]


@dataclass(frozen=True)
class ReportState:
    """What the page shows: the last report found (and when), and how the last check went."""

    where: str  # e.g. "MLflow at http://mlflow:5000, experiment sales-forecast-monitoring"
    report: dict[str, Any] | None = None
    run_id: str | None = None
    fetched_at: float | None = None  # time.time() of the check that found `report`
    checked_at: float | None = None  # time.time() of the last check, None before the first one ends
    error: str | None = None  # why the last check failed; None when it succeeded


class ReportCache:
    """The latest monitoring report of MLflow, refreshed in a daemon thread; `state` never blocks.

    fetch() returns (report, run id) or None when there is no report yet, and raises when MLflow
    cannot be reached. refresh_seconds=0: check once at start, then only on refresh().
    """

    def __init__(self, fetch: Fetch, where: str, refresh_seconds: float, logger: logging.Logger | None = None) -> None:
        self._fetch = fetch
        self.refresh_seconds = refresh_seconds
        self._logger = logger or logging.getLogger(__name__)
        self._state = ReportState(where=where)
        self._lock = threading.Lock()
        self.poller = Poller("cd4ml-report-refresh", self.refresh, refresh_seconds)

    @property
    def state(self) -> ReportState:
        return self._state  # one reference: a request sees the old state or the new one

    def refresh(self) -> bool:
        """Ask MLflow once; True when it answered. Never raises."""
        with self._lock:
            before = self._state
            try:
                found = self._fetch()
            except Exception as err:  # keep the report we have, whatever went wrong
                message = str(err) if isinstance(err, Cd4mlError) else f"{type(err).__name__}: {err}"
                if message != before.error:
                    self._logger.warning("reading the latest monitoring report from %s failed: %s", before.where, message)
                self._state = ReportState(before.where, before.report, before.run_id, before.fetched_at, time.time(),
                                          message)
                return False
            now = time.time()
            report, run_id = found if found is not None else (None, None)
            self._state = ReportState(before.where, report, run_id, now, now, None)
            return True

    def start(self) -> None:
        """Start the thread: it checks at once, then every refresh_seconds."""
        self.poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.poller.stop(timeout)


def shown_uri(uri: str) -> str:
    """A tracking URI fit for a web page: without a user or password in it."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def mlflow_report_cache(settings: Settings) -> ReportCache:
    """A ReportCache on the configured tracking store and the monitoring experiment."""
    from cd4ml import registry
    from cd4ml.monitoring.run import latest_reported

    clients: list[Any] = []

    uri = settings.tracking.uri

    def fetch() -> tuple[dict[str, Any], str] | None:
        try:
            if not clients:  # fails fast (ServiceUnreachable) while a remote server is down; tried again next time
                clients.append(registry.client(settings.tracking))
            return latest_reported(clients[0], settings.monitoring.experiment)
        except Cd4mlError as err:  # the page shows the message: no credentials in it
            raise type(err)(err.message.replace(uri, shown_uri(uri)), err.hint) from None

    where = f"MLflow at {shown_uri(settings.tracking.uri)}, experiment {settings.monitoring.experiment}"
    return ReportCache(fetch, where, settings.monitoring.report_refresh_seconds)
