"""The model store: swaps atomically, keeps its model when the registry fails, becomes ready by itself."""

from __future__ import annotations

import logging

import pytest

from cd4ml.errors import Cd4mlError, ServiceUnreachable
from sklearn.feature_extraction import DictVectorizer
from sklearn.pipeline import Pipeline

from cd4ml.problems.favorita.serving import default_store, known_stores
from cd4ml.serving.model_store import LoadedModel, ModelStore
from tests.serving_helpers import MILK, Registry, loaded, model_a, model_b, wait_for


@pytest.fixture(scope="module")
def v1(tiny_data) -> LoadedModel:
    return loaded(model_a(tiny_data), "1")


@pytest.fixture(scope="module")
def v2(tiny_data) -> LoadedModel:
    return loaded(model_b(tiny_data), "2")


def test_a_new_store_has_no_model_and_says_so():
    store = ModelStore(Registry(), poll_seconds=0)
    assert store.current is None
    assert store.status == {"version": None, "run_id": None, "git_commit": None, "loaded_at": None,
                            "last_error": None, "last_check": None}


def test_refresh_swaps_to_the_version_production_points_at(v1, v2):
    registry = Registry(v1)
    store = ModelStore(registry, poll_seconds=0)
    assert store.refresh() is True and store.current is v1
    registry.outcome = v2
    assert store.refresh() is True and store.current is v2
    assert registry.asked == [None, "1"]  # fetch is told what is served
    status = store.status
    assert status["version"] == "2" and status["run_id"] == "run-2" and status["git_commit"] == "abc1234"
    assert status["loaded_at"].endswith("Z") and status["last_check"].endswith("Z")


def test_refresh_keeps_the_same_model_when_production_is_unchanged(v1):
    store = ModelStore(Registry(v1), poll_seconds=0)
    store.refresh()
    assert store.refresh() is False
    assert store.current is v1 and store.swaps == 1


def test_an_unreachable_registry_keeps_the_model_and_reports_why(v1):
    registry = Registry(v1)
    store = ModelStore(registry, poll_seconds=0)
    store.refresh()
    registry.outcome = ServiceUnreachable("MLflow at http://127.0.0.1:1 did not answer.", "Start it.")
    assert store.refresh() is False
    assert store.current is v1
    assert "did not answer" in store.status["last_error"]


def test_a_version_that_cannot_be_loaded_keeps_the_model_and_reports_why(v1):
    registry = Registry(v1)
    store = ModelStore(registry, poll_seconds=0)
    store.refresh()
    registry.outcome = Cd4mlError("model version 7 has no artifacts.", "Re-run the pipeline.")
    store.refresh()
    assert store.current is v1
    assert store.status["last_error"] == "model version 7 has no artifacts. Re-run the pipeline."
    assert store.status["version"] == "1"


def test_an_unexpected_error_in_fetch_is_caught_and_named(v1):
    registry = Registry(v1)
    store = ModelStore(registry, poll_seconds=0)
    store.refresh()
    registry.outcome = RuntimeError("boom")
    assert store.refresh() is False
    assert store.current is v1 and store.last_error == "RuntimeError: boom"


def test_the_error_clears_after_a_good_check(v1):
    registry = Registry(ServiceUnreachable("down"))
    store = ModelStore(registry, poll_seconds=0)
    store.refresh()
    assert store.last_error == "down"
    registry.outcome = v1
    store.refresh()
    assert store.last_error is None and store.current is v1


def test_the_same_error_is_logged_once_not_on_every_poll(v1, caplog):
    store = ModelStore(Registry(ServiceUnreachable("registry down")), poll_seconds=0)
    with caplog.at_level(logging.WARNING, logger="cd4ml.serving.model_store"):
        for _ in range(5):
            store.refresh()
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("model refresh failed: registry down; no model loaded yet") == 1


def test_the_poll_thread_makes_the_store_ready_by_itself(v1):
    registry = Registry(ServiceUnreachable("not yet"))
    store = ModelStore(registry, poll_seconds=0.01)
    store.start()
    try:
        wait_for(lambda: len(registry.asked) >= 3, what="three registry checks")
        assert store.current is None and store.last_error == "not yet"
        registry.outcome = v1  # a model gets deployed
        wait_for(lambda: store.current is not None, what="the store loading the deployed model")
        assert store.current is v1
    finally:
        store.stop()
    asked = len(registry.asked)
    assert store.poller.thread is None
    registry.outcome = ServiceUnreachable("would be asked again")
    store.refresh()  # a manual refresh still works after stop
    assert len(registry.asked) == asked + 1


def test_poll_seconds_zero_loads_once_and_stops(v1):
    registry = Registry(v1)
    store = ModelStore(registry, poll_seconds=0)
    store.start()
    wait_for(lambda: store.current is not None, what="the first load")
    thread = store.poller.thread
    thread.join(5)
    assert not thread.is_alive() and registry.asked == [None]


def test_a_loaded_model_knows_its_stores_items_and_predicts_like_its_pipeline(v1, v2):
    assert v1.stores == frozenset({44, 47}) == known_stores(v1.model)
    assert v1.default_store == 47
    assert len(v1.items) == len(v1.catalogue) == 20
    assert [row["name"] for row in v1.items[:3]] == ["Cheese", "Milk", "Soap"]  # named products first
    assert v1.items[0] == {"item_nbr": 105574, "name": "Cheese", "family": "DAIRY"}
    args = (MILK["date"], MILK["item_nbr"], MILK["store_nbr"], MILK["onpromotion"])
    assert v1.predict_one(*args) == float(v1.model.predict([MILK])[0])
    assert v1.predict_one(*args) == v1.predict_one(*args)  # and the cached answer is the same
    assert v2.predict_one(*args) == float(v2.model.predict([MILK])[0]) != v1.predict_one(*args)


def test_a_store_unknown_to_the_encoder_means_no_store_list():
    assert known_stores(object()) == frozenset()


def encoder_knowing(*stores: int) -> Pipeline:
    """A pipeline whose encoder saw these stores (all known_stores reads)."""
    return Pipeline([("encode", DictVectorizer().fit([{"store_nbr": str(s), "item_nbr": "1"} for s in stores]))])


@pytest.mark.parametrize("stores, default", [
    ((47,), 47), ((44,), 44), ((44, 47), 47), ((44, 45), None), ((), 47),
])
def test_the_default_store_is_the_only_one_or_the_workshops(stores, default):
    found = known_stores(encoder_knowing(*stores)) if stores else frozenset()
    assert found == frozenset(stores)
    assert default_store(found) == default
    model = encoder_knowing(*stores) if stores else object()
    assert LoadedModel("1", "r", "c", model, {1: {}}, 0.0).default_store == default


def test_a_nudge_from_another_worker_makes_the_store_refresh_now(tmp_path):
    """Two stores sharing a nudge file stand for two gunicorn workers of one server."""
    import threading

    from cd4ml.serving.model_store import ModelStore

    calls = {"a": 0, "b": 0}
    refreshed = threading.Event()

    def fetcher(name):
        def fetch(current):
            calls[name] += 1
            if name == "b" and calls[name] > 1:
                refreshed.set()
            return None
        return fetch

    nudge = tmp_path / "reload.stamp"
    a = ModelStore(fetcher("a"), poll_seconds=3600, nudge_path=nudge)
    b = ModelStore(fetcher("b"), poll_seconds=3600, nudge_path=nudge)
    b.start()
    try:
        a.refresh()
        a.nudge()
        assert refreshed.wait(10), "the other worker did not refresh after the nudge"
    finally:
        b.stop()


def test_nudging_a_data_folder_reaches_every_server_serving_from_it_and_no_other(tmp_path):
    """What deploy and rollback do: the servers of this data folder refresh now, not at their next poll."""
    import threading

    from cd4ml.serving.model_store import ModelStore, nudge_file, nudge_local_servers, touch_nudge_file

    refreshed = {port: threading.Event() for port in (5005, 5006, 5007)}

    def fetcher(port):
        calls = []

        def fetch(current):
            calls.append(current)
            if len(calls) > 1:
                refreshed[port].set()
        return fetch

    here, elsewhere = tmp_path / "data", tmp_path / "other"
    stores = []
    for port, folder in ((5005, here), (5006, here), (5007, elsewhere)):
        touch_nudge_file(nudge_file(folder, port))  # what serve does before its workers start
        stores.append(ModelStore(fetcher(port), poll_seconds=3600, nudge_path=nudge_file(folder, port)))
    for store in stores:
        store.start()
    try:
        assert nudge_local_servers(here) == 2
        assert refreshed[5005].wait(10) and refreshed[5006].wait(10), "a server of this folder did not refresh"
        assert not refreshed[5007].is_set()
    finally:
        for store in stores:
            store.stop()
    assert nudge_local_servers(tmp_path / "no-such-folder") == 0


def test_the_precomputed_grid_answers_exactly_what_the_model_predicts(v1):
    from cd4ml.problems.favorita.serving import forecast_grid

    model = v1.model
    features = model.named_steps["features"]
    small = {k: features.catalogue[k] for k in list(features.catalogue)[:2]}
    grid = forecast_grid(model, small, frozenset({47}))
    first = features.period[0]
    assert len(grid) == 2 * 1 * 2 * len({k[0] for k in grid}) and (first, next(iter(small)), 47, False) in grid
    for (day, item, store, promo), value in list(grid.items())[::97]:
        request = {"date": day, "item_nbr": item, "store_nbr": store, "onpromotion": promo}
        assert value == float(model.predict([request])[0])
