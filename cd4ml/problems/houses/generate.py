"""Deterministic synthetic house sales: sales.csv, its zip-code table and each sale's expected price.

The price of a sale (docs/data.md, "The houses data", has the whole story):

    log price = level[zip] + SQFT_ELASTICITY · log(square_feet / 1800) + effects(house) + ε,
    ε ~ Normal(0, NOISE_SIGMA)                     (about 12 % multiplicative noise)
    level[zip] = level[state] + offset[metro] + offset[zip]   (each Normal: a log-normal price level)

Beds and baths grow with the square feet; year built is mostly Normal(1982, 15) within 1950-2010,
the rest spread over 1890-2024. expected.csv holds E[price | house] = exp(μ + NOISE_SIGMA² / 2),
so a run reports the best achievable score. The zip-code table comes from its own random stream,
so every size shares it; the same seed and size give byte-identical files.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from cd4ml.errors import ConfigError
from cd4ml.problems.houses import schema

SIZES = {"tiny": 2_000, "workshop": 100_000, "full": 1_000_000}  # sales rows
FIRST_DAY, DAYS = date(2016, 1, 1), 731  # two years of sales

STATES = ("CA", "TX", "NY", "FL", "WA", "IL", "CO", "GA")
WARM_STATES = frozenset({"CA", "TX", "FL", "GA"})  # more pools
STATE_LEVEL = (np.log(300_000), 0.30)  # mean and sd of log price level of a 1800 sq ft house
METRO_SD, ZIP_SD = 0.20, 0.12
METROS_PER_STATE, CITIES_PER_METRO, ZIPS_PER_CITY = (2, 4), (2, 4), (2, 6)  # uniform integer ranges
NOISE_SIGMA = 0.12
SQFT_ELASTICITY = 0.72
STYLE_PROBABILITY = (0.25, 0.20, 0.15, 0.08, 0.12, 0.20)  # of schema.STYLES
STYLE_EFFECT = {"ranch": 0.0, "colonial": 0.05, "craftsman": 0.04, "victorian": 0.08, "contemporary": 0.10,
                "condo": -0.15}
EFFECTS = {"per_bath": 0.04, "per_bed_over_size": 0.02, "per_year_of_age": -0.002, "historic": 0.10,
           "kitchen": 0.06, "pool": 0.05, "per_parking_space": 0.03, "multi_family": -0.05, "lot": 0.05}

_SYLLABLES = ("al", "bel", "cor", "dun", "el", "fair", "glen", "har", "ing", "kel", "lin", "mar", "nor", "oak",
              "pen", "ros", "sil", "tor", "val", "wood")
_SUFFIXES = ("ton", "ville", "field", "burg", "dale", "port", "wood", " Springs", " Falls", " Park")


def _name(rng: np.random.Generator) -> str:
    return ("".join(rng.choice(_SYLLABLES, 2)) + rng.choice(_SUFFIXES)).title()


def make_zipcodes(seed: int) -> pd.DataFrame:
    """The zip-code table (zipcode, state, city, metro) and each zip's log price level (`level`)."""
    rng = np.random.default_rng([seed, 1])
    rows = []
    for s, state in enumerate(STATES):
        state_level = rng.normal(*STATE_LEVEL)
        for _ in range(rng.integers(METROS_PER_STATE[0], METROS_PER_STATE[1] + 1)):
            metro, metro_level = _name(rng), state_level + rng.normal(0, METRO_SD)
            for _ in range(rng.integers(CITIES_PER_METRO[0], CITIES_PER_METRO[1] + 1)):
                city = _name(rng)
                for _ in range(rng.integers(ZIPS_PER_CITY[0], ZIPS_PER_CITY[1] + 1)):
                    rows.append((f"{(s + 1) * 10000 + len(rows):05d}", state, city, metro,
                                 metro_level + rng.normal(0, ZIP_SD)))
    return pd.DataFrame(rows, columns=[*schema.ZIPCODES_COLUMNS, "level"])


def make_sales(n: int, zipcodes: pd.DataFrame, seed: int) -> pd.DataFrame:
    """n sales in date order, with their price and noise-free expected price (`expected_price`)."""
    rng = np.random.default_rng([seed, 2])
    where = rng.integers(0, len(zipcodes), n)
    zips = zipcodes.iloc[where].reset_index(drop=True)
    style = rng.choice(schema.STYLES, n, p=STYLE_PROBABILITY)
    condo = style == "condo"
    sqft = np.clip(np.round(np.exp(rng.normal(np.log(1800), 0.35, n)) * np.where(condo, 0.6, 1.0), -1), 400, 9000)
    beds = np.clip(np.round(sqft / 550 + rng.normal(0, 0.7, n)), 1, 7).astype(int)
    baths = np.clip(np.round(2 * (0.5 + sqft / 1000 + rng.normal(0, 0.35, n))) / 2, 1, 6)
    mostly = rng.random(n) < 0.85
    year = np.where(mostly, np.clip(np.round(rng.normal(1982, 15, n)), 1950, 2010),
                    rng.integers(1890, 2025, n)).astype(int)
    multi = ~condo & (rng.random(n) < 0.08)
    lot = np.round(np.exp(rng.normal(np.log(6500), 0.5, n)) * np.where(condo, 0.0, 1.0) * np.where(multi, 1.5, 1.0), -1)
    kitchen = rng.random(n) < np.where(year < 1990, 0.35, 0.15)
    pool = rng.random(n) < np.where(zips["state"].isin(WARM_STATES), 0.25, 0.05) * np.where(condo, 0.2, 1.0)
    parking = np.where(condo, rng.integers(0, 2, n), rng.choice(4, n, p=(0.1, 0.35, 0.4, 0.15)))
    mu = log_price({"square_feet": sqft, "beds": beds, "baths": baths, "year_built": year, "kitchen_refurbished": kitchen,
                    "pool": pool, "parking": parking, "multi_family": multi, "lot_size_sf": lot, "style": style},
                   zips["level"].to_numpy())
    price = sale_prices(mu, rng.normal(0, NOISE_SIGMA, n))
    days = np.sort(rng.integers(0, DAYS, n))
    return pd.DataFrame({
        "sale_id": np.arange(1, n + 1),
        "sale_date": [(FIRST_DAY + timedelta(days=int(d))).isoformat() for d in days],
        "zipcode": zips["zipcode"], "lot_size_sf": lot.astype(int), "beds": beds, "baths": baths,
        "year_built": year, "kitchen_refurbished": kitchen, "square_feet": sqft.astype(int), "pool": pool,
        "parking": parking, "style": style, "multi_family": multi, "price": price.astype(int),
        "expected_price": expected_prices(mu),
    })


def log_price(houses: Mapping[str, Any], level: np.ndarray) -> np.ndarray:
    """μ, the mean log price of each house (columns of the sales layout: square_feet, beds, baths,
    year_built, kitchen_refurbished, pool, parking, multi_family, lot_size_sf, style) in its zip
    code's log price `level`. Pure: the generator's price model, also for actual sales of requests."""
    sqft, beds, baths, year = (np.asarray(houses[c]) for c in ("square_feet", "beds", "baths", "year_built"))
    kitchen, pool, multi = (np.asarray(houses[c], dtype=bool) for c in ("kitchen_refurbished", "pool", "multi_family"))
    parking, lot, style = (np.asarray(houses[c]) for c in ("parking", "lot_size_sf", "style"))
    e = EFFECTS
    return (np.asarray(level) + SQFT_ELASTICITY * np.log(sqft / 1800) + e["per_bath"] * (baths - 2)
            + e["per_bed_over_size"] * (beds - sqft / 550) + e["per_year_of_age"] * (2016 - year)
            + e["historic"] * (year < 1920) + e["kitchen"] * kitchen + e["pool"] * pool
            + e["per_parking_space"] * parking + e["multi_family"] * multi
            + e["lot"] * np.log1p(lot / 6500) + np.vectorize(STYLE_EFFECT.get)(style))


def sale_prices(mu: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Sale prices in whole hundreds of dollars: exp(μ + ε), ε drawn from Normal(0, NOISE_SIGMA)."""
    return np.round(np.exp(mu + noise), -2)


def expected_prices(mu: np.ndarray) -> np.ndarray:
    """The noise-free expected price E[exp(μ + ε)] = exp(μ + NOISE_SIGMA² / 2), to the cent."""
    return np.round(np.exp(mu + NOISE_SIGMA**2 / 2), 2)


def generate(size: str | int, out_dir: Path, seed: int = 42) -> dict:
    """Write sales.csv, zipcodes.csv and expected.csv of a size ("tiny", "workshop", "full", or a
    number of sales) into out_dir; summarise them."""
    if isinstance(size, str) and size not in SIZES:
        raise ConfigError(f"houses data --size must be one of {', '.join(SIZES)}; got {size!r}.")
    started = time.perf_counter()
    n = SIZES[size] if isinstance(size, str) else int(size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    zipcodes = make_zipcodes(seed)
    sales = make_sales(n, zipcodes, seed)
    zipcodes[list(schema.ZIPCODES_COLUMNS)].to_csv(out_dir / schema.ZIPCODES_FILE, index=False)
    sales[list(schema.SALES_COLUMNS)].to_csv(out_dir / schema.SALES_FILE, index=False)
    sales[list(schema.EXPECTED_COLUMNS)].to_csv(out_dir / schema.EXPECTED_FILE, index=False)
    return {"size": str(size), "out_dir": str(out_dir), "rows": n, "zipcodes": len(zipcodes),
            "seconds": round(time.perf_counter() - started, 3)}
