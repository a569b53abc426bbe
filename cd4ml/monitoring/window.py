"""The time window `monitor` looks at, and the --since/--until text that gives it.

    window = default_window(now, days=7, since="2026-11-23")
    window.since_text, window.until_text    # as the events write @timestamp: ISO-8601 UTC, ms, Z
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from cd4ml.errors import ConfigError

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # YYYY-MM-DD


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
        if DAY.fullmatch(value):
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
