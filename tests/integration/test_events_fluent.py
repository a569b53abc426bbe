"""Prediction events to fluentd, against real sockets in this process.

fluentd itself cannot run here, so two stand-ins play its part over real TCP on localhost:
a *stalled* listener that accepts connections and never reads (fluentd hung or overloaded),
and a minimal forward-protocol reader (msgpack [tag, time, record] messages, as fluentd's
in_forward receives them from fluent-logger).
"""

from __future__ import annotations

import logging
import time

import msgpack
import pytest

from cd4ml.events import FluentSink
from cd4ml.serving.app import close_services, create_app
from cd4ml.serving.model_store import ModelStore
from tests.conftest import free_port
from tests.serving_helpers import SCHEMA, TIMESTAMP, Registry, an_event, loaded, model_a, serving_settings, wait_for
from tests.stand_ins import Listener


@pytest.fixture
def stalled():
    listener = Listener(read=False)
    yield listener
    listener.close()


@pytest.fixture
def reader():
    listener = Listener(read=True)
    yield listener
    listener.close()


def stall(sink: FluentSink, listener: Listener) -> int:
    """Emit until the sender thread is stuck in send(): the kernel buffers towards the listener are full.

    Returns how many events that took (several thousand: loopback buffers hold megabytes).
    """
    emitted = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for _ in range(500):
            sink.emit(an_event(item_nbr=emitted))
            emitted += 1
        drained = time.monotonic() + 0.3
        while sink.stats()["queued"] and time.monotonic() < drained:
            time.sleep(0.005)
        if sink.stats()["queued"] and listener.connections:  # the sender cannot empty its queue any more
            return emitted
    raise AssertionError("the sender never stalled against a listener that does not read")


def test_a_stalled_fluentd_never_slows_emits_and_drops_are_counted(stalled, tiny_data, capsys, caplog):
    sink = FluentSink("127.0.0.1", stalled.port, timeout=3.0, queue_size=1000)
    try:
        filled = stall(sink, stalled)
        before = sink.stats()["dropped"]
        started = time.perf_counter()
        for i in range(2000):
            sink.emit(an_event(item_nbr=i))
        seconds = time.perf_counter() - started
        with capsys.disabled():
            print(f"\n2,000 emits against a stalled listener took {seconds * 1000:.1f} ms "
                  f"({seconds / 2000 * 1e6:.1f} µs each) after {filled:,} events filled the socket buffers")
        # Sanity bound only: a blocking sender would take the 3 s timeout per emit, i.e. hours.
        assert seconds < 3.0
        stats = sink.stats()
        assert stats["dropped"] > before and stats["dropped"] >= 1000  # the circular queue overwrote the oldest
        assert any("dropping prediction events for fluentd" in r.getMessage() for r in caplog.records)

        # Forecasts still answer, at once, and /version reports the drops.
        store = ModelStore(Registry(loaded(model_a(tiny_data), "1")), poll_seconds=0)
        store.refresh()
        client = create_app(serving_settings(fluentd_host="127.0.0.1", fluentd_port=stalled.port), store,
                            sink).test_client()
        for day in range(1, 21):
            response = client.get(f"/prediction?date=2016-08-{day:02d}&item_nbr=99197")
            assert response.status_code == 200
        events = client.get("/version").get_json()["events"]
        assert events["sink"] == "fluentd" and events["dropped"] >= stats["dropped"]
    finally:
        sink.close(timeout=0.5)
    assert sink.stats()["dropped"] >= 1000


def test_events_reach_a_forward_protocol_reader_with_tag_and_schema(reader, tiny_data):
    v1 = loaded(model_a(tiny_data), "1")
    store = ModelStore(Registry(v1), poll_seconds=0)
    store.refresh()
    sink = FluentSink("127.0.0.1", reader.port)
    client = create_app(serving_settings(fluentd_host="127.0.0.1", fluentd_port=reader.port), store,
                        sink).test_client()
    answers = []
    for day in range(1, 31):
        response = client.get(f"/prediction?date=2016-09-{day:02d}&item_nbr=1963838&onpromotion=true")
        assert response.status_code == 200
        answers.append(response.get_json())
    sink.close()
    wait_for(lambda: len(reader.messages) >= 30, what="30 events at the reader")
    assert len(reader.messages) == 30
    assert sink.stats()["sent"] == 30 and sink.stats()["dropped"] == 0
    for (tag, when, record), answer in zip(reader.messages, answers):
        assert tag == "model.prediction"
        assert isinstance(when, msgpack.ExtType) and when.code == 0  # fluentd's EventTime
        assert {name: type(value) for name, value in record.items()} == SCHEMA
        assert TIMESTAMP.fullmatch(record["@timestamp"])
        assert record["schema_version"] == 1 and record["event"] == "prediction"
        assert {k: record[k] for k in answer} == answer
        assert record["item_name"] == "Soap" and record["onpromotion"] is True


def test_fluentd_down_never_fails_an_emit_and_unsent_events_count_as_dropped():
    port = free_port()  # nothing listens here: connections are refused
    sink = FluentSink("127.0.0.1", port, timeout=0.5)
    for i in range(50):
        sink.emit(an_event(item_nbr=i))
    wait_for(lambda: sink.stats()["queued"] == 0, what="the sender trying every event")
    sink.close(timeout=2)
    assert sink.stats()["sent"] == 0 and sink.stats()["dropped"] == 50


def test_the_retry_buffer_is_bounded_and_its_overflow_counted():
    port = free_port()
    sink = FluentSink("127.0.0.1", port, timeout=0.5, bufmax=2000)  # a few events' worth
    for i in range(100):
        sink.emit(an_event(item_nbr=i))
    wait_for(lambda: sink.stats()["queued"] == 0, what="the sender trying every event")
    dropped_before_close = sink.stats()["dropped"]
    sink.close(timeout=2)
    assert dropped_before_close >= 80  # discarded from the buffer while fluentd was down
    assert sink.stats()["dropped"] == 100 and sink.stats()["sent"] == 0


def test_a_worker_reports_its_sent_and_dropped_events_in_its_log_at_exit(tiny_data, caplog):
    port = free_port()  # fluentd unreachable
    store = ModelStore(Registry(loaded(model_a(tiny_data), "1")), poll_seconds=0)
    store.refresh()
    sink = FluentSink("127.0.0.1", port, timeout=0.5)
    app = create_app(serving_settings(fluentd_host="127.0.0.1", fluentd_port=port), store, sink)
    client = app.test_client()
    for day in range(1, 11):
        assert client.get(f"/prediction?date=2016-08-{day:02d}&item_nbr=99197").status_code == 200
    wait_for(lambda: sink.stats()["queued"] == 0, what="the sender trying every event")
    with caplog.at_level(logging.INFO, logger="cd4ml.serving.app"):
        close_services(app, timeout=2)
    (line,) = [r for r in caplog.records if "prediction events at exit" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == f"prediction events at exit: 0 sent, 10 dropped (fluentd 127.0.0.1:{port})"


def test_events_sent_while_fluentd_was_down_reach_it_when_it_is_back():
    """After a failed connection the sender waits retry_seconds before the next (cheap while fluentd is
    down), keeping what it could not send; then it connects again and delivers it all, in order."""
    port = free_port()
    sink = FluentSink("127.0.0.1", port, timeout=0.5, retry_seconds=0.2)
    for i in range(20):
        sink.emit(an_event(item_nbr=i))
    wait_for(lambda: sink.stats()["queued"] == 0, what="the sender trying every event")
    assert sink.stats()["sent"] == 0 and sink.stats()["dropped"] == 0  # waiting in the retry buffer
    back = Listener(read=True, port=port)
    try:
        deadline = time.monotonic() + 10
        i = 20
        while len(back.messages) < i and time.monotonic() < deadline:
            sink.emit(an_event(item_nbr=i))  # the next event after the wait brings the others along
            i += 1
            time.sleep(0.05)
        sink.close()
        wait_for(lambda: len(back.messages) == i, what=f"all {i} events at the listener")
        assert [record["item_nbr"] for _, _, record in back.messages] == list(range(i))
        assert sink.stats()["sent"] == i and sink.stats()["dropped"] == 0
    finally:
        back.close()
