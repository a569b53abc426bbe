"""The monitoring page's inputs, for its unit and browser tests: forecasts over a fixed grid, the tiny
data's training profile, and the report `monitor` writes (built by the monitoring code itself, without MLflow)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from cd4ml.config import DataSettings, load_settings
from cd4ml.monitoring.jsonl_events import JsonlEvents
from cd4ml.monitoring.window import Window
from cd4ml.monitoring.profile import training_profile
from cd4ml.monitoring.run import Deployed, build, gather, read_actuals, write_latest
from cd4ml.problems import get_problem

DAYS = ["2016-08-01", "2016-08-02", "2016-08-03"]
ITEMS = [99197, 105574, 1963838]


def tiny_profile(tiny_data: Path, model) -> dict:
    """The training profile the pipeline would log for `model` on the tiny data."""
    problem = get_problem("favorita")
    data = DataSettings(source=tiny_data, items=None, stores=None, max_bad_rows=0)
    table = problem.collect(problem.rows(problem.open(data), data))
    return training_profile(table.inputs["item_nbr"].to_numpy(), table.dates, table.target,
                            model.predict(table.inputs.tail(3000)))


def write_report(data_dir: Path, tiny_data: Path, profile: dict) -> dict:
    """What `monitor --actuals tiny_data` writes, from the events in data_dir (MLflow left out)."""
    settings = load_settings(environ={"CD4ML_DATA_DIR": str(data_dir)})
    now = datetime.now(timezone.utc)
    window = Window(now - timedelta(days=7), now + timedelta(minutes=1))
    source = JsonlEvents(settings.paths.prediction_log)
    actuals, repeated = read_actuals(settings, tiny_data)
    stats, joined = gather(source, window, actuals)
    deployed = Deployed("sales-forecast", "1", "run-1", {"r2": 0.8, "nwrmsle": 0.5, "mae": 3.0}, profile, None)
    report = build(settings, window, source, stats, joined, actuals, repeated, deployed, now)
    write_latest(settings.paths.monitoring_report, report)
    return report


def forecast_all(get) -> int:
    for day in DAYS:
        for item in ITEMS:
            assert get(f"/prediction?date={day}&item_nbr={item}&store_nbr=47").status_code == 200
    return len(DAYS) * len(ITEMS)
