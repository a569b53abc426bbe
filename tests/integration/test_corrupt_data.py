"""Corrupt data files through the real pipeline command (embedded MLflow store): a truncated last
line, a value of the wrong type, binary garbage. Each bad row is reported with its file and line;
a run with more bad rows than params.toml's [data] max_bad_rows fails (exit 2) before anything is
trained or recorded; a run within the threshold says which rows it skipped.

The tests share one data folder and its MLflow store (creating a store takes seconds); each starts
without the last test's last_run.json and counts the finished runs its own command added."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from cd4ml.cli import main
from tests.conftest import params_file

GOOD_ROW = "999001,2016-12-30,99197,12,DAIRY,2112,1,2016,12,30,4,1,False\n"
DAMAGE = {
    "truncated last line": (GOOD_ROW + "999002,2016-12-31,99197,1", "expected 13 fields, found 4"),  # no newline: cut off
    "wrong type": (GOOD_ROW.replace(",12,", ",twelve,"), "'twelve'"),
    "binary garbage": (GOOD_ROW[:20] + "\x00\x9c\xff\xfe\x07" + GOOD_ROW[25:], "not UTF-8"),
}


def damaged(tiny_data: Path, tmp_path: Path, *kinds: str) -> tuple[Path, list[int]]:
    """The tiny workshop file with the damage appended; returns it and the line numbers of the bad rows."""
    text = (tiny_data / "store47-2016.csv").read_bytes()
    lines = text.count(b"\n")
    tail, bad = b"", []
    for kind in kinds:
        added = DAMAGE[kind][0].encode("latin-1")
        bad.append(lines + tail.count(b"\n") + added.count(b"\n") + (0 if added.endswith(b"\n") else 1))
        tail += added
    path = tmp_path / "sales.csv"
    path.write_bytes(text + tail)
    return path, bad


def params(tmp_path: Path, max_bad_rows: int) -> Path:
    return params_file(tmp_path, {"data.max_bad_rows": max_bad_rows}, name=f"params-{max_bad_rows}.toml")


def finished_runs(embedded: Path) -> set[str]:
    db = embedded / "mlflow" / "mlflow.db"
    if not db.exists():
        return set()
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("sales-forecast")
    if experiment is None:
        return set()
    return {run.info.run_id for run in client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")}


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory) -> Path:
    """One data folder for the module, its embedded store (data/mlflow/mlflow.db) made once."""
    folder = tmp_path_factory.mktemp("corrupt-data")
    (folder / "mlflow").mkdir()
    MlflowClient(f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}").search_experiments()
    return folder


@pytest.fixture
def embedded(shared_data, monkeypatch) -> Path:
    """The embedded default in the shared data folder, without the last test's last_run.json."""
    monkeypatch.setenv("CD4ML_DATA_DIR", str(shared_data))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    (shared_data / "last_run.json").unlink(missing_ok=True)
    return shared_data


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_bad_row_fails_the_run_with_file_line_and_value_and_nothing_is_trained(kind, embedded, tiny_data, tmp_path, capsys):
    path, (line,) = damaged(tiny_data, tmp_path, kind)
    before = finished_runs(embedded)
    code = main(["pipeline", "--data", str(path), "--items", "all"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [row for row in err.splitlines() if row.startswith("error:")]  # progress lines (the run kind) may precede it
    assert errors == [err.splitlines()[-1]] and errors[0].startswith(f"error: {path} line {line}: "), err
    assert DAMAGE[kind][1] in err, err
    assert not (embedded / "last_run.json").exists() and finished_runs(embedded) == before


def test_bad_rows_within_the_params_threshold_are_skipped_and_each_is_reported(embedded, tiny_data, tmp_path, capsys):
    path, lines = damaged(tiny_data, tmp_path, "wrong type", "binary garbage", "truncated last line")
    assert main(["--params", str(params(tmp_path, 3)), "pipeline", "--data", str(path), "--items", "all"]) == 0
    out = capsys.readouterr()
    reported = [row for row in (out.out + out.err).splitlines() if row.startswith("skipped: ")]
    assert [row.split(": ", 2)[1] for row in reported] == [f"{path} line {n}" for n in lines], reported
    recorded = json.loads((embedded / "last_run.json").read_text())
    good_rows = (tiny_data / "store47-2016.csv").read_text().count("\n") - 1
    assert recorded["data"]["rows_kept"] == good_rows + 1  # and the good row before the cut-off one


def test_more_bad_rows_than_the_params_threshold_fail_the_run(embedded, tiny_data, tmp_path, capsys):
    path, lines = damaged(tiny_data, tmp_path, "wrong type", "binary garbage", "truncated last line")
    before = finished_runs(embedded)
    code = main(["--params", str(params(tmp_path, 2)), "pipeline", "--data", str(path), "--items", "all"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "more than 2 bad row(s)" in err and f"line {lines[-1]}" in err, err
    assert not (embedded / "last_run.json").exists() and finished_runs(embedded) == before
