"""Features: one row's model inputs, and the SalesFeatures transformer that carries them."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sklearn.base import clone

from cd4ml.problems.favorita.features import SalesFeatures, build_catalogue, feature_row, is_payday

CATALOGUE = {99197: {"name": "Milk", "family": "DAIRY", "class": "2112", "perishable": True}}


def test_feature_row_describes_the_day_and_the_product():
    features = feature_row(
        {"date": date(2016, 8, 15), "item_nbr": 99197, "store_nbr": 47, "onpromotion": True},
        CATALOGUE, frozenset({date(2016, 8, 15)}),
    )
    assert features == {
        "item_nbr": "99197", "store_nbr": "47", "family": "DAIRY", "class": "2112",
        "perishable": 1.0, "dayofweek": "Mon", "month": 8.0, "day": 15.0, "dayofyear": 228.0,
        "payday": 1.0, "dayoff": 1.0, "onpromotion": 1.0,
    }


def test_feature_row_takes_iso_dates_and_missing_promotion():
    features = feature_row({"date": "2016-08-02", "item_nbr": 99197, "store_nbr": 47}, CATALOGUE, frozenset())
    assert (features["dayofweek"], features["dayoff"], features["onpromotion"]) == ("Tue", 0.0, 0.0)


def test_feature_row_of_an_unknown_item_has_no_catalogue_facts():
    features = feature_row({"date": "2016-08-02", "item_nbr": 1, "store_nbr": 47}, CATALOGUE, frozenset())
    assert (features["family"], features["perishable"]) == ("", 0.0)


@pytest.mark.parametrize(
    "day, expected",
    [(date(2016, 1, 15), True), (date(2016, 1, 31), True), (date(2016, 2, 29), True),
     (date(2015, 2, 28), True), (date(2016, 2, 28), False), (date(2016, 1, 14), False)],
)
def test_is_payday_on_the_15th_and_the_last_day_of_the_month(day, expected):
    assert is_payday(day) is expected


def test_build_catalogue_names_the_workshop_products():
    rows = [
        {"item_nbr": 99197, "family": "DAIRY", "class": "2112", "perishable": True},
        {"item_nbr": 5, "family": "CLEANING", "class": "1", "perishable": False},
    ]
    catalogue = build_catalogue(rows, {99197: "Milk"})
    assert catalogue[99197]["name"] == "Milk"
    assert catalogue[5] == {"name": "Item 5 (CLEANING)", "family": "CLEANING", "class": "1", "perishable": False}


def test_sales_features_gives_the_same_features_for_frames_and_dicts():
    transformer = SalesFeatures(catalogue=CATALOGUE, calendar=("2016-08-15",)).fit(None)
    rows = [{"date": "2016-08-15", "item_nbr": 99197, "store_nbr": 47, "onpromotion": False}]
    assert list(transformer.transform(pd.DataFrame(rows))) == list(transformer.transform(rows))


def test_sales_features_is_a_proper_sklearn_estimator():
    transformer = SalesFeatures(catalogue=CATALOGUE, calendar=("2016-08-15",))
    copy = clone(transformer)
    assert copy.get_params() == transformer.get_params()
