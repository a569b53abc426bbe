"""Monitoring reads each problem's own events: the schema comes from the problem's Serving (its
join key, drift key, label and requested date), so the houses problem's events are checked,
counted per zip code and joined on sale_id like Favorita's are per product."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from cd4ml.config import load_settings
from cd4ml.events import prediction_event
from cd4ml.metrics import evaluate_prices
from cd4ml.monitoring.accuracy import LatestForecasts, actuals_by_key, live_accuracy
from cd4ml.monitoring.analysis import EventStats
from cd4ml.monitoring.events_source import DEFAULT_SCHEMA, FIELDS, schema_of
from cd4ml.monitoring.jsonl_events import JsonlEvents, parse_lines_one_by_one
from cd4ml.monitoring.profile import training_profile
from cd4ml.monitoring.report import drift, judge
from cd4ml.monitoring.run import event_schema
from cd4ml.monitoring.window import Window
from cd4ml.problems import get_problem

UTC = timezone.utc
WINDOW = Window(datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
INSIDE = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
HOUSES = event_schema("houses")


def house(sale_id: str = "7", zipcode: str = "02139", at: float = INSIDE, **changes) -> dict:
    fields = dict(sale_id=sale_id, sale_date="2020-06-15", zipcode=zipcode, square_feet=1850.0, beds=3, pool=False)
    fields.update(changes)
    return prediction_event(problem="houses", prediction=412000.0, model_version="1", run_id="h", latency_ms=0.5,
                            at=at, **fields)


def favorita(at: float = INSIDE) -> dict:
    return prediction_event(problem="favorita", date="2026-11-25", item_nbr=99197, item_name="Milk", store_nbr=47,
                            onpromotion=False, prediction=31.5, model_version="3", run_id="abc", latency_ms=0.25, at=at)


def test_the_houses_schema_reads_its_join_key_drift_key_and_sale_date():
    assert (HOUSES.drift, HOUSES.label, HOUSES.requested, HOUSES.days) == ("zipcode", None, "sale_date", ("sale_date",))
    assert set(HOUSES.fields) == {"@timestamp", "sale_id", "zipcode", "sale_date", "prediction", "model_version",
                                  "run_id", "latency_ms"}
    assert HOUSES.fields["zipcode"] == (str,) and HOUSES.fields["prediction"] == (float, int)


def test_favoritas_schema_has_the_fields_of_the_default_layout():
    assert event_schema("favorita").fields.keys() == FIELDS.keys() == DEFAULT_SCHEMA.fields.keys()


def test_a_schema_needs_the_type_of_every_field_it_reads():
    class Half:
        problem, join_key, event_types = "half", ("sale_id",), {"zipcode": "keyword"}

    with pytest.raises(ValueError, match=r"the event fields \['sale_id'\] have no event_types"):
        schema_of(Half(), "zipcode")


def test_houses_events_are_checked_as_houses_events_and_others_skipped(tmp_path):
    lines = [json.dumps(house(str(i), zipcode=f"0{2100 + i % 3}")) for i in range(300)]
    lines += [json.dumps(favorita()), json.dumps(house(sale_date="2020-02-30")), json.dumps(house(zipcode=2139)),
              json.dumps(house(at=INSIDE - 30 * 86400))]
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    source = JsonlEvents(path, problem="houses", schema=HOUSES)
    batches = list(source.batches(WINDOW))
    kept = [dict(zip(b, values)) for b in batches for values in zip(*b.values())]
    reference, skipped = parse_lines_one_by_one(path.read_bytes().splitlines(), WINDOW, "houses", HOUSES)
    assert kept == reference and len(kept) == 300 and kept[0]["zipcode"] == "02100"
    assert dict(source.skipped) == dict(skipped) == {
        "another problem's": 1, "missing or bad sale_date": 1, "missing or bad zipcode": 1}


def test_event_stats_count_the_schemas_drift_key_and_requested_date():
    stats = EventStats(HOUSES.drift, HOUSES.label, HOUSES.requested)
    for e in [house("1", "02139"), house("2", "02139"), house("3", "94110", sale_date="2020-06-16")]:
        stats.add({k: e[k] for k in HOUSES.fields})
    s = stats.summary()
    assert [(i["key"], i["name"], i["events"]) for i in s["items"]] == [("02139", "02139", 2), ("94110", "94110", 1)]
    assert s["weekdays"] == [2, 1, 0, 0, 0, 0, 0]  # 2020-06-15 is a Monday


def test_drift_compares_text_keys_with_leading_zeros_and_names_the_field(tmp_path):
    zips = np.array(["02139"] * 60 + ["94110"] * 40, dtype=object)
    dates = np.array([datetime(2020, 6, 15).date()] * 100, dtype=object)
    profile = training_profile(zips, dates, np.full(100, 400_000.0), np.full(20, 400_000.0))
    assert profile["items"] == {"02139": 0.6, "94110": 0.4}
    stats = EventStats(HOUSES.drift, HOUSES.label, HOUSES.requested)
    for i in range(100):
        stats.add({k: v for k, v in house(str(i), "94110" if i % 10 == 0 else "02139").items() if k in HOUSES.fields})
    found = drift(stats, profile, top_items=10)
    assert found["items"]["labels"] == ["02139", "94110", "other"] and found["items"]["field"] == "zipcode"
    assert found["items"]["live"] == pytest.approx([0.9, 0.1, 0.0]) and found["items"]["psi"] > 0.25
    (tmp_path / "params.toml").write_text("[monitoring]\nmin_events = 10\npsi_alert = 0.25\n")
    limits = load_settings(tmp_path / "params.toml", environ={"CD4ML_DATA_DIR": str(tmp_path)}).monitoring
    alerts, _ = judge({"events": 100, "latency": {"p99_ms": 1.0}}, found, None, None, "r2", limits)
    assert "drift of requested zipcode values: PSI" in alerts[0]


def test_live_accuracy_joins_on_sale_id_with_the_problems_metrics():
    serving = get_problem("houses").serving
    rows = [{"sale_id": i, "price": 100_000.0 * i} for i in (1, 2, 3)]
    actuals, repeated = actuals_by_key(rows, serving.join_key, serving.actual)
    joined = LatestForecasts(actuals)
    for i, forecast in ((1, 110_000.0), (2, 190_000.0), (9, 1.0)):
        joined.add({"sale_id": str(i), "@timestamp": "2026-11-20T12:00:00.000Z", "prediction": forecast,
                    "model_version": "1"})
    found = live_accuracy(actuals, joined, get_problem("houses").evaluate)
    assert (found["rows"], found["unmatched_events"], repeated) == (2, 1, 0)
    assert found["metrics"] == pytest.approx(evaluate_prices(np.array([1e5, 2e5]), np.array([1.1e5, 1.9e5])))
    assert set(found["metrics"]) == {"r2", "rmse", "mae", "mape"} and found["per_date"] == []
