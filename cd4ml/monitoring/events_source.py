"""Prediction events behind one interface: the local JSONL log, or Elasticsearch.

    source = JsonlEvents(path)  or  ElasticsearchEvents(client, "model-*")   (jsonl_events.py, elasticsearch_events.py)
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

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone
from operator import itemgetter
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

from cd4ml.events import SCHEMA_VERSION
from cd4ml.monitoring.window import DAY, Window, iso

Event = dict[str, Any]
Columns = dict[str, Sequence[Any]]  # field -> one value per event (a list or a tuple)

# field -> the Python types json gives for it (bool is not an int here: type() is compared exactly)
COMMON: dict[str, tuple[type, ...]] = {
    "@timestamp": (str,),
    "prediction": (float, int),
    "model_version": (str,),
    "run_id": (str,),
    "latency_ms": (float, int),
}
# the Python types of each Elasticsearch family a problem's Serving.event_types names
FAMILIES: dict[str, tuple[type, ...]] = {"keyword": (str,), "number": (int, float), "boolean": (bool,), "date": (str,)}
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


@dataclass(frozen=True)
class EventSchema:
    """The event fields monitoring reads for one problem, each with the Python types json gives for it
    (checked exactly), and what each is for: `drift` is counted per value (its shares are compared with
    the training profile's), `label` names a drift value on the page, `requested` is the date a
    forecast was asked for (its weekdays drift too), `days` must be calendar days (YYYY-MM-DD)."""

    fields: Mapping[str, tuple[type, ...]]
    drift: str
    label: str | None = None
    requested: str | None = None
    days: tuple[str, ...] = ()

    @property
    def source_fields(self) -> tuple[str, ...]:
        """What a source asks for: the fields, and what tells the schema version."""
        return ("schema_version", "event", *self.fields)


def schema_of(serving: Any, drift_key: str) -> EventSchema:
    """The schema of a problem's events: the common fields, then those of its Serving that monitoring
    reads (the join key, the drift key, the label and the requested date), typed by its event_types."""
    label, requested = getattr(serving, "drift_label", None), getattr(serving, "requested_date", None)
    wanted = [*serving.join_key, drift_key, *(name for name in (label, requested) if name)]
    unknown = [name for name in wanted if name not in serving.event_types]
    if unknown:
        raise ValueError(f"problem {serving.problem}: the event fields {unknown} have no event_types")
    own = {name: FAMILIES[serving.event_types[name]] for name in dict.fromkeys(wanted)}
    days = tuple(name for name in own if serving.event_types[name] == "date")
    ordered = {"@timestamp": COMMON["@timestamp"], **own, **{k: v for k, v in COMMON.items() if k != "@timestamp"}}
    return EventSchema(ordered, drift_key, label, requested, days)


# The default problem's (Favorita's: the server's only events before issue 15), which is also the
# layout cd4ml/monitoring/jsonl_events.py reads fastest.
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
DEFAULT_SCHEMA = EventSchema(FIELDS, drift="item_nbr", label="item_name", requested="date", days=("date",))
SOURCE_FIELDS = DEFAULT_SCHEMA.source_fields


class EventSource(Protocol):
    description: str  # where the events come from, for the report
    schema: EventSchema  # the fields its batches hold
    skipped: Counter  # reason -> number of events skipped for it

    def batches(self, window: Window) -> Iterator[Columns]:
        """Checked events with @timestamp in the window, in batches of columns; skipped ones are counted."""


def columns(events: list[Event], schema: EventSchema = DEFAULT_SCHEMA) -> Columns:
    """Checked events as columns of the schema's fields."""
    if not events:
        return {name: [] for name in schema.fields}
    return dict(zip(schema.fields, map(list, zip(*map(itemgetter(*schema.fields), events)))))


def rows(batch: Columns) -> list[Event]:
    """A batch of columns as event dicts (with FIELDS only)."""
    return [dict(zip(batch, values)) for values in zip(*batch.values())]


class EventCheck:
    """The schema check of one event: None when it is good, else why not (a short reason).

    Also brings @timestamp to the canonical form (events.iso_utc) so windows compare as text.
    """

    def __init__(self, window: Window, problem: str | None = None, schema: EventSchema = DEFAULT_SCHEMA) -> None:
        self.monitored = problem  # skip other problems' events (a server of several logs all theirs together)
        self.schema = schema
        self._all_fields = itemgetter(*schema.source_fields)
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
        if self.monitored is not None and event.get("problem", self.monitored) != self.monitored:
            return "another problem's"  # (events written before issue 15 name no problem: kept)
        for name, kinds in self.schema.fields.items():
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
        for name in self.schema.days:
            requested = event[name]
            good = self._dates.get(requested)
            if good is None:
                good = self._dates[requested] = _is_day(requested)
            if not good:
                return f"missing or bad {name}"
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
        return columns(kept, self.schema)

    def all_good(self, events: list[Any]) -> Columns | None:
        """The columns of the events when every one passes `problem` (checked a column at a time,
        at C speed): the usual batch. None says nothing: then each event is checked on its own."""
        if not events or set(map(type, events)) != {dict}:
            return None
        try:
            found = list(map(list, zip(*map(self._all_fields, events))))
        except KeyError:
            return None
        monitored = self.monitored
        if monitored is not None and any(e.get("problem", monitored) != monitored for e in events):
            return None
        versions, kinds, *values = found
        if set(versions) != {SCHEMA_VERSION} or set(map(type, versions)) != {int} or set(kinds) != {"prediction"}:
            return None
        batch = dict(zip(self.schema.fields, values))
        for name, allowed in self.schema.fields.items():
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
        for name in self.schema.days:
            for requested in set(batch[name]):
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
    if not DAY.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 20 else text[:17] + "..."
