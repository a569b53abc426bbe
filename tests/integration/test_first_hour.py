"""What a newcomer meets in the first hour, run as they would run it: outside the venv, a port taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def script(python: str | Path, *argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT):
    return subprocess.run([str(python), str(ROOT / "run_python_script.py"), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def bare_python(tmp_path) -> Path:
    """A python without the project's requirements, like the system python3 of a newcomer."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    return tmp_path / "bare" / "bin" / "python"


@pytest.mark.parametrize("command", ["serve", "pipeline", "generate-data"])
def test_a_python_without_the_requirements_is_told_to_activate_the_venv(bare_python, tmp_path, command):
    done = script(bare_python, command, env={"PATH": "/usr/bin:/bin", "CD4ML_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "is not installed for" in done.stderr and "source .venv/bin/activate" in done.stderr
    assert "make install" in done.stderr


@pytest.mark.parametrize("command", ["serve", "quickstart"])
def test_a_taken_port_is_one_line_and_exit_2_before_any_work(tmp_path, command):
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = script(sys.executable, command, "--port", str(port), env={"PATH": "/usr/bin:/bin", "CD4ML_DATA_DIR": str(data)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (f"error: port {port} on 127.0.0.1 is already in use (a server you started before?). "
                                   f"Stop that server, or choose another port with --port, e.g. --port {port + 1}.")
    assert done.stdout == "" and not data.exists()  # nothing generated, trained or deployed


def test_hints_name_the_venvs_programs_when_it_is_not_active(tmp_path):
    from cd4ml.config import shell_commands

    venv_bin = Path(sys.executable).parent
    outside = shell_commands({"PATH": "/usr/bin:/bin"})
    assert Path(outside.python).absolute() == venv_bin.absolute() / "python"
    assert Path(outside.mlflow).absolute() == venv_bin.absolute() / "mlflow" and Path(outside.mlflow).exists()
    assert shell_commands({"PATH": f"{venv_bin}:/usr/bin"}).script == "python3 run_python_script.py"


def test_the_pipelines_hint_works_as_typed_outside_the_venv(tmp_path, workshop_data):
    env = {"PATH": "/usr/bin:/bin", "CD4ML_DATA_DIR": str(tmp_path / "data"),
           "CD4ML_DATA_SOURCE": str(workshop_data / "store47-2016.csv"), "CD4ML_PARAMS": str(ROOT / "tests" / "params.toml")}
    done = script(sys.executable, "pipeline", env=env)
    assert done.returncode == 0, done.stderr
    hint = next(line for line in done.stdout.splitlines() if line.startswith("see it with: "))
    program = hint.removeprefix("see it with: ").split()[0]
    typed = subprocess.run([program, "ui", "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert typed.returncode == 0, typed.stderr


def cli(capsys, *argv) -> tuple[int, str, str]:
    from cd4ml.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["acceptance", "deploy"])
def test_a_run_that_does_not_exist_is_bad_input_not_an_unreachable_mlflow(embedded, capsys, command):
    code, _, err = cli(capsys, command, "--run-id", "deadbeef")
    assert code == 2, err
    last = err.strip().splitlines()[-1]  # after MLflow's own log lines as it creates the store
    assert last.startswith("error: no such run 'deadbeef' in sqlite:///") and "Traceback" not in err


def test_rollback_with_nothing_deployed_says_so(embedded, capsys, monkeypatch):
    code, _, err = cli(capsys, "rollback")
    assert code == 2
    assert "nothing is deployed" in err and "v-" not in err and "Deploy a model first" in err


def test_deploying_a_rejected_run_says_revert_or_improve_not_run_the_gate(embedded, capsys, tiny_data, tmp_path, monkeypatch):
    from tests.conftest import params_file

    monkeypatch.setenv("CD4ML_DATA_SOURCE", str(tiny_data / "store47-2016.csv"))
    strict = params_file(tmp_path, {"acceptance.min": 0.999})
    assert cli(capsys, "--params", strict, "pipeline")[0] == 0
    assert cli(capsys, "--params", strict, "acceptance")[0] == 4
    code, _, err = cli(capsys, "--params", strict, "deploy")
    assert code == 4 and "was rejected by the acceptance gate" in err
    assert "git revert" in err and "Improve the model" in err and "run_python_script.py acceptance" not in err


def test_version_counts_the_events_of_every_worker_not_the_one_that_answers(tmp_path, tiny_data, mlflow_server):
    import requests

    from tests.real_stack import deployed_server
    from tests.serving_helpers import MILK, wait_for

    with deployed_server(tmp_path, mlflow_server, tiny_data, workers=2) as server:
        url = server.url
        asked = 20
        for _ in range(asked):
            assert requests.get(f"{url}/prediction", params=MILK, timeout=10).status_code == 200

        def every_answer_counts_all() -> bool:
            answers = [requests.get(f"{url}/version", timeout=10).json()["events"] for _ in range(10)]
            return all(a["sent"] == asked and a["workers"] == 2 for a in answers)

        wait_for(every_answer_counts_all, seconds=30, what="/version counting both workers' events")
        events = requests.get(f"{url}/version", timeout=10).json()["events"]
        assert events["dropped"] == 0 and events["this_worker"]["sent"] <= asked


def test_quickstart_keeps_its_own_store_so_the_exercises_start_at_version_1(embedded, capsys, tiny_data, monkeypatch):
    monkeypatch.setenv("CD4ML_DATA_SOURCE", str(tiny_data / "store47-2016.csv"))
    done = script(sys.executable, "quickstart", "--no-serve", env=dict(os.environ))  # `make run`, in its own process
    assert done.returncode == 0, done.stderr
    assert "nothing -> v1" in done.stdout
    assert f"keeps its own MLflow store, last run and events in {embedded / 'quickstart'}" in done.stdout
    assert (embedded / "quickstart" / "mlflow" / "mlflow.db").exists()
    for step in ("pipeline", "acceptance", "deploy"):  # exercise 2, after `make run`
        code, out, err = cli(capsys, step)
        assert code == 0, err
    assert "sales-forecast@production: nothing -> v1" in out


def test_generate_data_writes_the_actual_sales_of_the_days_forecast(tmp_path, workshop_data):
    import csv
    import json

    from tests.serving_helpers import an_event

    log = tmp_path / "predictions.jsonl"
    days = ("2016-12-24", "2016-12-24", "2016-12-30", "2017-01-02")  # one after the data ends
    log.write_text("".join(json.dumps(an_event(date=day)) + "\n" for day in days))
    out = tmp_path / "actuals"
    done = script(sys.executable, "generate-data", "--actuals-for", str(log), "--out", str(out),
                  env={"PATH": "/usr/bin:/bin", "CD4ML_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr
    assert "the 3 days forecast" in done.stdout and f"monitor --actuals {out}" in done.stdout

    def sales(path: Path, wanted: set[str]) -> dict:
        with path.open() as f:
            return {(r["date"], r["store_nbr"], r["item_nbr"]): r["unit_sales"] for r in csv.DictReader(f) if r["date"] in wanted}

    written = sales(out / "train.csv", set(days))
    assert {day for day, _, _ in written} == set(days)
    in_2016 = {"2016-12-24", "2016-12-30"}
    assert {k: v for k, v in written.items() if k[0] in in_2016} == sales(workshop_data / "train.csv", in_2016)


def test_generate_data_without_forecasts_says_what_to_do(tmp_path):
    done = script(sys.executable, "generate-data", "--actuals-for", str(tmp_path / "none.jsonl"),
                  env={"PATH": "/usr/bin:/bin", "CD4ML_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 2 and "no forecasts to write the actual sales of" in done.stderr


def test_quickstart_off_main_trains_and_gates_an_experiment_but_deploys_nothing(embedded, tiny_data, monkeypatch):
    """`make run` on a branch other than main: the run is an experiment, so nothing is deployed, and it says so."""
    monkeypatch.setenv("CD4ML_DATA_SOURCE", str(tiny_data / "store47-2016.csv"))
    done = script(sys.executable, "quickstart", "--no-serve", env={**os.environ, "CD4ML_BRANCH": "my-branch"})
    assert done.returncode == 0, done.stderr
    assert "run kind: experiment (branch my-branch, not main); deploy refuses it" in done.stderr
    assert ("an experiment (branch my-branch, not main): not deployed; production is unchanged. "
            "Build the defaults on main to deploy") in done.stdout
    assert "deployed:" not in done.stdout


def test_the_houses_quickstart_deploys_beside_favorita_and_one_server_serves_both(embedded, tiny_data, tmp_path):
    """The README's two quickstarts in one data folder: `make run` (Favorita, here without serving),
    then `quickstart --problem houses`, which trains, gates and deploys house-prices and serves both."""
    import csv

    import requests

    from benchmarks.processes import free_port, wait_until_up

    favorita = {**os.environ, "CD4ML_DATA_SOURCE": str(tiny_data / "store47-2016.csv")}
    assert script(sys.executable, "quickstart", "--no-serve", env=favorita).returncode == 0
    houses = {k: v for k, v in os.environ.items() if k != "CD4ML_DATA_SOURCE"}  # the houses' own default data
    made = script(sys.executable, "generate-data", "--problem", "houses", "--size", "tiny", "--out",
                  str(embedded / "houses"), env=houses)
    assert made.returncode == 0 and (embedded / "houses" / "sales.csv").exists(), made.stderr  # quickstart keeps it
    port = free_port()
    log = (tmp_path / "houses.log").open("w")
    server = subprocess.Popen([sys.executable, str(ROOT / "run_python_script.py"), "quickstart", "--problem", "houses",
                               "--port", str(port)], cwd=ROOT, env=houses, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/health", server, seconds=180)
        said = (tmp_path / "houses.log").read_text()
        assert "run kind: candidate (the defaults of params-houses.toml on main)" in said, said
        assert "house-prices@production: nothing -> v1" in said and "generating" not in said, said
        with (embedded / "houses" / "sales.csv").open(newline="") as lines:
            asked = {k: v for k, v in next(csv.DictReader(lines)).items() if k != "price"}
        price = requests.get(f"{url}/houses/prediction", params=asked, timeout=30)
        assert price.status_code == 200 and price.json()["prediction"] > 0, price.text
        forecast = requests.get(f"{url}/favorita/", timeout=30)
        assert forecast.status_code == 200 and 'href="/houses/"' in forecast.text, forecast.text[:500]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
