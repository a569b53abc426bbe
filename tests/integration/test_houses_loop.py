"""The houses problem runs the whole loop in real processes, as a user runs it: generate-data,
pipeline, acceptance and deploy against a real `mlflow server`, `serve` (gunicorn) answering
/houses/ and its API and logging events with the houses fields, generate-data --actuals-for
pricing the houses asked about, and `monitor` joining them on sale_id and counting zip codes."""

from __future__ import annotations

import csv
import json

import pytest
import requests

from tests.conftest import ROOT
from tests.real_stack import Server, cli, cli_env, deliver

ASKED = 40  # houses priced through the API


@pytest.fixture
def houses(mlflow_server, tmp_path):
    """A user's houses params: params-houses.toml with this test's registered model (where things are
    recorded, not what is built: the run stays a production candidate)."""
    params = tmp_path / "params-houses.toml"
    text = (ROOT / "params-houses.toml").read_text()
    assert 'registered_model = "house-prices"' in text
    params.write_text(text.replace('registered_model = "house-prices"', f'registered_model = "houses-{tmp_path.name}"'))
    env = cli_env(tmp_path, mlflow_server)
    env.pop("CD4ML_TRACKING_REGISTERED_MODEL")
    return env, params


def test_the_houses_problem_runs_the_whole_loop(houses, tmp_path):
    env, params = houses
    data = tmp_path / "data" / "houses"
    made = cli(env, "generate-data", "--problem", "houses", "--size", "tiny", "--out", str(data))
    assert made.returncode == 0 and "2,000 house sales" in made.stdout, made.stderr
    deliver(env, data / "sales.csv", "--params", str(params), run=cli)  # each step exits 0

    with (data / "sales.csv").open(newline="") as lines:
        sales = list(csv.DictReader(lines))[-ASKED:]
    server = Server({**env, "CD4ML_PARAMS": str(params)}, tmp_path / "server.log", workers=1)
    try:
        server.wait_ready()
        prices = []
        for i, sale in enumerate(sales):
            asked = {k: v for k, v in sale.items() if k not in ("price",)} | {"sale_id": str(900_000 + i)}
            answer = requests.get(f"{server.url}/houses/prediction", params=asked, timeout=10)
            assert answer.status_code == 200, answer.text
            prices.append(answer.json()["prediction"])
        assert all(20_000 < p < 20_000_000 for p in prices)  # dollars
        bad = requests.get(f"{server.url}/houses/prediction", params={**asked, "parking": "garage"}, timeout=10)
        assert bad.status_code == 400 and bad.json()["field"] == "parking"
        page = requests.get(f"{server.url}/houses/", params=asked, timeout=10)
        assert page.status_code == 200 and 'id="prediction"' in page.text and "$" in page.text
        index = requests.get(f"{server.url}/", timeout=10)
        assert index.status_code == 200
    finally:
        server.stop()

    events = [json.loads(line) for line in (tmp_path / "data" / "predictions.jsonl").read_text().splitlines()]
    assert len(events) == ASKED + 1 and {e["problem"] for e in events} == {"houses"}
    assert events[0]["sale_id"] == "900000" and events[0]["zipcode"] == sales[0]["zipcode"]

    actuals = tmp_path / "actuals"
    priced = cli(env, "--params", str(params), "generate-data", "--actuals-for", str(tmp_path / "data" / "predictions.jsonl"),
                 "--out", str(actuals))
    assert priced.returncode == 0, priced.stdout + priced.stderr
    monitored = cli(env, "--params", str(params), "monitor", "--actuals", str(actuals), "--json")
    assert monitored.returncode in (0, 5), monitored.stdout + monitored.stderr  # 5: an alert (few events)
    report = json.loads(monitored.stdout[monitored.stdout.index("{"):])
    assert report["model"]["version"] == "1" and set(report["model"]["validation"]) == {"r2", "rmse", "mae", "mape"}
    assert report["events"]["events"] == ASKED + 1 and report["skipped"] == {}
    assert report["drift"]["items"]["field"] == "zipcode"
    accuracy = report["accuracy"]
    assert (accuracy["rows"], accuracy["matched_events"]) == (ASKED, ASKED + 1)  # the page asked one again
    assert set(accuracy["metrics"]) == {"r2", "rmse", "mae", "mape"} and accuracy["metrics"]["mape"] < 0.5
