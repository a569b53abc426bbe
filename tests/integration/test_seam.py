"""The seam: a third problem, defined in tests/toy (a CSV, one feature, a mean baseline), runs the
whole loop with real processes and no product code changed for it: pipeline, gate, deploy (each a
fresh `run_python_script.py` process), `serve` (gunicorn) answering its form and API and writing
its events, and `monitor` reading them. CD4ML_EXTRA_PROBLEMS=tests.toy is how every process finds it."""

from __future__ import annotations

import json

import pytest
import requests

from tests.real_stack import Server, cli, cli_env, deliver
from tests.toy import PARAMS, write_data


@pytest.fixture
def toy_env(mlflow_server, tmp_path):
    return cli_env(tmp_path, mlflow_server, CD4ML_EXTRA_PROBLEMS="tests.toy", CD4ML_PARAMS=str(PARAMS))


def test_a_problem_defined_in_the_tests_runs_the_whole_loop(toy_env, tmp_path):
    data = write_data(tmp_path / "data" / "toy" / "toy.csv")
    deliver(toy_env, data, run=cli)  # pipeline, acceptance, deploy: each exits 0

    server = Server(toy_env, tmp_path / "server.log", workers=1)
    try:
        server.wait_ready()
        answer = requests.get(f"{server.url}/prediction", params={"k": "3"}, timeout=10).json()
        assert answer["k"] == 3 and 28 < answer["prediction"] < 32  # y = 10·k + noise, by a ridge model
        same = requests.get(f"{server.url}/toy/prediction", params={"k": "3"}, timeout=10).json()
        assert same["prediction"] == answer["prediction"]
        bad = requests.get(f"{server.url}/prediction", params={"k": "7"}, timeout=10)
        assert bad.status_code == 400 and bad.json()["field"] == "k"
        page = requests.get(f"{server.url}/toy/", params={"k": "1"}, timeout=10)
        assert page.status_code == 200 and 'id="prediction"' in page.text
        assert requests.get(f"{server.url}/favorita/prediction", params={"date": "2016-08-01", "item_nbr": "1"},
                            timeout=10).status_code == 503  # served, nothing deployed for it
    finally:
        server.stop()

    events = [json.loads(line) for line in (tmp_path / "data" / "predictions.jsonl").read_text().splitlines()]
    assert [(e["problem"], e["k"]) for e in events] == [("toy", 3), ("toy", 3), ("toy", 1)]
    assert {"prediction", "model_version", "run_id", "latency_ms", "@timestamp"} <= set(events[0])

    monitored = cli(toy_env, "monitor", "--json")
    assert monitored.returncode == 0, monitored.stdout + monitored.stderr
    report = json.loads(monitored.stdout[monitored.stdout.index("{"):])
    assert report["model"]["version"] == "1" and report["model"]["validation"]["r2"] > 0.9  # the toy's model
    assert report["events"]["events"] == 3 and report["skipped"] == {}  # its own events, by its own schema
    assert [(i["key"], i["events"]) for i in report["events"]["items"]] == [(3, 2), (1, 1)]  # counted by its drift key
    assert report["drift"]["items"]["field"] == "k" and "weekdays" not in report["drift"]  # no requested date
