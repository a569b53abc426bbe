"""File layouts and fixed facts of the Favorita problem (shared by the generator and the readers)."""

from __future__ import annotations

# The Kaggle "Corporación Favorita Grocery Sales Forecasting" layout.
TRAIN_FILE = "train.csv"
ITEMS_FILE = "items.csv"
STORES_FILE = "stores.csv"
HOLIDAYS_FILE = "holidays_events.csv"
# Written by our generator only: the noise-free expected sales of every row, by id.
EXPECTED_FILE = "expected.csv"

TRAIN_COLUMNS = ("id", "date", "store_nbr", "item_nbr", "unit_sales", "onpromotion")
ITEMS_COLUMNS = ("item_nbr", "family", "class", "perishable")
STORES_COLUMNS = ("store_nbr", "city", "state", "type", "cluster")
HOLIDAYS_COLUMNS = ("date", "type", "locale", "locale_name", "description", "transferred")
EXPECTED_COLUMNS = ("id", "expected")

# The original workshop's single file: one store, one year, items already joined.
WORKSHOP_FILE = "store47-2016.csv"
WORKSHOP_STORE = 47
WORKSHOP_YEAR = 2016
WORKSHOP_COLUMNS = (
    "id", "date", "item_nbr", "unit_sales", "family", "class", "perishable",
    "year", "month", "day", "dayofweek", "days_til_end_of_data", "dayoff",
)

# The three products the workshop forecasts.
WORKSHOP_PRODUCTS = {99197: "Milk", 105574: "Cheese", 1963838: "Soap"}

# Holiday types that give people a day off (Kaggle's holidays_events.csv); "Work Day" and
# "Event" do not, and a holiday with transferred=True is celebrated on its "Transfer" day instead.
DAY_OFF_TYPES = frozenset({"Holiday", "Transfer", "Additional", "Bridge"})
