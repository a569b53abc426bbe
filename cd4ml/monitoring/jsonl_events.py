"""Prediction events from the local JSON-lines log the model server appends to (events.JsonlSink).

    source = JsonlEvents(path)
    for batch in source.batches(window):   # checked events in the window, as columns (events_source.py)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from cd4ml.errors import DataError
from cd4ml.monitoring.events_source import DEFAULT_SCHEMA, FIELDS, Columns, Event, EventCheck, EventSchema
from cd4ml.monitoring.window import Window


CHUNK_BYTES = 1 << 22
MIN_PART_BYTES = 32 << 20  # a log is cut into parts (one process each) only when each gets this much
SPLIT_BELOW_LINES = 256  # a chunk off the fast path is halved down to this many lines
_PREFIX = b'{"@timestamp": "'  # how events.JsonlSink writes every line (json.dumps, key order of the schema)
_STAMP = slice(len(_PREFIX), len(_PREFIX) + 24)


class JsonlEvents:
    """Events from the JSON-lines file the model server appends to (events.JsonlSink).

    One pass in 4 MB chunks. Lines in our own layout whose @timestamp lies outside the window are
    dropped without parsing; the rest of a chunk is parsed with one json.loads call (a JSON array
    of the lines), falling back to line by line when a line is malformed. `tail_bytes` reads only
    the end of the file (the server's quick look). `start` and `end` limit it to a byte range that
    begins at a line start (see parts()).
    """

    def __init__(self, path: Path, tail_bytes: int | None = None, start: int = 0, end: int | None = None,
                 problem: str | None = None, schema: EventSchema = DEFAULT_SCHEMA) -> None:
        self.path = Path(path)
        self.problem = problem  # keep only this problem's events (a server of several logs all theirs here)
        self.schema = schema  # the problem's event fields (events_source.schema_of)
        self.tail_bytes = tail_bytes
        self.start, self.end = start, end
        self.description = f"jsonl {self.path}"
        self.skipped: Counter = Counter()

    def parts(self, n: int, min_part_bytes: int = MIN_PART_BYTES) -> list["JsonlEvents"]:
        """The log as n sources over consecutive byte ranges cut at line starts, for n processes;
        [self] when it is too small for each part to get min_part_bytes (or tail_bytes is set)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return [self]
        if n <= 1 or self.tail_bytes is not None or self.start or self.end is not None or size < n * min_part_bytes:
            return [self]
        cuts = [0]
        with self.path.open("rb") as file:
            for k in range(1, n):
                file.seek(max(size * k // n - 1, cuts[-1]))
                file.readline()  # to the start of the next line
                cuts.append(min(file.tell(), size))
        cuts.append(size)
        return [JsonlEvents(self.path, start=a, end=b, problem=self.problem, schema=self.schema) for a, b in zip(cuts, cuts[1:])]

    def batches(self, window: Window) -> Iterator[Columns]:
        check = EventCheck(window, self.problem, self.schema)
        since, until = check.since.encode(), check.until.encode()
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return  # no forecast served yet: no events
        with file:
            if self.tail_bytes is not None:
                size = file.seek(0, 2)
                if size > self.tail_bytes:
                    file.seek(size - self.tail_bytes - 1)
                    file.readline()  # to the start of the first whole line
                else:
                    file.seek(0)
            elif self.start:
                file.seek(self.start)
            left = None if self.end is None else self.end - file.tell()  # bytes of this part still to read
            carry = b""
            while True:
                block = file.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
                if not block:
                    break
                if left is not None:
                    left -= len(block)
                data = carry + block if carry else block
                cut = data.rfind(b"\n") + 1
                body, carry = data[:cut], data[cut:]
                if body:
                    yield self._chunk(body, check, since, until)
            if carry.strip():
                yield check.keep(_parse_lines([carry], since, until, self.skipped), self.skipped)

    def _chunk(self, body: bytes, check: EventCheck, since: bytes, until: bytes) -> Columns:
        """The events of whole lines: the fast path, else halves of the chunk (so one odd line
        costs its neighbours little), else, for a few hundred lines, the JSON path."""
        ours = _our_layout(body, check, since, until) if check.schema.fields.keys() == FIELDS.keys() else None
        if ours is not None:
            return ours
        if body.count(b"\n") > SPLIT_BELOW_LINES:
            middle = body.index(b"\n", len(body) // 2) + 1
            if middle < len(body):
                first, second = self._chunk(body[:middle], check, since, until), self._chunk(body[middle:], check, since, until)
                return {name: [*first[name], *second[name]] for name in check.schema.fields}
        return check.keep(_parse_lines(body.split(b"\n"), since, until, self.skipped), self.skipped)


# One line exactly as JsonlSink writes it (json.dumps, default separators, the schema's key order),
# with strings free of escapes and numbers in JSON's own grammar: such a line means to json.loads
# what the groups say. NaN and Infinity are not matched, so they take the JSON path and its checks.
_TEXT = r'"([^"\\\x00-\x1f]*)"'
_INT = r"(-?(?:0|[1-9][0-9]*))"
_NUMBER = r"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_LAYOUT = (
    r'^\{"@timestamp": "([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)", '
    r'"schema_version": 1, "event": "prediction", (?:"problem": "PROBLEM", )?"date": "([0-9]{4}-[0-9]{2}-[0-9]{2})", '
    r'"item_nbr": ' + _INT + r', "item_name": ' + _TEXT + r', "store_nbr": ' + _INT + r', '
    r'"onpromotion": (?:true|false), "prediction": ' + _NUMBER + r', "model_version": ' + _TEXT + r', '
    r'"run_id": ' + _TEXT + r', "latency_ms": ' + _NUMBER + r'\}$'
)


@lru_cache(maxsize=8)
def our_line(problem: str | None) -> re.Pattern:
    """The layout of one line, naming `problem` or no problem (written before issue 15; None: any)."""
    name = r'[^"\\\x00-\x1f]*' if problem is None else re.escape(problem)
    return re.compile(_LAYOUT.replace("PROBLEM", name), re.MULTILINE)


def _our_layout(body: bytes, check: EventCheck, since: bytes, until: bytes) -> Columns | None:
    """The fast path for a chunk of whole lines: when its first and last lines lie in the window
    and every line is in our own layout (one regular-expression pass over the chunk), its columns
    straight away; None sends the chunk to the JSON path, which gives the same result slower."""
    first = body[:body.find(b"\n")]
    last = body[body.rfind(b"\n", 0, len(body) - 1) + 1:-1]
    if not (first[:16] == _PREFIX == last[:16] and since <= first[_STAMP] < until and since <= last[_STAMP] < until):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    found = our_line(check.monitored).findall(text)
    if len(found) != body.count(b"\n"):
        return None
    stamps, dates, items, names, stores, forecasts, versions, runs, latencies = zip(*found)  # tuples will do
    return check.values_ok({
        "@timestamp": stamps, "date": dates, "item_nbr": list(map(int, items)), "item_name": names,
        "store_nbr": list(map(int, stores)), "prediction": list(map(float, forecasts)),
        "model_version": versions, "run_id": runs, "latency_ms": list(map(float, latencies)),
    })


def _parse_lines(lines: list[bytes], since: bytes, until: bytes, skipped: Counter) -> list[Any]:
    """The JSON values of the lines that may lie in the window, in file order; malformed lines counted.

    Lines that look like one JSON object each are parsed with one json.loads call (as a JSON
    array); if that fails, or any other line, each is parsed on its own."""
    candidates: list[bytes] = []
    whole: list[bytes] = []
    for line in lines:
        if line[:16] == _PREFIX:
            if line[40:41] == b'"' and not since <= line[_STAMP] < until:
                continue  # our own layout, outside the window
        elif not line.strip():
            continue
        candidates.append(line)
        if line[:1] == b"{" and line[-1:] == b"}":
            whole.append(line)
    parsed: list[Any] | None = None
    if whole:
        try:
            parsed = json.loads(b"[" + b",".join(whole) + b"]")
        except (ValueError, RecursionError):
            parsed = None
        if parsed is not None and len(parsed) != len(whole):
            parsed = None
    if parsed is not None and len(whole) == len(candidates):
        return parsed
    values: list[Any] = []
    at = 0
    for line in candidates:
        if parsed is not None and at < len(whole) and line is whole[at]:
            values.append(parsed[at])
            at += 1
            continue
        try:
            values.append(json.loads(line))
        except (ValueError, RecursionError):
            skipped["malformed JSON line"] += 1
    return values


def parse_lines_one_by_one(lines: Iterable[bytes], window: Window, problem: str | None = None,
                           schema: EventSchema = DEFAULT_SCHEMA) -> tuple[list[Event], Counter]:
    """The reference for JsonlEvents: every line parsed and checked on its own, with `problem`."""
    check, skipped, kept = EventCheck(window, problem, schema), Counter(), []
    for line in lines:
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            skipped["malformed JSON line"] += 1
            continue
        why = check.problem(value)
        if why is None:
            kept.append({name: value[name] for name in schema.fields})
        elif why != "outside":
            skipped[why] += 1
    return kept, skipped


def forecast_days(path: Path) -> set[date]:
    """The dates forecast in a JSONL event log, whenever the events were served."""
    if not Path(path).is_file():
        raise DataError(f"{path} does not exist: no forecasts to write the actual sales of",
                        "Serve the model and ask it for forecasts first, or name the event log (data/predictions.jsonl).")
    window = Window(datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc))
    return {date.fromisoformat(day) for batch in JsonlEvents(path).batches(window) for day in batch["date"]}
