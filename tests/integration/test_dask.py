"""The scale path's scan on Dask: the same stage functions as tasks, the same result as one process."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from distributed import Client, LocalCluster

from cd4ml.config import load_settings
from cd4ml.errors import DataError, ServiceUnreachable
from cd4ml.pipeline import scale
from cd4ml.pipeline.distributed import dask_client, scan_on_dask
from cd4ml.pipeline.run_scale import scan_data
from cd4ml.problems import get_problem
from cd4ml.progress import Reporter
from tests.conftest import free_port


@pytest.fixture(scope="module")
def client():
    """Two workers in this process (threads): fast to start, and the tasks still run apart.

    No memory limit: a worker in this process would measure the whole pytest process (every module
    earlier tests imported, MLflow and scikit-learn included) and pause itself past 80% of it."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                      memory_limit=0) as cluster, Client(cluster) as client:
        yield client


def setup(data, part_bytes=40_000, **scale_changes):
    settings = load_settings(overrides={"data.source": str(data), "data.items": "all"})
    settings = replace(settings, scale=replace(settings.scale, strategy="sample", sample_rows=4000, **scale_changes))
    problem = get_problem("favorita")
    source = problem.open(settings.data, None)
    return settings, problem, source, problem.partitions(source, settings.data, part_bytes)


def trained(problem, source, partitions, scanned):
    features = partitions.features(scanned)
    return scale.train_and_validate_at_scale(
        scanned, features, features, partitions.weights(scanned.valid), "gradient_boosting", {}, 42,
    )


def assert_same(a: scale.Scanned, b: scale.Scanned) -> None:
    for name in scale.COLUMNS:
        assert np.array_equal(a.sample[name], b.sample[name]), name
        assert np.array_equal(a.valid[name], b.valid[name]), name
    assert np.array_equal(a.sums, b.sums) and np.array_equal(a.counts, b.counts)
    assert (a.lines, a.kept, a.cutoff) == (b.lines, b.kept, b.cutoff)


def test_dask_and_one_process_give_the_same_scan_model_and_predictions(client, tiny_data):
    settings, problem, source, partitions = setup(tiny_data)
    assert len(partitions) > 10
    spec = scale.spec_for("sample", 4000, settings.validation_days, settings.seed)
    here = scale.finish(scale.scan_local(partitions, spec, threads=2), spec)
    there = scale.finish(scan_on_dask(client, partitions, spec), spec)
    assert_same(here, there)
    a, b = trained(problem, source, partitions, here), trained(problem, source, partitions, there)
    assert a.metrics == b.metrics
    assert np.array_equal(a.predicted, b.predicted)
    requests = partitions.requests(here.valid)
    assert np.array_equal(a.model.predict(requests), b.model.predict(requests))


def test_the_run_scans_on_a_local_cluster_of_processes_like_in_threads(tiny_data):
    settings, problem, source, partitions = setup(tiny_data, part_bytes=100_000)
    threads = scan_data(settings, Reporter(quiet=True), problem, source, partitions)
    on_dask = scan_data(replace(settings, scale=replace(settings.scale, dask_scheduler="local")),
                        Reporter(quiet=True), problem, source, partitions)
    assert on_dask.engine == "dask (local)"
    assert_same(threads.scanned, on_dask.scanned)
    assert threads.fingerprint == on_dask.fingerprint


def test_a_bad_line_read_by_a_worker_fails_with_its_file_and_line(client, tiny_data, tmp_path):
    lines = (tiny_data / "train.csv").read_text().splitlines(keepends=True)
    lines[4321] = lines[4321].replace(lines[4321].split(",")[1], "2016-02-30", 1)
    (tmp_path / "train.csv").write_text("".join(lines))
    for name in ("items.csv", "holidays_events.csv"):
        (tmp_path / name).write_bytes((tiny_data / name).read_bytes())
    settings, problem, source, partitions = setup(tmp_path)
    spec = scale.spec_for("all", 1, settings.validation_days, settings.seed)
    with pytest.raises(DataError, match=r"train\.csv line 4322.*'2016-02-30'"):
        scan_on_dask(client, partitions, spec)


def test_an_unreachable_scheduler_is_reported_with_the_fix():
    with pytest.raises(ServiceUnreachable, match=r"cannot reach the Dask scheduler.*DASK_SCHEDULER_ADDRESS"):
        with dask_client(f"tcp://127.0.0.1:{free_port()}", timeout=1):
            pass
