"""Prediction events behind one interface: the local JSONL log, or Elasticsearch.

    source = JsonlEvents(path)  or  ElasticsearchEvents(client, "model-*")
    for batch in source.batches(window):   # checked events in the window, as columns
        batch["item_nbr"]                  # [99197, 105574, ...], one value per event
    source.skipped                         # Counter: why events were skipped, and how many

The analysis never knows which source it reads. Every event is checked against the schema in
cd4ml/events.py (version 1): a malformed line or document, an unknown schema_version or a
field of the wrong type is skipped and counted under its reason, never a crash. A batch is
handed over as columns (field -> list of values), which is how the analysis counts fastest;
`rows(batch)` turns it back into event dicts.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

from cd4ml.errors import ConfigError, DataError, ServiceUnreachable
from cd4ml.events import SCHEMA_VERSION

Event = dict[str, Any]
Columns = dict[str, Sequence[Any]]  # field -> one value per event (a list or a tuple)

# field -> the Python types json gives for it (bool is not an int here: type() is compared exactly)
FIELDS: dict[str, tuple[type, ...]] = {
    "@timestamp": (str,),
    "date": (str,),
    "item_nbr": (int,),
    "item_name": (str,),
    "store_nbr": (int,),
    "prediction": (float, int),
    "model_version": (str,),
    "run_id": (str,),
    "latency_ms": (float, int),
}
# What the Elasticsearch source asks for: the fields above, and what tells the version.
SOURCE_FIELDS = ("schema_version", "event", *FIELDS)
_ALL_FIELDS = itemgetter(*SOURCE_FIELDS)
_FIELDS = itemgetter(*FIELDS)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


@dataclass(frozen=True)
class Window:
    """A time range of @timestamp, in UTC: since <= t < until."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        for moment in (self.since, self.until):
            if moment.tzinfo is None:
                raise ValueError("window ends must be timezone-aware")
        if self.since >= self.until:
            raise ConfigError(
                f"the window is empty: --since {iso(self.since)} is not before --until {iso(self.until)}.",
                "Give --since before --until.",
            )

    @property
    def since_text(self) -> str:
        return iso(self.since)

    @property
    def until_text(self) -> str:
        return iso(self.until)

    def __str__(self) -> str:
        return f"{self.since_text} .. {self.until_text}"


def iso(moment: datetime) -> str:
    """A moment as the events write @timestamp: ISO-8601 UTC, milliseconds, Z."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_moment(text: str, name: str, end: bool = False) -> datetime:
    """--since/--until: a date (YYYY-MM-DD: the start of that day, or with end=True the start of
    the next, so the day is included) or an ISO datetime (naive means UTC)."""
    value = text.strip()
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a date (2026-11-23) or an ISO datetime (2026-11-23T13:00:00Z); got {text!r}."
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def default_window(now: datetime, days: float, since: str | None = None, until: str | None = None) -> Window:
    """The window `monitor` looks at: --since/--until, by default the `days` before `now` (or before --until)."""
    end = parse_moment(until, "--until", end=True) if until else now
    start = parse_moment(since, "--since") if since else end - timedelta(days=days)
    return Window(start, end)


class EventSource(Protocol):
    description: str  # where the events come from, for the report
    skipped: Counter  # reason -> number of events skipped for it

    def batches(self, window: Window) -> Iterator[Columns]:
        """Checked events with @timestamp in the window, in batches of columns; skipped ones are counted."""


def columns(events: list[Event]) -> Columns:
    """Checked events as columns of FIELDS."""
    if not events:
        return {name: [] for name in FIELDS}
    return dict(zip(FIELDS, map(list, zip(*map(_FIELDS, events)))))


def rows(batch: Columns) -> list[Event]:
    """A batch of columns as event dicts (with FIELDS only)."""
    return [dict(zip(batch, values)) for values in zip(*batch.values())]


class EventCheck:
    """The schema check of one event: None when it is good, else why not (a short reason).

    Also brings @timestamp to the canonical form (events.iso_utc) so windows compare as text.
    """

    def __init__(self, window: Window) -> None:
        self.since = window.since_text
        self.until = window.until_text
        self._dates: dict[str, bool] = {}  # requested dates seen: is it a calendar day?

    def problem(self, event: Any) -> str | None:
        if type(event) is not dict:
            return "not a JSON object"
        version = event.get("schema_version")
        if type(version) is not int or version != SCHEMA_VERSION:
            return f"unknown schema_version {_short(version)}"
        if event.get("event") != "prediction":
            return f"unknown event {_short(event.get('event'))}"
        for name, kinds in FIELDS.items():
            if type(event.get(name)) not in kinds:
                return f"missing or bad {name}"
        stamp = event["@timestamp"]
        if len(stamp) != 24 or not _CANONICAL.fullmatch(stamp):
            try:
                moment = datetime.fromisoformat(stamp)
            except ValueError:
                return "missing or bad @timestamp"
            stamp = event["@timestamp"] = iso(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
        if not self.since <= stamp < self.until:
            return "outside"
        requested = event["date"]
        good = self._dates.get(requested)
        if good is None:
            good = self._dates[requested] = _is_day(requested)
        if not good:
            return "missing or bad date"
        if not math.isfinite(event["prediction"]):
            return "missing or bad prediction"
        latency = event["latency_ms"]
        if not (math.isfinite(latency) and latency >= 0):
            return "missing or bad latency_ms"
        return None

    def keep(self, events: Iterable[Any], skipped: Counter) -> Columns:
        """The good events in the window, as columns; the others counted under their reason."""
        events = events if isinstance(events, list) else list(events)
        found = self.all_good(events)
        if found is not None:
            return found
        kept = []
        problem = self.problem
        for event in events:
            why = problem(event)
            if why is None:
                kept.append(event)
            elif why != "outside":
                skipped[why] += 1
        return columns(kept)

    def all_good(self, events: list[Any]) -> Columns | None:
        """The columns of the events when every one passes `problem` (checked a column at a time,
        at C speed): the usual batch. None says nothing: then each event is checked on its own."""
        if not events or set(map(type, events)) != {dict}:
            return None
        try:
            found = list(map(list, zip(*map(_ALL_FIELDS, events))))
        except KeyError:
            return None
        versions, kinds, *values = found
        if set(versions) != {SCHEMA_VERSION} or set(map(type, versions)) != {int} or set(kinds) != {"prediction"}:
            return None
        batch = dict(zip(FIELDS, values))
        for name, allowed in FIELDS.items():
            if not set(map(type, batch[name])) <= set(allowed):
                return None
        if not all(map(_CANONICAL.fullmatch, batch["@timestamp"])):
            return None
        return self.values_ok(batch)

    def values_ok(self, batch: Columns) -> Columns | None:
        """The batch when all its values pass (timestamps already canonical, types right), else None."""
        stamps = batch["@timestamp"]
        if not (self.since <= min(stamps) and max(stamps) < self.until):
            return None
        dates = self._dates
        for requested in set(batch["date"]):
            good = dates.get(requested)
            if good is None:
                good = dates[requested] = _is_day(requested)
            if not good:
                return None
        latencies = batch["latency_ms"]
        if all(map(math.isfinite, batch["prediction"])) and all(map(math.isfinite, latencies)) and min(latencies) >= 0:
            return batch
        return None


def _is_day(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 20 else text[:17] + "..."


# --- the local JSON-lines log ---------------------------------------------------------------------

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

    def __init__(self, path: Path, tail_bytes: int | None = None, start: int = 0, end: int | None = None) -> None:
        self.path = Path(path)
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
        return [JsonlEvents(self.path, start=a, end=b) for a, b in zip(cuts, cuts[1:])]

    def batches(self, window: Window) -> Iterator[Columns]:
        check = EventCheck(window)
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
        ours = _our_layout(body, check, since, until)
        if ours is not None:
            return ours
        if body.count(b"\n") > SPLIT_BELOW_LINES:
            middle = body.index(b"\n", len(body) // 2) + 1
            if middle < len(body):
                first, second = self._chunk(body[:middle], check, since, until), self._chunk(body[middle:], check, since, until)
                return {name: [*first[name], *second[name]] for name in FIELDS}
        return check.keep(_parse_lines(body.split(b"\n"), since, until, self.skipped), self.skipped)


# One line exactly as JsonlSink writes it (json.dumps, default separators, the schema's key order),
# with strings free of escapes and numbers in JSON's own grammar: such a line means to json.loads
# what the groups say. NaN and Infinity are not matched, so they take the JSON path and its checks.
_TEXT = r'"([^"\\\x00-\x1f]*)"'
_INT = r"(-?(?:0|[1-9][0-9]*))"
_NUMBER = r"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_OUR_LINE = re.compile(
    r'^\{"@timestamp": "([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)", '
    r'"schema_version": 1, "event": "prediction", "date": "([0-9]{4}-[0-9]{2}-[0-9]{2})", '
    r'"item_nbr": ' + _INT + r', "item_name": ' + _TEXT + r', "store_nbr": ' + _INT + r', '
    r'"onpromotion": (?:true|false), "prediction": ' + _NUMBER + r', "model_version": ' + _TEXT + r', '
    r'"run_id": ' + _TEXT + r', "latency_ms": ' + _NUMBER + r'\}$',
    re.MULTILINE,
)


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
    found = _OUR_LINE.findall(text)
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


def parse_lines_one_by_one(lines: Iterable[bytes], window: Window) -> tuple[list[Event], Counter]:
    """The reference for JsonlEvents: every line parsed and checked on its own, with `problem`."""
    check, skipped, kept = EventCheck(window), Counter(), []
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
            kept.append({name: value[name] for name in FIELDS})
        elif why != "outside":
            skipped[why] += 1
    return kept, skipped


# --- Elasticsearch ---------------------------------------------------------------------------------

def forecast_days(path: Path) -> set[date]:
    """The dates forecast in a JSONL event log, whenever the events were served."""
    if not Path(path).is_file():
        raise DataError(f"{path} does not exist: no forecasts to write the actual sales of",
                        "Serve the model and ask it for forecasts first, or name the event log (data/predictions.jsonl).")
    window = Window(datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc))
    return {date.fromisoformat(day) for batch in JsonlEvents(path).batches(window) for day in batch["date"]}


class ElasticsearchEvents:
    """Events from Elasticsearch (the indices fluentd writes, model-*), all of them in the window.

    Pages through every matching document with a point in time and search_after, sorted on
    @timestamp and _shard_doc (the documented way to read more than 10,000 hits), then closes the
    point in time. `client` is an elasticsearch.Elasticsearch; connection errors become
    ServiceUnreachable (exit 3).
    """

    def __init__(self, client: Any, index: str, page_size: int = 5000, keep_alive: str = "2m", url: str = "") -> None:
        self.client = client
        self.index = index
        self.page_size = page_size
        self.keep_alive = keep_alive
        self.url = url
        self.description = f"elasticsearch {url} {index}".replace("  ", " ")
        self.skipped: Counter = Counter()
        self.requests = 0

    def batches(self, window: Window) -> Iterator[Columns]:
        check = EventCheck(window)
        pit = self._call(self.client.open_point_in_time, index=self.index, keep_alive=self.keep_alive)["id"]
        try:
            after = None
            while True:
                page = self._call(
                    self.client.search,
                    pit={"id": pit, "keep_alive": self.keep_alive},
                    size=self.page_size,
                    query={"range": {"@timestamp": {
                        "gte": window.since_text, "lt": window.until_text, "format": "strict_date_optional_time",
                    }}},
                    sort=[{"@timestamp": {"order": "asc"}}, {"_shard_doc": {"order": "asc"}}],
                    search_after=after,
                    source=list(SOURCE_FIELDS),
                    track_total_hits=False,
                )
                pit = page.get("pit_id") or pit  # always use the latest id
                hits = page["hits"]["hits"]
                if not hits:
                    return
                yield check.keep((hit.get("_source") for hit in hits), self.skipped)
                after = hits[-1]["sort"]
        finally:
            try:
                self.client.close_point_in_time(id=pit)
            except Exception:  # it expires after keep_alive anyway
                pass

    def _call(self, method: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return _call(method, self.url, f"read {self.index}", **kwargs)


def index_documents(client: Any, index: str, documents: list[tuple[str, dict[str, Any]]], url: str = "") -> None:
    """Index (id, document) pairs into `index` with one bulk request, refreshed before it returns
    (Kibana sees them at once); the same id again replaces its document. A document Elasticsearch
    refuses (e.g. a field of the wrong type for the index template) is ServiceUnreachable."""
    operations: list[dict[str, Any]] = []
    for doc_id, document in documents:
        operations += [{"index": {"_index": index, "_id": doc_id}}, document]
    answer = _call(client.bulk, url, f"write {index}", operations=operations, refresh="wait_for")
    if answer.get("errors"):
        refused = [item["index"] for item in answer["items"] if item.get("index", {}).get("error")]
        error = refused[0]["error"] if refused else {}
        raise ServiceUnreachable(
            f"Elasticsearch at {url} refused {len(refused)} of {len(documents)} monitoring documents for {index}: "
            f"{error.get('type', 'error')}: {error.get('reason', '')}.",
            "Check that es-setup has put the index template monitoring-reports (elasticsearch/monitoring-template.json).",
        )


def _call(method: Any, url: str, needs: str, **kwargs: Any) -> Any:
    """One client call; errors become ours. needs: what the user must be allowed, e.g. "read model-*"."""
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException, TransportError

    try:
        return method(**kwargs)
    except (AuthenticationException, AuthorizationException) as err:
        raise ConfigError(
            f"Elasticsearch at {url} refused the credentials (HTTP {err.meta.status}).",
            f"Set CD4ML_ELASTICSEARCH_USER and CD4ML_ELASTICSEARCH_PASSWORD to a user that may {needs}.",
        ) from None
    except TransportError as err:
        raise ServiceUnreachable(
            f"Elasticsearch at {url} did not answer ({type(err).__name__}).",
            "Start it (docker compose up -d elasticsearch), check CD4ML_ELASTICSEARCH_URL, "
            "or read the local log with --source jsonl.",
        ) from None
    except ApiError as err:
        raise ServiceUnreachable(
            f"Elasticsearch at {url} answered HTTP {err.meta.status} to {method.__name__}: {err.message}.",
            f"Check that the user may {needs} and the indices exist.",
        ) from None


def elasticsearch_client(url: str, user: str | None, password: str | None, timeout: float = 10.0) -> Any:
    """An Elasticsearch client for the configured URL: no retries, a timeout on every request."""
    from elasticsearch import Elasticsearch

    auth = (user, password or "") if user else None
    return Elasticsearch(url, basic_auth=auth, request_timeout=timeout, max_retries=0, retry_on_timeout=False)
