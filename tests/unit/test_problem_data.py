"""The data generation block of the seam (cd4ml.problems GeneratedProblem): what generate-data, a
first run and the benchmarks ask a problem, and the CLI asking it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cd4ml.cli import main
from cd4ml.config import load_settings
from cd4ml.errors import ConfigError
from cd4ml.problems import generator, get_problem
from tests.serving_helpers import an_event


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", ["favorita", "houses"])
def test_the_default_params_read_the_file_the_problem_generates(name, embedded):
    problem = get_problem(name)
    settings = load_settings(problem=name)
    assert settings.data.source == settings.paths.generated(problem.data_folder("workshop")) / problem.default_file


@pytest.mark.parametrize("name, files, line", [
    ("favorita", {"train.csv", "items.csv", "stores.csv", "holidays_events.csv", "expected.csv", "store47-2016.csv"},
     "wrote 19,602 sales rows (5,554 in the workshop file) to {out}"),
    ("houses", {"sales.csv", "zipcodes.csv", "expected.csv"}, "wrote 2,000 house sales in 249 zip codes to {out}"),
])
def test_generate_writes_the_data_set_and_says_what_it_wrote(name, files, line, tmp_path):
    out = tmp_path / name
    summary = get_problem(name).generate("tiny", out, seed=42)
    assert {p.name for p in out.iterdir()} == files
    assert summary["message"] == line.format(out=out) and summary["seconds"] >= 0


def test_a_problem_without_a_generator_is_named_in_one_line():
    from tests.toy import ToyProblem

    with pytest.raises(ConfigError, match="the toy problem has no data generator"):
        generator(ToyProblem())


def test_favoritas_actuals_are_the_sales_of_the_days_forecast(tiny_data, tmp_path):
    log = tmp_path / "predictions.jsonl"
    days = ("2016-12-24", "2016-12-24", "2016-12-30")
    log.write_text("".join(json.dumps(an_event(date=day)) + "\n" for day in days))
    out = tmp_path / "actuals"
    summary = get_problem("favorita").generate_actuals(log, out, "tiny", seed=42)

    def sales(path: Path) -> list[dict]:  # ids aside: the actuals number their own rows
        with path.open() as f:
            return [{k: v for k, v in r.items() if k != "id"} for r in csv.DictReader(f) if r["date"] in days]

    assert sales(out / "train.csv") == sales(tiny_data / "train.csv") != []
    assert summary["rows"] == len(sales(out / "train.csv"))
    assert summary["message"] == (f"wrote {summary['rows']:,} actual sales rows of the 2 days forecast in {log} "
                                  f"(2016-12-24 to 2016-12-30, tiny data, seed 42) to {out}")


def test_generate_data_of_houses_writes_to_its_own_folder(embedded, capsys):
    code, out, _ = cli(capsys, "generate-data", "--problem", "houses", "--size", "tiny")
    assert code == 0
    assert out == f"wrote 2,000 house sales in 249 zip codes to {embedded / 'houses-tiny'}\n"


def test_the_first_run_generates_the_problems_default_data(embedded, capsys):
    from cd4ml.cli import _ensure_default_data

    settings = load_settings(problem="houses")
    _ensure_default_data(settings)
    assert (embedded / "houses" / "sales.csv").is_file()
    assert "is missing: generating the houses data (seed 42)" in capsys.readouterr().err


def test_houses_actuals_for_an_event_log_are_written_and_scored_with_the_houses_params(embedded, tmp_path, capsys):
    pytest.importorskip("cd4ml.problems.houses.actuals")
    from cd4ml.events import prediction_event
    from cd4ml.problems.houses.generate import make_zipcodes

    zipcode = str(make_zipcodes(42)["zipcode"].iloc[0])  # one of the default seed's zip codes
    sale = {"sale_id": "7", "sale_date": "2020-06-15", "zipcode": zipcode, "square_feet": 1850, "lot_size_sf": 6000,
            "beds": 3, "baths": 2, "year_built": 1978, "style": "ranch", "parking": 1, "kitchen_refurbished": False,
            "pool": False, "multi_family": False}
    log = tmp_path / "predictions.jsonl"
    log.write_text(json.dumps(prediction_event(problem="houses", prediction=412_000.0, model_version="1", run_id="r",
                                               latency_ms=1.0, **sale)) + "\n")
    code, out, err = cli(capsys, "generate-data", "--problem", "houses", "--actuals-for", log)
    assert code == 0, err
    written = embedded / "houses-actuals"
    assert out.splitlines()[-1].endswith(f" monitor --problem houses --actuals {written}")
    assert (written / "sales.csv").is_file() and f"to {written}" in out
