"""compare's table (cd4ml/compare.py text): every metric in a column of its own, scores with four
decimals and dollars as whole numbers with separators, so a houses comparison reads as a table."""

from __future__ import annotations

from cd4ml.compare import Comparison, Row, text
from cd4ml.metrics import score_cell


def test_a_score_keeps_four_decimals_and_dollars_are_whole_with_separators():
    assert score_cell(0.93715) == "    0.9372" and score_cell(49371.875) == "    49,372"
    assert score_cell(-0.25) == "   -0.2500" and len(score_cell(12_345_678.9)) == 10


def test_house_price_metrics_stay_in_their_columns():
    houses = {"r2": 0.937149, "rmse": 49371.8751, "mae": 34448.1892, "mape": 0.0995, "production_r2": 0.9371}
    table = text(Comparison("1", "r2", [
        Row("production v1", "643f5e47d2a8", "gradient_boosting", "ACCEPTED", "", houses),
        Row("experiment", "77aa01b2c3d4", "lasso", "-", "--model lasso", {**houses, "rmse": 70846.0}),
    ]))
    header, production, experiment = table.splitlines()
    assert header.split()[4:8] == ["r2", "rmse", "mae", "mape"]
    assert production.split()[4:9] == ["ACCEPTED", "0.9371", "49,372", "34,448", "0.0995"], production
    assert "70,846" in experiment.split() and experiment.endswith("--model lasso")
