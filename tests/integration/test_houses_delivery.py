"""The houses problem end to end on the embedded MLflow store: generate-data, pipeline, acceptance,
deploy to `house-prices` at production, and a tiny model rejected; Favorita's runs and model untouched."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from cd4ml.cli import main
from tests.conftest import ROOT

HOUSES = ROOT / "params-houses.toml"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_tree(tmp_path: Path) -> Path:
    """params-houses.toml with one boosting tree: hardly better than the zip code's mean price."""
    text = HOUSES.read_text()
    assert "\nmax_iter = 100\n" in text
    path = tmp_path / "params-houses-1.toml"
    path.write_text(text.replace("\nmax_iter = 100\n", "\nmax_iter = 1\n"))
    return path


def test_houses_run_the_delivery_loop_beside_favorita(embedded, workshop_data, tmp_path, capsys):
    client = MlflowClient(f"sqlite:///{embedded / 'mlflow/mlflow.db'}")
    favorita = workshop_data / "store47-2016.csv"
    for step in ("pipeline", "acceptance", "deploy"):
        code, _, err = cli(capsys, step, *(["--data", favorita] if step == "pipeline" else []))
        assert code == 0, err
    sales_forecast = client.get_model_version_by_alias("sales-forecast", "production")

    code, out, _ = cli(capsys, "generate-data", "--problem", "houses", "--size", "tiny", "--out", embedded / "houses")
    assert code == 0 and "2,000 house sales" in out
    code, out, err = cli(capsys, "--params", HOUSES, "pipeline")
    assert code == 0, err
    assert "rmse" in out and "mape" in out and "nwrmsle" not in out
    run_id = json.loads((embedded / "last_run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "house-prices"
    assert run.data.tags["problem"] == "houses" and run.data.params["features.set"] == "default"
    assert run.data.metrics["baseline_r2"] < run.data.metrics["r2"] < run.data.metrics["best_r2"]
    code, out, _ = cli(capsys, "--params", HOUSES, "acceptance")
    assert code == 0 and "ACCEPTED" in out and "no production model yet" in out
    code, out, _ = cli(capsys, "--params", HOUSES, "deploy")
    assert code == 0 and "nothing -> v1" in out
    production = client.get_model_version_by_alias("house-prices", "production")
    assert str(production.version) == "1" and production.run_id == run_id

    tiny = one_tree(tmp_path)
    assert cli(capsys, "--params", tiny, "pipeline")[0] == 0
    code, out, _ = cli(capsys, "--params", tiny, "acceptance")
    assert code == 4 and "less than min_gain" in out and "worse than production v1" in out
    assert cli(capsys, "--params", tiny, "deploy")[0] == 4
    assert str(client.get_model_version_by_alias("house-prices", "production").version) == "1"

    again = client.get_model_version_by_alias("sales-forecast", "production")
    assert (again.version, again.run_id) == (sales_forecast.version, sales_forecast.run_id)
    assert len(client.search_model_versions("name = 'sales-forecast'")) == 1


def test_the_scale_path_is_refused_for_houses_in_one_line(embedded, capsys):
    code, _, err = cli(capsys, "--params", HOUSES, "pipeline", "--scale")
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "the scale path is for the favorita problem only" in err
