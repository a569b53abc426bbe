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
from tests.conftest import committed_params, free_port, params_text
from tests.real_stack import ADMIN_TOKEN, Server, cli_env, deliver, production_model
from tests.serving_helpers import cycling_fetch, loaded, model_a, model_b, serving_settings

ITEMS = (99197, 105574, 1963838, 180891)
DATES = ("2016-08-01", "2016-12-24", "2017-01-02")
CLIENTS = 8


def inputs(items: tuple[int, ...] = ITEMS) -> list[dict]:
    return [{"date": d, "item_nbr": i, "store_nbr": s, "onpromotion": p}
            for d, i, s, p in itertools.product(DATES, items, (44, 47), (False, True))]


def expected_forecasts(models: dict[str, object], items: tuple[int, ...] = ITEMS) -> dict[tuple, float]:
    """(version, date, item, store, promo) -> what that version's model predicts, asked directly."""
    found = {}
    for version, model in models.items():
        rows = inputs(items)
        for row, value in zip(rows, model.predict(rows)):
            found[(version, row["date"], row["item_nbr"], row["store_nbr"], row["onpromotion"])] = float(value)
    return found


def hammer(url: str, requests_per_client: int, items: tuple[int, ...] = ITEMS) -> tuple[list[dict], list[str]]:
    """CLIENTS threads, each with its own connection, asking for all inputs round-robin."""
    rows = inputs(items)

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


def check_no_mixing(answers: list[dict], expected: dict[tuple, float], runs: dict[str, str] | None = None) -> set[str]:
    """Every answer is exactly its version's forecast and names its version's run (run-N unless `runs` says)."""
    versions = set()
    for answer in answers:
        key = (answer["model_version"], answer["date"], answer["item_nbr"], answer["store_nbr"], answer["onpromotion"])
        assert answer["prediction"] == expected[key], f"version {key[0]} did not make this forecast: {answer}"
        assert answer["run_id"] == (runs or {}).get(answer["model_version"], f"run-{answer['model_version']}")
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


def test_gunicorn_workers_swap_under_load_and_flush_their_events_on_exit(mlflow_server, tiny_data, tmp_path):
    """The real server (`run_python_script.py serve`, two gunicorn workers polling every 0.5 s) while the
    production alias moves between two versions the pipeline delivered (50 and 100 trees) every 0.3 s."""
    from mlflow import MlflowClient

    from cd4ml import registry

    env = cli_env(tmp_path, mlflow_server)
    served = {}
    for trees in (50, 100):  # two commits of the team's defaults: two candidates, two versions
        team = committed_params(tmp_path / "team", params_text({"model.gradient_boosting.max_iter": trees}), f"{trees} trees")
        deliver({**env, "CD4ML_PARAMS": str(team)}, tiny_data)
        found = production_model(env)
        served[found.version] = found
    assert sorted(served) == ["1", "2"]
    items = tuple(sorted(served["1"].catalogue))  # the products of the handed-out params
    expected = expected_forecasts({version: found.model for version, found in served.items()}, items)
    runs = {version: found.run_id for version, found in served.items()}
    client, name = MlflowClient(mlflow_server), env["CD4ML_TRACKING_REGISTERED_MODEL"]
    server, stop = Server(env, tmp_path / "server.log"), threading.Event()

    def move_the_alias() -> None:  # what `rollback --to N` does
        version = "2"
        while not stop.wait(0.3):
            version = "1" if version == "2" else "2"
            registry.rollback(client, name, to=version)

    answers, failures = [], []
    try:
        server.wait_ready()
        mover = threading.Thread(target=move_the_alias, daemon=True)
        mover.start()
        try:
            for _ in range(30):  # rounds of load until both versions have answered
                got, failed = hammer(server.url, 30, items)
                answers, failures = answers + got, failures + failed
                if len({a["model_version"] for a in answers}) == 2:
                    break
        finally:
            stop.set()
            mover.join(timeout=30)
        other = "1" if registry.production(client, name).number == "2" else "2"
        registry.rollback(client, name, to=other)
        reload = requests.post(f"{server.url}/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        assert reload.status_code == 200 and reload.json()["version"] == other, reload.text
    finally:
        server.stop()
    log = server.log.read_text()[-2000:]
    assert failures == [], log
    versions = check_no_mixing(answers, expected, runs)
    assert versions == {"1", "2"}, versions
    assert server.process.returncode == 0, log
    # Both workers flushed their events to the shared file when gunicorn stopped them.
    lines = (tmp_path / "data" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(answers)
    assert {json.loads(line)["model_version"] for line in lines} == versions
