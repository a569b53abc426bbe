"""The houses problem's stages: generator, readers, process, features (no leak), baseline, models."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cd4ml.config import PROBLEM_DEFAULTS, PROBLEM_METRICS, load_settings
from cd4ml.errors import ConfigError, DataError
from cd4ml.metrics import HIGHER_IS_BETTER
from cd4ml.pipeline.models import MODELS
from cd4ml.pipeline.run import fit_and_validate
from cd4ml.problems import get_problem
from cd4ml.problems.houses import schema
from cd4ml.problems.houses.baseline import ZipMeanPrice
from cd4ml.problems.houses.features import FEATURE_SETS, HouseFeatures, PriceLevels
from cd4ml.problems.houses.generate import generate, make_sales, make_zipcodes
from cd4ml.problems.houses.process import process_row, process_rows
from cd4ml.problems.houses.readers import open_source

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def houses(tmp_path_factory) -> Path:
    """The tiny houses data set, as generate-data --problem houses --size tiny writes it."""
    folder = tmp_path_factory.mktemp("data") / "houses"
    generate("tiny", folder, seed=42)
    return folder


def settings_for(houses: Path, **overrides):
    return load_settings(ROOT / "params-houses.toml", environ={"CD4ML_DATA_DIR": str(houses.parent)},
                         overrides={"data.source": str(houses / schema.SALES_FILE), **overrides})


# --- the generator: data tests ----------------------------------------------------------------

def test_the_generator_writes_the_workshops_columns_and_its_own_zip_code_table(houses):
    sales = pd.read_csv(houses / schema.SALES_FILE, dtype={"zipcode": str})
    zipcodes = pd.read_csv(houses / schema.ZIPCODES_FILE, dtype={"zipcode": str})
    assert tuple(sales.columns) == schema.SALES_COLUMNS and len(sales) == 2_000
    assert tuple(zipcodes.columns) == schema.ZIPCODES_COLUMNS
    assert set(sales["zipcode"]) <= set(zipcodes["zipcode"]) and zipcodes["zipcode"].is_unique
    assert sales["sale_id"].is_unique and sales["sale_date"].is_monotonic_increasing


def test_same_seed_same_bytes_and_another_seed_other_sales(tmp_path, houses):
    generate("tiny", tmp_path / "again", seed=42)
    generate("tiny", tmp_path / "other", seed=7)
    digest = {name: hashlib.sha256((folder / schema.SALES_FILE).read_bytes()).hexdigest()
              for name, folder in (("first", houses), ("again", tmp_path / "again"), ("other", tmp_path / "other"))}
    assert digest["first"] == digest["again"] != digest["other"]


def test_the_generating_process_has_the_shape_docs_data_md_describes():
    zipcodes = make_zipcodes(42)
    sales = make_sales(20_000, zipcodes, 42)
    noise = np.log(sales["price"] / sales["expected_price"])
    assert 0.10 <= noise.std() <= 0.15  # about 12 % multiplicative noise
    slope = np.polyfit(np.log(sales["square_feet"]), np.log(sales["expected_price"]), 1)[0]
    assert 0.5 < slope < 1.0  # log price rises with log square feet
    assert np.corrcoef(sales["square_feet"], sales["beds"])[0, 1] > 0.5
    assert np.corrcoef(sales["square_feet"], sales["baths"])[0, 1] > 0.5
    assert sales["year_built"].between(1950, 2010).mean() > 0.8
    levels = zipcodes.groupby("state")["level"].mean()
    assert levels.max() - levels.min() > 0.3  # states differ in price level
    assert (sales["price"] > 0).all() and sales["style"].isin(schema.STYLES).all()


def test_an_unknown_size_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="must be one of tiny, workshop, full; got 'huge'"):
        generate("huge", tmp_path)


# --- readers and process ----------------------------------------------------------------------

def test_the_reader_joins_the_state_city_and_metro_of_each_zip_code(houses):
    line, raw = next(iter(open_source(houses / schema.SALES_FILE).rows()))
    zipcodes = pd.read_csv(houses / schema.ZIPCODES_FILE, dtype=str).set_index("zipcode")
    assert line == 2 and raw["state"] == zipcodes.loc[raw["zipcode"], "state"]
    assert {"city", "metro", *schema.SALES_COLUMNS} <= set(raw)


def write(folder: Path, sales: str, zipcodes: str = "zipcode,state,city,metro\n10001,CA,Alton,Belport\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / schema.ZIPCODES_FILE).write_text(zipcodes)
    (folder / schema.SALES_FILE).write_text(sales)
    return folder / schema.SALES_FILE


HEADER = ",".join(schema.SALES_COLUMNS) + "\n"
GOOD = "1,2016-01-04,10001,6000,3,2.0,1980,True,1800,False,2,ranch,False,350000\n"


def rows_of(path: Path, max_bad_rows: int = 0) -> list[dict]:
    return list(process_rows(open_source(path).rows(), str(path), max_bad_rows))


@pytest.mark.parametrize("line, message", [
    ("2,2016-01-05,99999,6000,3,2.0,1980,True,1800,False,2,ranch,False,350000\n",
     r"line 3: the zip code is not in zipcodes.csv \(column 'zipcode', value '99999'\)"),
    ("2,2016-01-05,10001,6000,3,2.0,1980,True,-5,False,2,ranch,False,350000\n",
     r"line 3: cannot parse the value \(column 'square_feet', value '-5'\). square_feet must be > 0"),
    ("2,2016-01-05,10001,6000,3,2.0,1980,True,1800,False,2,igloo,False,350000\n",
     r"line 3: .*column 'style', value 'igloo'\). style must be one of ranch"),
    ("2,2016-13-05,10001,6000,3,2.0,1980,True,1800,False,2,ranch,False,350000\n", r"line 3: .*'sale_date'"),
    ("2,2016-01-05,10001\n", r"line 3: the line has 3 fields, the header 14"),
])
def test_a_bad_sale_is_reported_with_its_file_line_and_value(tmp_path, line, message):
    path = write(tmp_path, HEADER + GOOD + line)
    with pytest.raises(DataError, match=message):
        rows_of(path)
    assert len(rows_of(path, max_bad_rows=1)) == 1  # or skipped, when allowed


def test_a_file_without_a_column_names_it_and_line_1(tmp_path):
    path = write(tmp_path, HEADER.replace(",pool", "") + GOOD)
    with pytest.raises(DataError, match="sales.csv line 1: the header lacks the column.s. pool"):
        rows_of(path)


def test_missing_files_say_how_to_generate_them(tmp_path):
    with pytest.raises(DataError, match="does not exist.*generate-data --problem houses"):
        open_source(tmp_path / "nowhere.csv")
    (tmp_path / schema.SALES_FILE).write_text(HEADER)
    with pytest.raises(DataError, match="zipcodes.csv does not exist"):
        open_source(tmp_path)


def test_process_row_types_a_sale():
    raw = dict(zip(schema.SALES_COLUMNS, GOOD.strip().split(",")), state="CA")
    row = process_row(raw)
    assert row["sale_date"] == date(2016, 1, 4) and row["zipcode"] == "10001" and row["beds"] == 3
    assert row["kitchen_refurbished"] is True and row["pool"] is False and row["price"] == 350000.0


# --- features and baseline: fitted on training rows only --------------------------------------

def frame(*rows: tuple[str, str, float]) -> pd.DataFrame:
    """Requests of (zipcode, state, square_feet); the other columns fixed."""
    return pd.DataFrame([{"zipcode": z, "state": s, "square_feet": sq, "lot_size_sf": 5000, "beds": 3, "baths": 2,
                          "year_built": 1980, "kitchen_refurbished": False, "pool": False, "parking": 1,
                          "style": "ranch", "multi_family": False} for z, s, sq in rows])


TRAIN = frame(("10001", "CA", 1500), ("10001", "CA", 1700), ("10002", "CA", 2000), ("20001", "TX", 1600))
PRICES = np.array([400_000.0, 600_000.0, 800_000.0, 200_000.0])


def test_the_baseline_is_the_zip_mean_then_the_state_mean_then_the_overall_mean():
    baseline = ZipMeanPrice().fit(TRAIN, PRICES)
    asked = frame(("10001", "CA", 1), ("10009", "CA", 1), ("90001", "ZZ", 1))
    assert baseline.predict(asked).tolist() == [500_000.0, 600_000.0, 500_000.0]


def test_price_levels_are_learned_from_the_training_rows_only_so_validation_rows_do_not_leak():
    pipeline = [HouseFeatures("default"), PriceLevels(smoothing=0)]
    rows = pipeline[0].fit(TRAIN).transform(TRAIN)
    pipeline[1].fit(rows, PRICES)
    unseen = frame(("10003", "CA", 1800))  # a zip code only validation has, whatever its price
    level = pipeline[1].transform(pipeline[0].transform(unseen))[0]
    assert level["level"] == level["state_mean"] == 600_000.0  # its state's training mean


def test_smoothing_shrinks_a_zip_with_few_sales_towards_its_state():
    levels = PriceLevels(smoothing=1.0).fit(HouseFeatures().fit(TRAIN).transform(TRAIN), PRICES)
    texas = levels.transform(HouseFeatures().fit(TRAIN).transform(frame(("20001", "TX", 1))))[0]
    overall = PRICES.mean()
    state = (200_000 + overall) / 2
    assert texas["state_mean"] == state and texas["level"] == (200_000 + state) / 2


def test_level_comes_first_and_text_columns_stay_text_for_one_hot_encoding():
    row = PriceLevels().fit(HouseFeatures().fit(TRAIN).transform(TRAIN), PRICES).transform(
        HouseFeatures().fit(TRAIN).transform(TRAIN.head(1)))[0]
    assert list(row)[:2] == ["level", "state_mean"] and row["style"] == "ranch" and row["state"] == "CA"
    assert not any(key.startswith("_") for key in row)


@pytest.mark.parametrize("name", FEATURE_SETS)
def test_each_feature_set_gives_its_columns(name):
    row = HouseFeatures(name).fit(TRAIN).transform(TRAIN.head(1))[0]
    assert set(FEATURE_SETS[name]) <= set(row)


def test_an_unknown_feature_set_names_the_choices():
    with pytest.raises(ValueError, match="feature_set must be one of default, simple(, \\w+)*; got 'fancy'"):
        HouseFeatures("fancy").fit(TRAIN)


# --- models: every one trains on houses and beats the baseline --------------------------------

@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_on_houses_and_beats_the_zip_mean(houses, model):
    trained, table = fit_and_validate(settings_for(houses, **{"model.name": model}))
    metrics = trained.metrics
    assert {"r2", "rmse", "mae", "mape", "baseline_r2", "best_r2"} <= set(metrics)
    assert metrics["baseline_r2"] < metrics["r2"] < metrics["best_r2"]
    assert (trained.predicted >= 0).all()


def test_the_simple_feature_set_and_the_hash_split_run_too(houses):
    settings = settings_for(houses, **{"features.set": "simple", "split.by": "hash"})
    trained, table = fit_and_validate(settings)
    assert trained.metrics["rows_valid"] == pytest.approx(0.2 * len(table.target), rel=0.15)
    assert "year_built" not in trained.model.named_steps["encode"].feature_names_


def test_houses_are_a_registered_problem_with_its_own_metrics():
    problem = get_problem("houses")
    assert problem.metric_names == ("r2", "rmse", "mae", "mape")
    metrics = problem.evaluate(np.array([100.0, 200.0]), np.array([110.0, 180.0]), np.ones(2))
    assert metrics["mape"] == pytest.approx(0.1) and metrics["mae"] == 15.0


def test_configs_problems_are_the_registered_ones_with_the_same_metrics():
    for name in PROBLEM_DEFAULTS:
        problem = get_problem(name)
        assert problem.name == name and problem.metric_names == PROBLEM_METRICS[name]
        assert set(problem.metric_names) <= set(HIGHER_IS_BETTER)


def test_inside_the_models_pipeline_the_levels_are_fitted_on_the_training_rows():
    from cd4ml.pipeline.run import build_model

    model = build_model(HouseFeatures(), PriceLevels(smoothing=0), "ridge", {}, seed=0).fit(TRAIN, PRICES)
    encoded = model[:-1].transform(frame(("10003", "CA", 1800), ("10001", "CA", 1800)))
    encoded = encoded.toarray() if hasattr(encoded, "toarray") else encoded
    assert model.named_steps["encode"].feature_names_[0] == "level"
    assert encoded[:, 0].tolist() == [600_000.0, 500_000.0]  # unseen zip: its state's training mean
