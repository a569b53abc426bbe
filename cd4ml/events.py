"""Prediction events: one per forecast served, sent to fluentd or appended to a local JSON-lines file.

Schema, version 1 (monitoring reads these; the Elasticsearch index template maps them):

    field           type      meaning
    --------------  --------  ------------------------------------------------------------------
    @timestamp      string    when the forecast was served: ISO-8601 UTC, milliseconds, "Z"
                              (e.g. "2026-11-23T13:35:10.123Z"); Elasticsearch type date
    schema_version  integer   1; raised whenever a field changes name, type or meaning
    event           string    always "prediction"
    problem         string    the problem that answered, e.g. "favorita", "houses" (keyword)
    ...                       the problem's own fields (its Serving.event_fields), then:
    prediction      float     the forecast, not rounded (Favorita: unit sales, >= 0; houses: dollars)
    model_version   string    registry version of the model that answered, e.g. "3" (keyword)
    run_id          string    MLflow run id of that model (keyword)
    latency_ms      float     milliseconds this server's worker spent on the request: from the
                              parsed HTTP request reaching the app to the response ready
                              (routing, input checks, the forecast, the JSON or page); not the
                              network, nor the wait for a free worker (cd4ml.serving.forecast.record)

Favorita's fields, in this order:

    date            string    the date the forecast is for, YYYY-MM-DD (type date)
    item_nbr        integer   the product's number
    item_name       string    the product's name in the model's catalogue (type keyword)
    store_nbr       integer   the store's number
    onpromotion     boolean   whether the request said the product is on promotion

The houses problem's: sale_id (keyword) and the request's columns (cd4ml/problems/houses/serving.py).

fluentd receives them with the tag "model.prediction". Sending never fails or slows a forecast:
both sinks hand the event to a bounded queue drained by a background thread, and count what
they have to drop (fluentd down or stalled, disk full) instead of waiting.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import msgpack
from fluent import asyncsender

from cd4ml.config import Paths, ServingSettings

SCHEMA_VERSION = 1
FLUENT_TAG = "model.prediction"


def iso_utc(seconds: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC with milliseconds and a Z."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def prediction_event(
    *, prediction: float, model_version: str, run_id: str, latency_ms: float, at: float | None = None,
    problem: str | None = None, **fields: Any,
) -> dict[str, Any]:
    """One prediction event (schema above): the problem's `fields` in the order given; `at` defaults
    to now. Without `problem` (events written before issue 15) the event has no problem field."""
    head: dict[str, Any] = {
        "@timestamp": iso_utc(time.time() if at is None else at),
        "schema_version": SCHEMA_VERSION,
        "event": "prediction",
    }
    if problem is not None:
        head["problem"] = problem
    return {**head, **fields, "prediction": prediction, "model_version": model_version, "run_id": run_id,
            "latency_ms": latency_ms}


class EventSink(Protocol):
    def emit(self, event: dict[str, Any]) -> None:
        """Hand over one event; never blocks, never raises."""

    def close(self, timeout: float = 5.0) -> None:
        """Send or write what is queued, waiting at most `timeout` seconds."""

    def stats(self) -> dict[str, Any]:
        """{"sink", "sent", "dropped", ...}: what reached its destination and what was lost."""


class _Counts:
    """Sent and dropped events, updated from several threads; warns once, at the first drop."""

    def __init__(self, logger: logging.Logger, where: str) -> None:
        self._lock = threading.Lock()
        self._logger = logger
        self._where = where
        self.sent = 0
        self.dropped = 0

    def add_sent(self, n: int) -> None:
        with self._lock:
            self.sent += n

    def add_dropped(self, n: int, why: str) -> None:
        if n <= 0:
            return
        with self._lock:
            first = self.dropped == 0
            self.dropped += n
        if first:
            self._logger.warning(
                "dropping prediction events for %s (%s); forecasts are unaffected. "
                "Further drops are counted in /version, not logged.", self._where, why,
            )


class JsonlSink:
    """Appends one JSON line per event to `path`, from a background writer thread.

    The request thread only puts the event on a bounded queue; when the queue is full (the disk
    is slower than the traffic) the event is dropped and counted. Each batch is one write() on
    a file opened with O_APPEND, so several server processes can share the file line-safely.
    """

    def __init__(self, path: Path, queue_size: int = 10_000, logger: logging.Logger | None = None) -> None:
        self.path = Path(path)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._logger = logger or logging.getLogger(__name__)
        self._counts = _Counts(self._logger, str(self.path))
        self._closed = False
        self._thread = threading.Thread(target=self._write_loop, name="cd4ml-events-jsonl", daemon=True)
        self._thread.start()

    def emit(self, event: dict[str, Any]) -> None:
        if self._closed:
            self._counts.add_dropped(1, "the sink is closed")
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._counts.add_dropped(1, f"the write queue of {self._queue.maxsize} events is full")

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        return {"sink": "jsonl", "path": str(self.path), "sent": self._counts.sent,
                "dropped": self._counts.dropped, "queued": self._queue.qsize()}

    def _write_loop(self) -> None:
        fd, error = self._open()
        try:
            while True:
                batch = [self._queue.get()]
                while batch[-1] is not None and len(batch) < 1000:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                events = [e for e in batch if e is not None]
                if events and fd is None:
                    fd, error = self._open()  # the folder may have become writable
                if events and fd is None:
                    self._counts.add_dropped(len(events), f"cannot open {self.path}: {error}")
                elif events:
                    try:
                        _write_all(fd, "".join(json.dumps(e) + "\n" for e in events).encode())
                        self._counts.add_sent(len(events))
                    except (OSError, TypeError, ValueError) as err:
                        self._counts.add_dropped(len(events), f"cannot write {self.path}: {err}")
                if batch[-1] is None:
                    return
        finally:
            if fd is not None:
                os.close(fd)

    def _open(self) -> tuple[int | None, OSError | None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644), None
        except OSError as err:
            return None, err


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _CountingSender(asyncsender.FluentSender):
    """fluent-logger's async sender, telling us how many events reached the socket, and cheap
    while fluentd is unreachable.

    Relies on FluentSender._send_data and .pendings (fluent-logger 0.11, pinned): _send_data raises
    when sending failed, and the unsent events wait in pendings (up to bufmax bytes) for the next
    try. Two costs of the original while fluentd is down, paid in every worker for every event,
    are avoided: a connection attempt (after one fails there is none for `retry_seconds`), and
    `pendings += event` on bytes, which copies the whole buffer each time (ours is a bytearray).
    tests/integration/test_events_fluent.py checks the count against what a listener received;
    `benchmark --fluentd-fault` measures the latency.
    """

    def __init__(self, *args: Any, on_sent: Any, retry_seconds: float = 1.0, **kwargs: Any) -> None:
        self._on_sent = on_sent
        self._retry_seconds = retry_seconds
        self._retry_at = 0.0
        super().__init__(*args, **kwargs)

    @property
    def pendings(self) -> bytearray | None:
        return self._pendings

    @pendings.setter
    def pendings(self, value: bytes | bytearray | None) -> None:
        self._pendings = bytearray(value) if isinstance(value, bytes) else value

    def _send_data(self, bytes_: bytes) -> None:
        if self.socket is None and not self._closed and time.monotonic() < self._retry_at:
            raise OSError(f"fluentd at {self.host}:{self.port} failed less than {self._retry_seconds:g} s ago")
        try:
            super()._send_data(bytes_)
        except OSError:
            self._retry_at = time.monotonic() + self._retry_seconds
            raise
        self._on_sent(bytes_)


def count_packets(data: bytes) -> int:
    """How many forward-protocol messages (msgpack arrays) a byte string holds."""
    unpacker = msgpack.Unpacker()
    unpacker.feed(data)
    return sum(1 for _ in unpacker)


class FluentSink:
    """Sends events to fluentd (forward protocol) without ever blocking a forecast.

    fluent-logger's async sender with a circular queue: when fluentd is slow or down and the
    queue is full, the oldest event is discarded, never the request delayed. Dropped events
    are counted: overwritten in the queue, discarded from the retry buffer (over `bufmax`
    bytes), or still unsent when the sink closes.
    """

    def __init__(
        self, host: str, port: int, tag: str = FLUENT_TAG, *, timeout: float = 1.0, queue_size: int = 1000,
        bufmax: int = 1024 * 1024, retry_seconds: float = 1.0, logger: logging.Logger | None = None,
    ) -> None:
        self.host, self.port, self.tag = host, port, tag
        self._logger = logger or logging.getLogger(__name__)
        self._counts = _Counts(self._logger, f"fluentd at {host}:{port}")
        self._sender = _CountingSender(
            tag, host=host, port=port, timeout=timeout, bufmax=bufmax, nanosecond_precision=True,
            queue_maxsize=queue_size, queue_circular=True,
            queue_overflow_handler=self._overwritten,
            buffer_overflow_handler=self._overflowed,
            on_sent=self._sent, retry_seconds=retry_seconds,
        )
        self._closed = False

    def emit(self, event: dict[str, Any]) -> None:
        if self._closed:  # the closing sender holds its lock until flushed: do not wait for it
            self._counts.add_dropped(1, "the sink is closed")
            return
        try:
            accepted = self._sender.emit(None, event)
        except Exception as err:  # never let a log line fail a forecast
            accepted = False
            self._logger.debug("fluent emit failed: %s", err)
        if not accepted:
            self._counts.add_dropped(1, "the sender refused it")

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        closer = threading.Thread(target=self._sender.close, name="cd4ml-events-fluent-close", daemon=True)
        closer.start()
        closer.join(timeout)
        unsent = self._sender._queue.qsize() if closer.is_alive() else 0
        pending = self._sender.pendings
        if pending:
            unsent += count_packets(pending)
        self._counts.add_dropped(unsent, "they were still unsent at shutdown")

    def stats(self) -> dict[str, Any]:
        return {"sink": "fluentd", "address": f"{self.host}:{self.port}", "tag": self.tag,
                "sent": self._counts.sent, "dropped": self._counts.dropped,
                "queued": self._sender._queue.qsize()}

    def _sent(self, data: bytes) -> None:
        self._counts.add_sent(count_packets(data))

    def _overwritten(self, discarded: bytes) -> None:
        self._counts.add_dropped(1, "the send queue is full (fluentd slow or down)")

    def _overflowed(self, pending: bytes) -> None:
        self._counts.add_dropped(count_packets(pending), "the retry buffer is full (fluentd unreachable)")


def make_sink(serving: ServingSettings, paths: Paths) -> EventSink:
    """fluentd when FLUENTD_HOST is set, else the local JSON-lines file (paths.prediction_log)."""
    if serving.fluentd_host:
        return FluentSink(serving.fluentd_host, serving.fluentd_port)
    return JsonlSink(paths.prediction_log)
