"""The pass over a large JSONL log in parts, one process each: the same report as one pass.

A log is cut into byte ranges at line starts; each part is read by a process of its own and the
aggregates are merged in file order. Counts, first/last, names, the join with the actuals and
the skipped events are exactly those of one pass; sums of forecasts per product agree to
rounding (the additions happen in another order).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from cd4ml.monitoring.accuracy import Actual, Actuals
from cd4ml.problems.favorita.serving import SERVING as FAVORITA
from cd4ml.monitoring.events_source import rows
from cd4ml.monitoring.jsonl_events import JsonlEvents
from cd4ml.monitoring.window import Window
from cd4ml.monitoring.run import gather
from tests.unit.test_monitoring_events_source import ODD_LINES, event

UTC = timezone.utc
WINDOW = Window(datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
START = datetime(2026, 11, 15, tzinfo=UTC).timestamp()  # a day before the window


def log(path, n: int = 3000) -> None:
    """n events every 5 minutes from a day before the window (some after it too), names and run ids
    changing halfway, and the odd lines of the events-source tests in the middle and at the end."""
    lines = []
    for i in range(n):
        lines.append(json.dumps(event(
            at=START + 300 * i, date=f"2026-11-{17 + i % 9}", item_nbr=100 + i % 17, store_nbr=47,
            item_name=f"Item {100 + i % 17}" + (" (new)" if i > n // 2 else ""), prediction=0.5 + (i * 7919) % 1000 / 37,
            model_version=str(1 + i % 3), run_id=f"run-{1 + i % 3}" + ("b" if i > n // 2 else ""),
            latency_ms=0.1 + i % 11 / 7)))
        if i == n // 3:
            lines += ODD_LINES
    path.write_text("\n".join(lines + ODD_LINES) + "\n")


@pytest.mark.parametrize("n", [2, 3, 7])
def test_parts_cut_at_line_starts_and_read_together_what_the_whole_reads(tmp_path, n):
    path = tmp_path / "predictions.jsonl"
    log(path)
    whole = JsonlEvents(path)
    expected = [r for batch in whole.batches(WINDOW) for r in rows(batch)]
    parts = whole.parts(n, min_part_bytes=1)
    assert len(parts) == n
    found, skipped = [], {}
    for part in parts:
        found += [r for batch in part.batches(WINDOW) for r in rows(batch)]
        for why, count in part.skipped.items():
            skipped[why] = skipped.get(why, 0) + count
    assert found == expected and skipped == dict(whole.skipped)
    data = path.read_bytes()
    assert all(part.start == 0 or data[part.start - 1:part.start] == b"\n" for part in parts)
    assert [p.end for p in parts[:-1]] == [p.start for p in parts[1:]] and parts[-1].end == len(data)


def test_a_small_log_is_not_cut(tmp_path):
    path = tmp_path / "predictions.jsonl"
    log(path, n=10)
    source = JsonlEvents(path)
    assert source.parts(2) == [source]  # below min_part_bytes a part: one pass, no process started


def test_gather_in_processes_gives_the_report_of_one_pass(tmp_path):
    path = tmp_path / "predictions.jsonl"
    log(path)
    actuals = Actuals(FAVORITA.join_key,
                      {(f"2026-11-{17 + i % 9}", 100 + i % 17, 47): Actual(float(i), i % 2 == 0) for i in range(40)})
    one = JsonlEvents(path)
    stats, joined = gather(one, WINDOW, actuals)
    split = JsonlEvents(path)
    split_stats, split_joined = gather(split, WINDOW, actuals, processes=3, min_part_bytes=1)
    expected, found = stats.summary(top=50), split_stats.summary(top=50)
    for item in found["items"]:
        item["mean_forecast"] = pytest.approx(item["mean_forecast"], rel=1e-12)
    assert found == expected
    assert split_stats.item_names == stats.item_names and split_stats.version_runs == stats.version_runs
    assert split_stats.forecasts == stats.forecasts and split_stats.requested == stats.requested
    assert split_joined.latest == joined.latest
    assert (split_joined.matched_events, split_joined.unmatched_events) == (joined.matched_events, joined.unmatched_events)
    assert split.skipped == one.skipped and sum(one.skipped.values()) > 0
