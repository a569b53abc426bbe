"""Prediction events: the schema, and the JSON-lines sink that never makes a forecast wait."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone

import pytest

import cd4ml.events
from cd4ml.config import Paths
from cd4ml.events import (
    SCHEMA_VERSION, FluentSink, JsonlSink, count_packets, iso_utc, make_sink,
)
from tests.serving_helpers import SCHEMA, TIMESTAMP, an_event, serving_settings


def test_an_event_has_exactly_the_documented_fields_and_types():
    event = an_event(at=1_470_009_600.1239)
    assert {name: type(value) for name, value in event.items()} == SCHEMA
    assert event["@timestamp"] == "2016-08-01T00:00:00.123Z"
    assert event["schema_version"] == SCHEMA_VERSION == 1 and event["event"] == "prediction"
    assert event["prediction"] == 31.868488998671857  # not rounded


def test_every_field_is_documented_in_the_module_docstring():
    table = cd4ml.events.__doc__.split("----\n", 1)[1]
    documented = {line.split()[0] for line in table.splitlines() if line.startswith("    ") and line[4] != " "}
    assert set(SCHEMA) <= documented


def test_the_timestamp_is_utc_with_milliseconds_and_z():
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1.9999) == "1970-01-01T00:00:01.999Z"  # truncated, never rounded into the next second
    now = an_event()["@timestamp"]
    assert TIMESTAMP.fullmatch(now)
    parsed = datetime.fromisoformat(now.replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 60


def test_jsonl_sink_appends_one_json_line_per_event_and_flushes_on_close(tmp_path):
    path = tmp_path / "deep" / "predictions.jsonl"
    sink = JsonlSink(path)
    events = [an_event(item_nbr=i) for i in range(250)]
    for event in events:
        sink.emit(event)
    sink.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == events
    assert sink.stats() == {"sink": "jsonl", "path": str(path), "sent": 250, "dropped": 0, "queued": 0}


def test_jsonl_sink_appends_to_what_is_there(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"earlier": true}\n')
    sink = JsonlSink(path)
    sink.emit(an_event())
    sink.close()
    assert len(path.read_text().splitlines()) == 2


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path, caplog):
    """A FIFO blocks the writer (opening it waits for a reader), so the queue fills up."""
    fifo = tmp_path / "predictions.jsonl"
    os.mkfifo(fifo)
    sink = JsonlSink(fifo, queue_size=10)
    with caplog.at_level(logging.WARNING, logger="cd4ml.events"):
        for i in range(100):
            sink.emit(an_event(item_nbr=i))
    dropped = sink.stats()["dropped"]
    assert dropped == 90  # ten fit in the queue
    assert sum("dropping prediction events" in r.getMessage() for r in caplog.records) == 1  # warned once
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the writer in
    try:
        sink.close()
        received = os.read(reader, 1 << 20).decode().splitlines()
    finally:
        os.close(reader)
    stats = sink.stats()
    assert stats["sent"] == len(received) == 100 - dropped
    assert [json.loads(line)["item_nbr"] for line in received] == list(range(len(received)))


def test_an_unwritable_file_counts_the_events_as_dropped(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    sink = JsonlSink(blocker / "predictions.jsonl")
    for _ in range(3):
        sink.emit(an_event())
    sink.close()
    assert sink.stats()["dropped"] == 3 and sink.stats()["sent"] == 0


def test_emitting_after_close_is_counted_not_raised(tmp_path):
    sink = JsonlSink(tmp_path / "p.jsonl")
    sink.close()
    sink.emit(an_event())
    sink.close()  # twice is fine
    assert sink.stats()["dropped"] == 1


def test_make_sink_writes_the_local_file_unless_fluentd_is_configured(tmp_path):
    paths = Paths(root=tmp_path, data_dir=tmp_path / "data")
    local = make_sink(serving_settings(), paths)
    try:
        assert isinstance(local, JsonlSink) and local.path == paths.prediction_log
    finally:
        local.close()
    remote = make_sink(serving_settings(fluentd_host="127.0.0.1", fluentd_port=9), paths)
    try:
        assert isinstance(remote, FluentSink) and remote.stats()["address"] == "127.0.0.1:9"
        assert remote.stats()["tag"] == "model.prediction"
    finally:
        remote.close(timeout=1)


@pytest.mark.parametrize("count", [0, 1, 3])
def test_count_packets_counts_forward_protocol_messages(count):
    import msgpack

    data = b"".join(msgpack.packb(["model.prediction", 0, {"n": i}]) for i in range(count))
    assert count_packets(data) == count


def test_the_model_server_sends_the_tag_fluentd_routes():
    """tests/stack/test_fluentd.py checks that fluent.conf routes FLUENT_TAG (there without our runtime deps)."""
    from tests.stack.files import FLUENT_TAG

    assert cd4ml.events.FLUENT_TAG == FLUENT_TAG
