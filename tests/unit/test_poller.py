"""The one poll thread of the server (serving/poller.py), used by the model store and the report cache."""

from __future__ import annotations

import threading

from cd4ml.serving.poller import Poller
from tests.serving_helpers import wait_for


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.count += 1


def test_every_zero_refreshes_once_at_start_and_the_thread_ends():
    calls = Calls()
    poller = Poller("test-poll", calls, every=0)
    poller.start()
    thread = poller.thread
    thread.join(5)
    assert not thread.is_alive() and calls.count == 1
    poller.stop()
    assert poller.thread is None


def test_it_refreshes_again_every_period_until_stopped():
    calls = Calls()
    poller = Poller("test-poll", calls, every=0.01)
    poller.start()
    try:
        wait_for(lambda: calls.count >= 3, what="three refreshes")
    finally:
        poller.stop()
    after = calls.count
    assert poller.thread is None and calls.count == after  # no refresh once stopped


def test_a_nudge_refreshes_long_before_the_period():
    calls, nudges = Calls(), []
    poller = Poller("test-poll", calls, every=3600, nudged=lambda: bool(nudges and nudges.pop()), check_seconds=0.01)
    poller.start()
    try:
        wait_for(lambda: calls.count == 1, what="the first refresh")
        nudges.append(True)
        wait_for(lambda: calls.count == 2, what="the nudged refresh")
    finally:
        poller.stop()


def test_first_false_skips_the_refresh_at_start():
    calls = Calls()
    poller = Poller("test-poll", calls, every=0, first=lambda: False)
    poller.start()
    poller.thread.join(5)
    poller.stop()
    assert calls.count == 0


def test_starting_twice_keeps_one_thread():
    calls = Calls()
    poller = Poller("test-poll", calls, every=3600)
    poller.start()
    first = poller.thread
    poller.start()
    try:
        assert poller.thread is first
    finally:
        poller.stop()
