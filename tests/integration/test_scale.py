"""The scale path end to end: the CLI, MLflow, the gate and the model server's loader, on the
tiny generated data (two stores, twenty items, two years)."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cd4ml import registry
from cd4ml.cli import _allowed_types, main
from cd4ml.config import load_settings
from cd4ml.pipeline import scale
from cd4ml.pipeline.run import train_and_validate
from cd4ml.pipeline.mode import takes_scale_path
from cd4ml.pipeline.run_scale import scan_data
from cd4ml.pipeline.split import split_by_date
from cd4ml.problems import get_problem
from cd4ml.progress import Reporter
from tests.integration.test_pipeline import folder_sha256

REQUEST = {"date": "2017-08-20", "item_nbr": 99197, "store_nbr": 47, "onpromotion": False}


def run_json(capsys, *argv: str) -> dict:
    code = main(["pipeline", *argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def settings_for(data, **scale_changes):
    settings = load_settings(overrides={"data.source": str(data), "data.items": "all"})
    return replace(settings, scale=replace(settings.scale, **scale_changes))


def scan(settings, part_bytes: int = 50_000):
    problem = get_problem(settings.problem)
    source = problem.open(settings.data, None)
    partitions = problem.partitions(source, settings.data, part_bytes, settings.scale.max_rows)
    return problem, source, partitions, scan_data(settings, Reporter(quiet=True), problem, source, partitions)


def test_a_scale_run_is_tracked_gated_deployed_and_served(embedded, tiny_data, capsys):
    # the defaults' items (the workshop's three, in the tiny data too): --items would make it an experiment, never deployed
    result = run_json(capsys, "--data", str(tiny_data), "--scale")
    metrics = result["metrics"]
    assert metrics["r2"] > metrics["baseline_r2"] and metrics["rows_valid"] > 0
    assert result["data"]["sha256"] == folder_sha256(tiny_data)  # the row path's fingerprint
    assert result["data"]["rows_read"] == sum(1 for _ in open(tiny_data / "train.csv")) - 1
    import mlflow

    mlflow.set_tracking_uri(result["tracking_uri"])
    path = mlflow.artifacts.download_artifacts(run_id=result["run_id"], artifact_path="validation/rows.parquet")
    rows = pd.read_parquet(io.BytesIO(open(path, "rb").read()))  # what the gate scores production on
    assert list(rows.columns) == ["date", "item_nbr", "store_nbr", "onpromotion", "target", "weight"]
    assert len(rows) == metrics["rows_valid"]

    assert main(["acceptance"]) == 0 and main(["deploy"]) == 0
    settings = load_settings()
    client = registry.client(settings.tracking)
    version = registry.production(client, settings.tracking.registered_model)
    model = registry.load(client, version, settings.tracking.registered_model, _allowed_types(settings))  # skops, trusted types
    assert type(model.named_steps["features"]).__name__ == "CompactSalesFeatures"
    assert 99197 in model.named_steps["features"].catalogue
    (forecast,) = model.predict([REQUEST])
    assert forecast > 0
    assert np.allclose(model.predict(rows.drop(columns=["target", "weight"])).mean(), rows["target"].mean(), rtol=0.1)


def test_auto_mode_keeps_the_workshop_data_on_the_row_path(tiny_data, monkeypatch):
    assert not takes_scale_path(settings_for(tiny_data))
    assert not takes_scale_path(settings_for(tiny_data / "store47-2016.csv", auto_above_mb=0))
    assert takes_scale_path(settings_for(tiny_data, auto_above_mb=0.1))  # train.csv is 0.7 MB
    assert takes_scale_path(settings_for(tiny_data, mode="on"))
    assert not takes_scale_path(settings_for(tiny_data, mode="off", auto_above_mb=0))
    monkeypatch.setenv("CD4ML_SCALE_AUTO_ABOVE_MB", "0.1")
    assert load_settings().scale.auto_above_mb == 0.1


def test_the_scale_path_validates_on_the_row_paths_rows_with_the_same_baseline(tiny_data):
    settings = settings_for(tiny_data)
    problem, source, partitions, done = scan(settings)
    scanned = done.scanned

    table = problem.collect(problem.rows(problem.open(settings.data), settings.data))
    valid, cutoff = split_by_date(table.dates, settings.validation_days)
    rows = partitions.requests(scanned.valid)
    reference = table.inputs.loc[valid, ["date", "item_nbr", "store_nbr", "onpromotion"]]
    assert sorted(map(tuple, rows.to_numpy().tolist())) == sorted(map(tuple, reference.to_numpy().tolist()))
    assert scale.day_of(scanned.cutoff) == cutoff and scanned.train_rows == (~valid).sum()

    features = partitions.features(scanned)
    weights = partitions.weights(scanned.valid)
    at_scale = scale.train_and_validate_at_scale(scanned, features, features, weights, "gradient_boosting", {}, 42,
                                                 partitions.expected(scanned.valid["id"]))
    by_rows = train_and_validate(problem, table, problem.features(table, source), valid, "gradient_boosting", {}, 42,
                                 problem.expected(source, table.ids[valid]))
    for name in ("baseline_r2", "baseline_nwrmsle", "baseline_mae", "best_r2", "best_nwrmsle", "rows_valid"):
        assert at_scale.metrics[name] == pytest.approx(by_rows.metrics[name], rel=1e-9), name
    assert at_scale.metrics["r2"] > at_scale.metrics["baseline_r2"] + 0.03
    assert np.array_equal(at_scale.model.predict(rows), at_scale.predicted)  # serving = validation


def test_a_sample_with_room_for_every_row_is_training_on_everything(tiny_data):
    everything = scan(settings_for(tiny_data, strategy="all"))[3].scanned
    roomy = scan(settings_for(tiny_data, strategy="sample", sample_rows=10**9))[3].scanned
    small = scan(settings_for(tiny_data, strategy="sample", sample_rows=1000))[3].scanned
    for name in scale.COLUMNS:
        assert np.array_equal(everything.sample[name], roomy.sample[name])
    assert len(small.sample["day"]) == 1000 and np.array_equal(small.sums, everything.sums)


def test_the_batch_size_does_not_change_the_scan(tiny_data):
    settings = settings_for(tiny_data, strategy="sample", sample_rows=3000)
    a = scan(settings, part_bytes=1 << 20)[3]
    b = scan(settings, part_bytes=7_777)[3]
    assert len(a.partitions) == 1 and len(b.partitions) > 50
    for name in scale.COLUMNS:
        assert np.array_equal(a.scanned.sample[name], b.scanned.sample[name])
        assert np.array_equal(a.scanned.valid[name], b.scanned.valid[name])
    assert np.array_equal(a.scanned.sums, b.scanned.sums) and a.fingerprint == b.fingerprint


def test_max_rows_reads_only_the_first_lines(tiny_data, tmp_path):
    head = tmp_path / "head"
    head.mkdir()
    lines = (tiny_data / "train.csv").read_text().splitlines(keepends=True)
    (head / "train.csv").write_text("".join(lines[:5001]))
    for name in ("items.csv", "holidays_events.csv", "stores.csv"):
        (head / name).write_bytes((tiny_data / name).read_bytes())
    cut = scan(replace(settings_for(tiny_data, max_rows=5000), validation_days=7))[3]
    whole = scan(replace(settings_for(head), validation_days=7))[3]
    assert cut.scanned.lines == whole.scanned.lines == 5000
    assert np.array_equal(cut.scanned.sums, whole.scanned.sums) and cut.fingerprint == whole.fingerprint


def test_a_bad_line_fails_the_scale_run_with_its_file_and_line(embedded, tiny_data, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = (tiny_data / "train.csv").read_text().splitlines(keepends=True)
    lines[777] = lines[777].replace(lines[777].split(",")[4], "ten", 1)
    (bad / "train.csv").write_text("".join(lines))
    for name in ("items.csv", "holidays_events.csv"):
        (bad / name).write_bytes((tiny_data / name).read_bytes())
    assert main(["pipeline", "--data", str(bad), "--items", "all", "--scale"]) == 2
    err = capsys.readouterr().err
    assert "train.csv line 778" in err and "'ten'" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--scale", "--model", "ridge"], "on the scale path"),
    (["--max-rows", "10"], "--max-rows ([scale] max_rows) applies to the scale path only"),
])
def test_scale_flags_say_what_is_wrong(embedded, tiny_data, capsys, argv, message):
    assert main(["pipeline", "--data", str(tiny_data), *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_scale_path_reads_the_kaggle_layout_only(embedded, tiny_data, capsys):
    assert main(["pipeline", "--data", str(tiny_data / "store47-2016.csv"), "--scale"]) == 2
    assert "Kaggle layout" in capsys.readouterr().err
    assert main(["pipeline", "--data", str(tiny_data), "--scale", "--max-rows", "500", "--items", "all"]) == 2
    assert "validation_days=57 leaves no training data" in capsys.readouterr().err  # 500 rows span a few days


def test_the_scan_restores_arrows_memory_pool():
    """The pass swaps Arrow's pool (and glibc's mmap threshold) for its own duration only: a test
    or benchmark in the same process finds the pool it had."""
    import pyarrow as pa

    from cd4ml.pipeline.run_scale import freed_memory_returned

    before = pa.default_memory_pool().backend_name
    with freed_memory_returned():
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == before
