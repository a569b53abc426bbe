"""Event sources: the JSONL log's fast paths give what the line-by-line reference gives; bad events
are skipped and counted, never a crash; windows and --since/--until."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from cd4ml.errors import ConfigError
from cd4ml.events import prediction_event
from cd4ml.monitoring import jsonl_events
from cd4ml.monitoring.events_source import FIELDS, EventCheck, rows
from cd4ml.monitoring.jsonl_events import JsonlEvents, parse_lines_one_by_one
from cd4ml.monitoring.window import Window, default_window, iso, parse_moment

UTC = timezone.utc
WINDOW = Window(datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
INSIDE = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()


def event(at: float = INSIDE, **changes) -> dict:
    fields = dict(date="2026-11-25", item_nbr=99197, item_name="Milk", store_nbr=47, onpromotion=False,
                  prediction=31.5, model_version="3", run_id="abc", latency_ms=0.25)
    fields.update(changes)
    return prediction_event(**fields, at=at)


def line(value) -> str:
    return json.dumps(value)


ODD_LINES = [
    line(event(item_name='Caf\u00e9 "dark"')),                        # escapes: not the fast layout, still good
    line(event(at=INSIDE - 10 * 86400)),                              # outside the window: dropped, not counted
    line(event(at=INSIDE + 10 * 86400)),
    "",                                                               # a blank line: nothing
    "not json at all",
    '{"@timestamp": "2026-11-20T12:00:00.000Z", "schema_ver',           # cut short by a full disk
    line({**event(), "schema_version": 2}),
    line({**event(), "schema_version": True}),                         # a bool is not the integer 1
    line({**event(), "event": "reload"}),
    line({**event(), "item_nbr": "99197"}),
    line({**event(), "item_nbr": True}),
    line({k: v for k, v in event().items() if k != "latency_ms"}),
    line(event(date="2026-02-30")),                                   # not a day of the calendar
    line(event(prediction=float("nan"))),
    line(event(latency_ms=-1.0)),
    line([1, 2]),
    "{}",
    line({**event(), "@timestamp": "2026-11-20T13:00:00+00:00"}),     # another ISO form: good, made canonical
    line({**event(), "@timestamp": "2026-11-20 14:00:00"}),           # naive: UTC
    line({**event(), "@timestamp": "yesterday"}),
    line(event(prediction=7)) + "\r",                                 # CRLF, an integer forecast
    line(event(problem="favorita")),                                  # today's server names the problem
    line(prediction_event(problem="houses", sale_id="s-1", zipcode="94110", prediction=412000.0,
                          model_version="1", run_id="h", latency_ms=0.5, at=INSIDE)),  # another problem's: not Favorita's fields
]


def write(path, lines) -> None:
    path.write_text("".join(text + "\n" for text in lines))


def read_all(source, window=WINDOW) -> list[dict]:
    return [row for batch in source.batches(window) for row in rows(batch)]


@pytest.mark.parametrize("chunk", [64, 300, 1 << 22])  # odd lines amid 2,000 good ones: chunks are halved
def test_the_jsonl_source_gives_what_the_line_by_line_reference_gives(tmp_path, monkeypatch, chunk):
    good = [line(event(at=INSIDE + i, item_nbr=1 + i % 97)) for i in range(2000)]
    lines = good[:1500] + ODD_LINES[:10] + good[1500:1990] + ODD_LINES[10:] + good[1990:]
    path = tmp_path / "predictions.jsonl"
    write(path, lines)
    monkeypatch.setattr(jsonl_events, "CHUNK_BYTES", chunk)
    source = JsonlEvents(path)
    expected, skipped = parse_lines_one_by_one([text.encode() for text in lines], WINDOW)
    assert read_all(source) == expected
    assert source.skipped == skipped
    assert len(expected) == 2000 + 5
    assert skipped == Counter({
        "malformed JSON line": 2, "unknown schema_version 2": 1, "unknown schema_version True": 1,
        "unknown event 'reload'": 1, "missing or bad item_nbr": 2, "missing or bad latency_ms": 2,
        "missing or bad date": 2, "missing or bad prediction": 1, "not a JSON object": 1,
        "unknown schema_version None": 1, "missing or bad @timestamp": 1,
    })


def test_the_fast_layout_path_matches_json_on_every_field(tmp_path):
    good = [event(at=INSIDE + i, item_nbr=1000 + i, prediction=i / 7, latency_ms=1e-5 * i) for i in range(300)]
    path = tmp_path / "p.jsonl"
    write(path, [line(e) for e in good])
    assert read_all(JsonlEvents(path)) == [{k: e[k] for k in FIELDS} for e in good]


def test_events_naming_the_problem_take_the_fast_path_and_other_problems_are_skipped(tmp_path, monkeypatch):
    good = [event(at=INSIDE + i, problem="favorita", item_nbr=1000 + i) for i in range(50)]
    path = tmp_path / "p.jsonl"
    write(path, [line(e) for e in good])
    assert jsonl_events.our_line("favorita").fullmatch(line(good[0]))
    assert not jsonl_events.our_line("toy").fullmatch(line(good[0]))
    assert read_all(JsonlEvents(path)) == [{k: e[k] for k in FIELDS} for e in good]
    houses = prediction_event(problem="houses", sale_id="s-1", prediction=1.0, model_version="1", run_id="h",
                              latency_ms=0.5, at=INSIDE)
    write(path, [line(e) for e in good] + [line(houses)])
    source = JsonlEvents(path, problem="favorita")
    assert read_all(source) == [{k: e[k] for k in FIELDS} for e in good]
    assert source.skipped == Counter({"another problem's": 1})
    assert JsonlEvents(path, problem="favorita").parts(2, min_part_bytes=1)[1].problem == "favorita"


def test_timestamps_in_other_iso_forms_are_made_canonical(tmp_path):
    path = tmp_path / "p.jsonl"
    write(path, [line({**event(), "@timestamp": "2026-11-20T13:00:00+01:00"})])
    (found,) = read_all(JsonlEvents(path))
    assert found["@timestamp"] == "2026-11-20T12:00:00.000Z"


def test_a_missing_log_is_no_events(tmp_path):
    source = JsonlEvents(tmp_path / "nothing.jsonl")
    assert read_all(source) == [] and not source.skipped


@pytest.mark.parametrize("extra", [0, 5])  # the tail starts on a line, or cuts one (which is left out)
def test_the_tail_reads_only_the_end_of_the_log(tmp_path, extra):
    lines = [line(event(at=INSIDE + i, item_nbr=1000 + i)) for i in range(1000)]
    path = tmp_path / "p.jsonl"
    write(path, lines)
    size = len(lines[-1]) + 1
    found = read_all(JsonlEvents(path, tail_bytes=10 * size + extra))
    assert [e["item_nbr"] for e in found] == list(range(1990, 2000))
    assert len(read_all(JsonlEvents(path, tail_bytes=10 ** 9))) == 1000


def test_the_check_of_a_whole_batch_agrees_with_the_check_of_each_event():
    check = EventCheck(WINDOW)
    good = [event(at=INSIDE + i) for i in range(5)]
    assert rows(check.all_good(good)) == [{k: e[k] for k in FIELDS} for e in good]
    for bad in (event(prediction=float("inf")), {**event(), "store_nbr": 4.0}, event(at=INSIDE + 30 * 86400)):
        assert check.all_good([*good, bad]) is None
        assert check.problem(bad) is not None
        skipped = Counter()
        assert len(rows(check.keep([*good, bad], skipped))) == 5


def test_parse_moment_takes_dates_and_datetimes_in_utc():
    assert parse_moment("2026-11-16", "--since") == datetime(2026, 11, 16, tzinfo=UTC)
    assert parse_moment("2026-11-16", "--until", end=True) == datetime(2026, 11, 17, tzinfo=UTC)  # the day included
    assert parse_moment("2026-11-16T10:30", "--since") == datetime(2026, 11, 16, 10, 30, tzinfo=UTC)
    assert parse_moment("2026-11-16T10:30:00+02:00", "--since") == datetime(2026, 11, 16, 8, 30, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"--since must be a date \(2026-11-23\) or an ISO datetime.*got 'last week'"):
        parse_moment("last week", "--since")


def test_the_default_window_is_the_days_before_now_or_before_until():
    now = datetime(2026, 11, 23, 13, 35, tzinfo=UTC)
    assert default_window(now, 7) == Window(now - timedelta(days=7), now)
    found = default_window(now, 7, until="2026-11-10")
    assert (found.since, found.until) == (datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))
    with pytest.raises(ConfigError, match="the window is empty"):
        default_window(now, 7, since="2026-11-24")


def test_iso_writes_what_the_events_write():
    assert iso(datetime(2026, 11, 23, 13, 35, 10, 123999, tzinfo=UTC)) == "2026-11-23T13:35:10.123Z"
    assert str(WINDOW) == "2026-11-16T00:00:00.000Z .. 2026-11-23T00:00:00.000Z"
