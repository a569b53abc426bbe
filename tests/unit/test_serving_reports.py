"""ReportCache: what the /monitoring page of a server without a local log knows about the latest report.

The fetch here is a plain function returning what MLflow would (tests/integration/
test_monitoring_page_mlflow.py runs the real one against a real mlflow server).
"""

from __future__ import annotations

import pytest

from cd4ml.errors import ServiceUnreachable
from cd4ml.serving.reports import ReportCache, shown_uri

REPORT = {"report_version": 1, "status": "ok"}


def answers(*outcomes):
    """A fetch giving each outcome in turn: a (report, run id), None, or an exception to raise."""
    queue = list(outcomes)

    def fetch():
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return fetch


def test_before_the_first_check_the_state_says_nothing_is_known():
    state = ReportCache(answers(), "MLflow at x", refresh_seconds=0).state
    assert state.checked_at is None and state.report is None and state.error is None and state.where == "MLflow at x"


def test_a_found_report_is_kept_when_mlflow_later_cannot_be_reached():
    cache = ReportCache(answers((REPORT, "run-1"), ServiceUnreachable("MLflow at x did not answer.", "Start it.")),
                        "MLflow at x", refresh_seconds=0)
    assert cache.refresh() is True
    first = cache.state
    assert (first.report, first.run_id, first.error) == (REPORT, "run-1", None)
    assert cache.refresh() is False
    second = cache.state
    assert second.report == REPORT and second.run_id == "run-1" and second.fetched_at == first.fetched_at
    assert second.error == "MLflow at x did not answer. Start it." and second.checked_at >= first.checked_at


@pytest.mark.parametrize("error, said", [
    (ServiceUnreachable("MLflow at x did not answer.", "Start it."), "MLflow at x did not answer. Start it."),
    (OSError("connection reset"), "OSError: connection reset"),
])
def test_refresh_never_raises_and_says_why(error, said):
    cache = ReportCache(answers(error), "MLflow at x", refresh_seconds=0)
    assert cache.refresh() is False
    assert cache.state.error == said and cache.state.report is None and cache.state.checked_at is not None


def test_no_report_yet_is_a_successful_check():
    cache = ReportCache(answers(None), "MLflow at x", refresh_seconds=0)
    assert cache.refresh() is True
    assert cache.state.report is None and cache.state.error is None and cache.state.checked_at is not None


def test_the_thread_checks_once_at_start():
    cache = ReportCache(answers((REPORT, "run-1")), "MLflow at x", refresh_seconds=0)
    cache.start()
    cache.stop(5)
    assert cache.state.run_id == "run-1"


@pytest.mark.parametrize("uri, shown", [
    ("http://mlflow:5000", "http://mlflow:5000"),
    ("https://user:secret@mlflow.example:8443/path", "https://mlflow.example:8443/path"),
    ("sqlite:////app/data/mlflow/mlflow.db", "sqlite:////app/data/mlflow/mlflow.db"),
])
def test_the_page_never_shows_credentials_of_the_tracking_uri(uri, shown):
    assert shown_uri(uri) == shown
