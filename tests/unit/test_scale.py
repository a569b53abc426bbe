"""The scale path's scan: exact totals, a uniform sample and every validation row, whatever the
partitions and the order they are merged in (cd4ml/pipeline/scale.py)."""

from __future__ import annotations

import random
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cd4ml.errors import ConfigError, DataError
from cd4ml.pipeline import scale
from cd4ml.pipeline.mode import check_model
from cd4ml.problems.favorita.baseline import DayOfWeekMean


def frame_of(rows: list[tuple[int, int, float, bool]]) -> scale.Frame:
    day, cell, target, promo = (np.array(c) for c in zip(*rows)) if rows else ([], [], [], [])
    return {"day": np.asarray(day, np.int32), "cell": np.asarray(cell, np.int32), "target": np.asarray(target, float),
            "promo": np.asarray(promo, bool), "id": np.arange(len(rows), dtype=np.int64)}


rows_strategy = st.lists(
    st.tuples(st.integers(16000, 16060), st.integers(0, 40), st.integers(0, 9000).map(lambda m: m / 1000), st.booleans()),
    min_size=1, max_size=300, unique_by=lambda r: (r[0], r[1]),
)


def scanned_in_pieces(frame, spec, cuts, order_seed):
    """Scan the frame cut at `cuts`, merge the Partials in a shuffled order, finish."""
    bounds = [0, *sorted(cuts), len(frame["day"])]
    parts = [scale.scan(scale.take(frame, slice(a, b)), b - a, spec) for a, b in zip(bounds, bounds[1:])]
    rng = random.Random(order_seed)
    rng.shuffle(parts)
    while len(parts) > 1:  # a random tree of merges
        a = parts.pop(rng.randrange(len(parts)))
        b = parts.pop(rng.randrange(len(parts)))
        parts.append(scale.merge(a, b, spec))
    return scale.finish(parts[0], spec)


def same(a: scale.Scanned, b: scale.Scanned) -> None:
    for name in scale.COLUMNS:
        assert np.array_equal(a.sample[name], b.sample[name]), name
        assert np.array_equal(a.valid[name], b.valid[name]), name
    n = max(len(a.sums), len(b.sums))
    assert np.array_equal(np.pad(a.sums, (0, n - len(a.sums))), np.pad(b.sums, (0, n - len(b.sums))))
    assert np.array_equal(np.pad(a.counts, (0, n - len(a.counts))), np.pad(b.counts, (0, n - len(b.counts))))
    assert (a.lines, a.kept, a.first_day, a.last_day, a.cutoff) == (b.lines, b.kept, b.first_day, b.last_day, b.cutoff)


@settings(max_examples=80, deadline=None)
@given(rows_strategy, st.lists(st.integers(0, 300), max_size=6), st.integers(0, 1000),
       st.sampled_from([None, 1, 5, 50]), st.integers(1, 20))
def test_partitions_and_merge_order_do_not_change_the_result(rows, cuts, order, sample_rows, days):
    frame = frame_of(rows)
    if frame["day"].max() - days + 1 <= frame["day"].min():
        return
    spec = scale.ScanSpec(days, sample_rows, seed=7)
    one = scale.finish(scale.scan(frame, len(rows), spec), spec)
    pieces = scanned_in_pieces(frame, spec, [c % (len(rows) + 1) for c in cuts], order)
    same(one, pieces)
    floored = scale.ScanSpec(days, sample_rows, 7, floor=int(frame["day"].max()) - days + 1)
    same(one, scanned_in_pieces(frame, floored, [c % (len(rows) + 1) for c in cuts], order + 1))


@settings(max_examples=80, deadline=None)
@given(rows_strategy, st.lists(st.integers(0, 300), max_size=8), st.sampled_from([1, 3, 20]), st.integers(1, 20))
def test_partitions_scanned_within_the_running_bound_give_the_same_result(rows, cuts, sample_rows, days):
    """scan_local hands each new partition the bound of the total so far: the partition drops rows
    above it at once. The result must not change."""
    frame = frame_of(rows)
    if frame["day"].max() - days + 1 <= frame["day"].min():
        return
    spec = scale.ScanSpec(days, sample_rows, seed=11)
    edges = [0, *sorted(c % (len(rows) + 1) for c in cuts), len(rows)]
    total = bounded = None
    for a, b in zip(edges, edges[1:]):
        piece = scale.take(frame, slice(a, b))
        total = scale.merge(total, scale.scan(piece, b - a, spec), spec)
        part = scale.scan(piece, b - a, spec, bound=bounded.bound if bounded else None)
        if bounded is not None and bounded.bound is not None:
            assert part.sample_rows <= scale.scan(piece, b - a, spec).sample_rows
            assert all((f["priority"] <= np.uint64(bounded.bound)).all() for f in part.sample)
        bounded = scale.merge(bounded, part, spec)
    same(scale.finish(total, spec), scale.finish(bounded, spec))


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.integers(1, 40), st.integers(1, 15))
def test_the_scan_keeps_exact_totals_every_validation_row_and_the_smallest_hashes(rows, sample_rows, days):
    frame = frame_of(rows)
    cutoff = int(frame["day"].max()) - days + 1
    if cutoff <= frame["day"].min():
        return
    spec = scale.ScanSpec(days, sample_rows, seed=3)
    got = scale.finish(scale.scan(frame, len(rows), spec), spec)
    train = frame["day"] < cutoff
    group = frame["cell"][train].astype(np.int64) * 7 + (frame["day"][train].astype(np.int64) + 3) % 7
    milli = np.rint(frame["target"][train] * 1000).astype(np.int64)
    for g in np.unique(group):
        assert got.sums[g] == milli[group == g].sum() and got.counts[g] == (group == g).sum()
    assert got.counts.sum() == train.sum() == got.train_rows
    assert sorted(got.valid["id"]) == sorted(frame["id"][~train])
    priority = scale.priorities(frame["day"][train], frame["cell"][train], 3)
    smallest = np.sort(priority)[:sample_rows]
    assert np.array_equal(got.sample["priority"], smallest)


def test_priorities_depend_on_the_row_not_on_where_it_is_read():
    day, cell = np.array([16000, 16001, 16000], np.int32), np.array([5, 5, 6], np.int32)
    p = scale.priorities(day, cell, 42)
    assert len(set(p.tolist())) == 3
    assert np.array_equal(scale.priorities(day[::-1], cell[::-1], 42), p[::-1])
    assert not np.array_equal(scale.priorities(day, cell, 43), p)


def test_the_sample_is_uniform_over_training_rows():
    rng = np.random.default_rng(0)
    n = 200_000
    frame = frame_of(list(zip(rng.integers(16000, 16100, n), rng.integers(0, 1000, n), np.ones(n), np.zeros(n, bool))))
    spec = scale.spec_for("sample", 20_000, 10, 1)
    got = scale.finish(scale.scan(frame, n, spec), spec)
    assert len(got.sample["day"]) == 20_000
    per_day = np.bincount(got.sample["day"] - 16000, minlength=90)[:90]
    assert per_day.min() > 150 and per_day.max() < 300  # about 222 a day


def test_finish_says_what_to_change():
    spec = scale.ScanSpec(57, None, 1)
    with pytest.raises(DataError, match="no rows left after the filter"):
        scale.finish(scale.Partial(), spec)
    frame = frame_of([(16000, 1, 1.0, False), (16010, 1, 2.0, False)])
    with pytest.raises(ConfigError, match=r"validation_days=57 leaves no training data.*11 days"):
        scale.finish(scale.scan(frame, 2, spec), spec)


def test_spec_for_knows_its_strategies():
    assert scale.spec_for("all", 10, 5, 1).sample_rows is None
    assert scale.spec_for("sample", 10, 5, 1).sample_rows == 10


def test_an_unknown_strategy_is_refused_when_the_settings_are_read(tmp_path):
    from cd4ml.config import load_settings

    (tmp_path / "params.toml").write_text('[scale]\nstrategy = "some"\n')
    with pytest.raises(ConfigError, match="strategy must be one of sample, all; got 'some'"):
        load_settings(tmp_path / "params.toml", environ={})


def test_the_baseline_from_totals_is_the_row_paths_baseline():
    rng = np.random.default_rng(1)
    n = 3000
    day = rng.integers(16000, 16100, n).astype(np.int32)
    cell = rng.integers(0, 30, n).astype(np.int32)
    target = np.round(rng.gamma(2, 3, n), 3)
    frame = {"day": day, "cell": cell, "target": target, "promo": np.zeros(n, bool), "id": np.arange(n)}
    spec = scale.ScanSpec(14, None, 1)
    got = scale.finish(scale.scan(frame, n, spec), spec)
    train = day < got.cutoff
    as_requests = [{"date": date.fromordinal(int(d) + date(1970, 1, 1).toordinal()), "store_nbr": int(c) // 7,
                    "item_nbr": int(c) % 7} for d, c in zip(day, cell)]
    reference = DayOfWeekMean().fit([r for r, t in zip(as_requests, train) if t], target[train])
    valid = [r for r, t in zip(as_requests, train) if not t]
    order = np.lexsort((cell[~train], day[~train]))
    expected = reference.predict([valid[k] for k in order])
    assert np.allclose(scale.baseline_predict(got.sums, got.counts, got.valid), expected, rtol=1e-12)


def test_only_models_that_take_missing_values_train_at_scale():
    with pytest.raises(ConfigError, match="gradient_boosting, random_forest, decision_tree.*got 'ridge'"):
        check_model("ridge")
