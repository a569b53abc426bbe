"""Hot swap under load: versions change while many clients ask, and no answer fails or mixes models.

Every answer names the version that made it; the test knows which model each version is, and
checks the forecast is exactly what that model predicts for that input.
"""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from werkzeug.serving import make_server

from cd4ml.events import JsonlSink
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from tests.conftest import free_port
from tests.serving_helpers import (
    ADMIN_TOKEN, cycling_fetch, loaded, model_a, model_b, serving_settings, start_server, stop_server,
)

ITEMS = (99197, 105574, 1963838, 180891)
DATES = ("2016-08-01", "2016-12-24", "2017-01-02")
CLIENTS = 8


def inputs() -> list[dict]:
    return [{"date": d, "item_nbr": i, "store_nbr": s, "onpromotion": p}
            for d, i, s, p in itertools.product(DATES, ITEMS, (44, 47), (False, True))]


def expected_forecasts(models: dict[str, object]) -> dict[tuple, float]:
    """(version, date, item, store, promo) -> what that version's model predicts, asked directly."""
    found = {}
    for version, model in models.items():
        rows = inputs()
        for row, value in zip(rows, model.predict(rows)):
            found[(version, row["date"], row["item_nbr"], row["store_nbr"], row["onpromotion"])] = float(value)
    return found


def hammer(url: str, requests_per_client: int) -> tuple[list[dict], list[str]]:
    """CLIENTS threads, each with its own connection, asking for all inputs round-robin."""
    rows = inputs()

    def client(n: int) -> tuple[list[dict], list[str]]:
        answers, failures = [], []
        with requests.Session() as session:
            for k in range(requests_per_client):
                row = rows[(n * 7 + k) % len(rows)]
                query = (f"date={row['date']}&item_nbr={row['item_nbr']}&store_nbr={row['store_nbr']}"
                         f"&onpromotion={str(row['onpromotion']).lower()}")
                try:
                    response = session.get(f"{url}/prediction?{query}", timeout=10)
                except requests.RequestException as err:
                    failures.append(repr(err))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    answers.append(response.json())
        return answers, failures

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    return [a for r in results for a in r[0]], [f for r in results for f in r[1]]


def check_no_mixing(answers: list[dict], expected: dict[tuple, float]) -> set[str]:
    versions = set()
    for answer in answers:
        key = (answer["model_version"], answer["date"], answer["item_nbr"], answer["store_nbr"], answer["onpromotion"])
        assert answer["prediction"] == expected[key], f"version {key[0]} did not make this forecast: {answer}"
        assert answer["run_id"] == f"run-{answer['model_version']}"
        versions.add(answer["model_version"])
    return versions


@pytest.fixture(scope="module")
def models(tiny_data) -> dict[str, object]:
    """Four versions, two different models: a swap between any two changes the forecasts."""
    a, b = model_a(tiny_data), model_b(tiny_data)
    return {"1": a, "2": b, "3": a, "4": b}


def test_the_two_models_disagree_so_mixing_would_show(models):
    expected = expected_forecasts(models)
    differing = sum(expected[("1", *k[1:])] != expected[("2", *k[1:])] for k in expected if k[0] == "1")
    assert differing == len(inputs())


def test_threads_in_one_process_never_see_a_half_swapped_model(models, tmp_path):
    """A threaded server: request threads and the poll thread share one store; it swaps every 2 ms."""
    store = ModelStore(cycling_fetch([loaded(m, v) for v, m in models.items()]), poll_seconds=0.002)
    sink = JsonlSink(tmp_path / "predictions.jsonl")
    server = make_server("127.0.0.1", free_port(), create_app(serving_settings(), store, sink), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    store.start()
    try:
        answers, failures = hammer(f"http://127.0.0.1:{server.server_port}", 60)
    finally:
        store.stop()
        server.shutdown()
        sink.close()
    assert failures == []
    assert len(answers) == CLIENTS * 60
    versions = check_no_mixing(answers, expected_forecasts(models))
    assert store.swaps >= 5 and len(versions) >= 2, (store.swaps, versions)
    events = [json.loads(line) for line in sink.path.read_text().splitlines()]
    assert len(events) == len(answers)  # one event per forecast, each naming the version that answered
    assert sorted((e["model_version"], e["prediction"]) for e in events) == sorted(
        (a["model_version"], a["prediction"]) for a in answers)


def test_gunicorn_workers_swap_under_load_and_flush_their_events_on_exit(models, tmp_path):
    """The real server: two gunicorn workers, each polling a registry that moves every 20 ms."""
    process, url, log = start_server(tmp_path, models, "--cycle", "--poll", "0.02", "--admin-token", ADMIN_TOKEN)
    try:
        answers, failures = hammer(url, 60)
        reload = requests.post(f"{url}/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        assert reload.status_code == 200 and reload.json()["swapped"] is True
    finally:
        code = stop_server(process)
    assert failures == [], log.read_text()[-2000:]
    versions = check_no_mixing(answers, expected_forecasts(models))
    assert len(versions) >= 2, versions
    assert code == 0, log.read_text()[-2000:]
    # Both workers flushed their events to the shared file when gunicorn stopped them.
    lines = (tmp_path / "data" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(answers)
    assert {json.loads(line)["model_version"] for line in lines} == versions
