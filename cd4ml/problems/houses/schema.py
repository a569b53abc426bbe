"""File layouts of the houses problem (shared by the generator and the readers)."""

from __future__ import annotations

SALES_FILE = "sales.csv"
ZIPCODES_FILE = "zipcodes.csv"
EXPECTED_FILE = "expected.csv"  # written by our generator only: each sale's noise-free expected price

SALES_COLUMNS = (
    "sale_id", "sale_date", "zipcode", "lot_size_sf", "beds", "baths", "year_built", "kitchen_refurbished",
    "square_feet", "pool", "parking", "style", "multi_family", "price",
)
ZIPCODES_COLUMNS = ("zipcode", "state", "city", "metro")
EXPECTED_COLUMNS = ("sale_id", "expected_price")

STYLES = ("ranch", "colonial", "craftsman", "victorian", "contemporary", "condo")
