"""Deterministic synthetic Favorita data: Kaggle's file layout plus the workshop's single file.

The expected sales of item i in store s on date d (docs/data.md has the full story):

    λ = base[i] · store_factor[s] · WEEKLY[weekday(d)] · yearly(d)
          · HOLIDAY_LIFT  if d is a day off
          · PAYDAY_LIFT   if d is the 15th or the last day of its month
          · PROMO_LIFT    if (s, i, d) is on promotion (probability P_PROMO)

    yearly(d) = (1 + SEASON_AMPLITUDE · sin(2π (dayofyear − 80) / 365.25))
                · DECEMBER_LIFT  from December 15 to 31

Unit items sell Poisson(λ) units; by-weight items Gamma(GAMMA_SHAPE, λ / GAMMA_SHAPE) kg rounded
to grams. With probability P_RETURN a cell is a return instead: −1..−3 units or −0.5..−2 kg.
Cells without a sale are not written, as in Kaggle's train.csv, so expected.csv holds
E[max(sales, 0) | the row is present]:

    unit items       (1 − P_RETURN) · λ / (P_RETURN + (1 − P_RETURN) · (1 − e^−λ))
    by-weight items  (1 − P_RETURN) · λ

Every date draws from its own stream `default_rng([seed, date.toordinal()])` and the catalogue
from fixed streams, so the same seed and size give byte-identical files, and two date ranges give
the same rows on the dates they share. Files are written in one pass over dates, one block of
(store, item) cells per date, encoded to CSV text with Arrow compute kernels.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cd4ml.errors import ConfigError
from cd4ml.problems.favorita import schema

# --- the generating process -------------------------------------------------------------------
WEEKLY = (0.85, 0.80, 0.85, 0.90, 1.05, 1.30, 1.25)  # Monday .. Sunday; averages 1
SEASON_AMPLITUDE = 0.15
DECEMBER_LIFT = 1.3  # from December 15 to 31
HOLIDAY_LIFT = 1.4
PAYDAY_LIFT = 1.25  # the 15th and the last day of each month
PROMO_LIFT = 1.6
P_PROMO = 0.08
P_RETURN = 0.003
GAMMA_SHAPE = 4.0
UNIT_RETURN = (1, 3)  # units, uniform integers
WEIGHT_RETURN = (0.5, 2.0)  # kg, uniform, rounded to grams
PROMO_RECORDED_FROM = date(2014, 4, 1)  # Kaggle's onpromotion is empty before this date

# --- the catalogue ----------------------------------------------------------------------------
N_STORES = 54
STORE_FACTOR_SIGMA = 0.4  # log-sd of the store factor; median 1
STORE47_FACTOR = 1.8  # a big Quito store
ASSORTMENT = 0.68  # chance that a store other than 47 carries an item
UNIT_BASE = (0.4, 1.5)  # median units a day and log-sd, at a store of factor 1
WEIGHT_BASE = (3.0, 0.8)  # median kg a day and log-sd
ITEM_RANGE = (96995, 2134244)  # Kaggle's item numbers
AVERAGE_LIFT = 1.09  # the yearly mean of the date and promotion factors of λ (2013..2017)
# The workshop's products: family, class and average units sold a day in store 47.
WORKSHOP_ITEMS = {
    99197: ("DAIRY", 2112, 40.0),  # Milk
    105574: ("DAIRY", 2124, 12.0),  # Cheese
    1963838: ("CLEANING", 3034, 6.0),  # Soap
}
# Kaggle's families: name, items in Kaggle's items.csv (the draw weight) and the first class number.
# A catalogue gets one item of each family in this order before drawing the rest by weight.
FAMILIES = (
    ("GROCERY I", 1334, 1000), ("BEVERAGES", 613, 1100), ("PRODUCE", 306, 2000),
    ("CLEANING", 446, 3000), ("DAIRY", 242, 2100), ("BREAD/BAKERY", 134, 2700),
    ("POULTRY", 54, 2400), ("MEATS", 84, 2300), ("PERSONAL CARE", 153, 4100),
    ("DELI", 91, 2600), ("EGGS", 41, 2500), ("SEAFOOD", 8, 2800), ("FROZEN FOODS", 55, 2200),
    ("HOME CARE", 108, 3100), ("LIQUOR,WINE,BEER", 73, 1300), ("HOME AND KITCHEN I", 77, 6000),
    ("HOME AND KITCHEN II", 45, 6300), ("PREPARED FOODS", 26, 2900), ("CELEBRATION", 31, 4400),
    ("LAWN AND GARDEN", 26, 4600), ("AUTOMOTIVE", 20, 6800), ("LINGERIE", 20, 4000),
    ("BEAUTY", 19, 4200), ("PLAYERS AND ELECTRONICS", 17, 4500), ("GROCERY II", 14, 1200),
    ("SCHOOL AND OFFICE SUPPLIES", 15, 4300), ("PET SUPPLIES", 14, 3200), ("MAGAZINES", 6, 4700),
    ("HARDWARE", 4, 6900), ("BABY CARE", 1, 3400), ("BOOKS", 1, 4800),
)
CLASSES_PER_FAMILY = 50  # class = first class + 2·k, k uniform in 0..49
PERISHABLE_FAMILIES = frozenset(
    {"PRODUCE", "MEATS", "POULTRY", "SEAFOOD", "DELI", "DAIRY", "BREAD/BAKERY", "EGGS"}
)
BY_WEIGHT_FAMILIES = frozenset({"PRODUCE", "MEATS", "POULTRY", "SEAFOOD", "DELI"})
# Ecuadorian cities with their province and Kaggle's count of stores; store 47 is in Quito.
CITIES = (
    ("Quito", "Pichincha", 18), ("Guayaquil", "Guayas", 8), ("Cuenca", "Azuay", 3),
    ("Santo Domingo", "Santo Domingo de los Tsachilas", 3), ("Manta", "Manabi", 2),
    ("Latacunga", "Cotopaxi", 2), ("Machala", "El Oro", 2), ("Ambato", "Tungurahua", 2),
    ("Riobamba", "Chimborazo", 1), ("Loja", "Loja", 1), ("Ibarra", "Imbabura", 1),
    ("Babahoyo", "Los Rios", 1), ("Quevedo", "Los Rios", 1), ("Esmeraldas", "Esmeraldas", 1),
    ("Daule", "Guayas", 1), ("Libertad", "Guayas", 1), ("Salinas", "Santa Elena", 1),
    ("Playas", "Guayas", 1), ("Cayambe", "Pichincha", 1), ("El Carmen", "Manabi", 1),
    ("Puyo", "Pastaza", 1), ("Guaranda", "Bolivar", 1),
)
STORE_TYPES = (("A", 9), ("B", 8), ("C", 15), ("D", 18), ("E", 4))  # type, Kaggle's count
N_CLUSTERS = 17
STORE_47 = ("Quito", "Pichincha", "A", 14)
# Random streams of the catalogue; each date uses its ordinal (> 700,000) instead.
ITEMS_STREAM, STORES_STREAM, ASSORTMENT_STREAM = 1, 2, 3


@dataclass(frozen=True)
class SizeSpec:
    """What to generate: the stores, the number of items and the dates (both ends included)."""

    name: str
    stores: tuple[int, ...]
    n_items: int
    start: date
    end: date

    def __post_init__(self) -> None:
        if not self.stores or not set(self.stores) <= set(range(1, N_STORES + 1)):
            raise ConfigError(
                f"stores must be store numbers in 1..{N_STORES}; got {self.stores!r}."
            )
        if not len(WORKSHOP_ITEMS) <= self.n_items <= 100_000:
            raise ConfigError(
                f"n_items must be between {len(WORKSHOP_ITEMS)} (the workshop products) "
                f"and 100000; got {self.n_items!r}."
            )
        if self.start > self.end:
            raise ConfigError(f"start must not be after end; got {self.start} > {self.end}.")


SIZES = {
    "tiny": SizeSpec("tiny", (44, 47), 20, date(2015, 1, 1), date(2016, 12, 31)),
    "workshop": SizeSpec("workshop", (47,), 4000, date(2016, 1, 1), date(2016, 12, 31)),
    "full": SizeSpec(
        "full", tuple(range(1, N_STORES + 1)), 4000, date(2013, 1, 1), date(2017, 8, 15)
    ),
}


# --- holidays ---------------------------------------------------------------------------------

class Holiday(NamedTuple):
    """One row of holidays_events.csv."""

    date: date
    type: str
    locale: str
    locale_name: str
    description: str
    transferred: bool


def easter_sunday(year: int) -> date:
    """Easter Sunday by the anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 (the algorithm's own name)
    m = (a + 11 * h + 19 * l) // 433
    month = (h + l - 7 * m + 90) // 25
    return date(year, month, (h + l - 7 * m + 33 * month + 19) % 32)


def _national(day: date, kind: str, description: str, transferred: bool = False) -> Holiday:
    """A nationwide row."""
    return Holiday(day, kind, "National", "Ecuador", description, transferred)


def _year_holidays(year: int) -> list[Holiday]:
    """Ecuador's national holidays of one year, plus rows that are not days off."""
    easter = easter_sunday(year)
    grito, cuenca = date(year, 8, 10), date(year, 11, 3)
    first_friday = date(year, 11, 1) + timedelta((4 - date(year, 11, 1).weekday()) % 7)
    grito_moves = grito.weekday() in (1, 2, 3)  # Tue..Thu: celebrated on the Friday after
    rows = [
        _national(date(year, 1, 1), "Holiday", "Primer dia del ano"),
        _national(easter - timedelta(48), "Holiday", "Carnaval"),
        _national(easter - timedelta(47), "Holiday", "Carnaval"),
        _national(easter - timedelta(2), "Holiday", "Viernes Santo"),
        _national(date(year, 5, 1), "Holiday", "Dia del Trabajo"),
        _national(date(year, 5, 24), "Holiday", "Batalla de Pichincha"),
        _national(grito, "Holiday", "Primer Grito de Independencia", transferred=grito_moves),
        _national(date(year, 10, 9), "Holiday", "Independencia de Guayaquil"),
        _national(date(year, 11, 2), "Holiday", "Dia de Difuntos"),
        _national(cuenca, "Holiday", "Independencia de Cuenca"),
        _national(first_friday + timedelta(21), "Event", "Black Friday"),
        Holiday(date(year, 12, 6), "Holiday", "Local", "Quito", "Fundacion de Quito", False),
        _national(date(year, 12, 25), "Holiday", "Navidad"),
    ]
    if grito_moves:
        friday = grito + timedelta(4 - grito.weekday())
        rows.append(_national(friday, "Transfer", "Traslado Primer Grito de Independencia"))
    if cuenca.weekday() == 3:  # Thursday: Friday is a bridge, worked back a week later on Saturday
        rows.append(_national(cuenca + timedelta(1), "Bridge", "Puente Dia de Difuntos"))
        rows.append(_national(cuenca + timedelta(9), "Work Day", "Recupero Puente Dia de Difuntos"))
    return rows


def holidays_events(start: date, end: date) -> list[Holiday]:
    """The rows of holidays_events.csv between start and end (inclusive), by date."""
    rows = [
        row for year in range(start.year, end.year + 1)
        for row in _year_holidays(year) if start <= row.date <= end
    ]
    return sorted(rows, key=lambda row: row.date)


def is_day_off(row: Holiday) -> bool:
    """Whether a row gives the whole country a day off."""
    return row.locale == "National" and row.type in schema.DAY_OFF_TYPES and not row.transferred


def day_off_dates(start: date, end: date) -> frozenset[date]:
    """The days off that holidays_events.csv describes between start and end (inclusive)."""
    return frozenset(row.date for row in holidays_events(start, end) if is_day_off(row))


# --- the catalogue ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Items:
    """The item catalogue, sorted by item number; base is the daily rate at a store of factor 1."""

    nbr: np.ndarray
    family: tuple[str, ...]
    klass: np.ndarray
    perishable: np.ndarray
    by_weight: np.ndarray
    base: np.ndarray


class Store(NamedTuple):
    """One row of stores.csv, with the store's demand factor."""

    nbr: int
    city: str
    state: str
    type: str
    cluster: int
    factor: float


@dataclass(frozen=True)
class Cells:
    """The (store, item) pairs that are stocked, in file order: by store, then item."""

    store: np.ndarray
    item: np.ndarray  # index into Items
    base: np.ndarray  # base[item] · store_factor[store]
    by_weight: np.ndarray


def _draw_families(rng: np.random.Generator, n: int) -> list[str]:
    """One item of each family in FAMILIES order, then by Kaggle's weights; shuffled."""
    names = [name for name, _, _ in FAMILIES]
    weights = np.array([weight for _, weight, _ in FAMILIES], dtype=float)
    extra = rng.choice(len(names), size=max(n - len(names), 0), p=weights / weights.sum())
    families = names[:n] + [names[k] for k in extra]
    return [families[k] for k in rng.permutation(n)]


def _item_bases(rng: np.random.Generator, by_weight: np.ndarray) -> np.ndarray:
    """Lognormal daily rates at a store of factor 1: units, or kg for by-weight items."""
    z = rng.standard_normal(len(by_weight))
    (unit_median, unit_sigma), (kg_median, kg_sigma) = UNIT_BASE, WEIGHT_BASE
    kilos, units = kg_median * np.exp(kg_sigma * z), unit_median * np.exp(unit_sigma * z)
    return np.where(by_weight, kilos, units)


def make_items(n_items: int, seed: int) -> Items:
    """n_items items: the workshop products and others drawn from the seed."""
    rng = np.random.default_rng([seed, ITEMS_STREAM])
    n_other = n_items - len(WORKSHOP_ITEMS)
    low, high = ITEM_RANGE
    drawn = low + rng.choice(high - low + 1, size=n_items, replace=False)
    numbers = [int(n) for n in drawn if n not in WORKSHOP_ITEMS][:n_other]
    families = _draw_families(rng, n_other)
    first_class = {name: first for name, _, first in FAMILIES}
    steps = rng.integers(0, CLASSES_PER_FAMILY, size=n_other)
    classes = [first_class[family] + 2 * int(k) for family, k in zip(families, steps)]
    by_weight = np.array([family in BY_WEIGHT_FAMILIES for family in families], dtype=bool)
    bases = _item_bases(rng, by_weight)
    rows = list(zip(numbers, families, classes, bases.tolist()))
    rows += [
        (nbr, family, klass, average / (STORE47_FACTOR * AVERAGE_LIFT))
        for nbr, (family, klass, average) in WORKSHOP_ITEMS.items()
    ]
    numbers, families, classes, bases = zip(*sorted(rows))
    return Items(
        nbr=np.array(numbers, dtype=np.int64),
        family=families,
        klass=np.array(classes, dtype=np.int64),
        perishable=np.array([family in PERISHABLE_FAMILIES for family in families], dtype=bool),
        by_weight=np.array([family in BY_WEIGHT_FAMILIES for family in families], dtype=bool),
        base=np.array(bases),
    )


def make_stores(seed: int) -> list[Store]:
    """All N_STORES stores, drawn from the seed; store 47 is fixed."""
    rng = np.random.default_rng([seed, STORES_STREAM])
    places = [(city, state) for city, state, count in CITIES for _ in range(count)]
    places.remove(STORE_47[:2])
    places = [places[k] for k in rng.permutation(len(places))]
    types, counts = zip(*STORE_TYPES)
    kinds = rng.choice(types, size=N_STORES, p=np.array(counts) / sum(counts))
    clusters = rng.integers(1, N_CLUSTERS + 1, size=N_STORES)
    factors = np.exp(STORE_FACTOR_SIGMA * rng.standard_normal(N_STORES))
    stores = []
    for nbr in range(1, N_STORES + 1):
        if nbr == schema.WORKSHOP_STORE:
            stores.append(Store(nbr, *STORE_47, STORE47_FACTOR))
            continue
        city, state = places.pop()
        k = nbr - 1
        stores.append(Store(nbr, city, state, str(kinds[k]), int(clusters[k]), float(factors[k])))
    return stores


def make_cells(stores: Sequence[Store], items: Items, seed: int) -> Cells:
    """The stocked cells: store 47 stocks every item, others each with probability ASSORTMENT."""
    rng = np.random.default_rng([seed, ASSORTMENT_STREAM])
    stocked = rng.random((N_STORES, len(items.nbr))) < ASSORTMENT
    stocked[schema.WORKSHOP_STORE - 1] = True
    stocked[:, np.isin(items.nbr, list(WORKSHOP_ITEMS))] = True
    per_store = [np.flatnonzero(stocked[store.nbr - 1]) for store in stores]
    item = np.concatenate(per_store)
    factor = np.repeat([store.factor for store in stores], [len(k) for k in per_store])
    return Cells(
        store=np.repeat([store.nbr for store in stores], [len(k) for k in per_store]),
        item=item,
        base=items.base[item] * factor,
        by_weight=items.by_weight[item],
    )


# --- one day's sales --------------------------------------------------------------------------

@dataclass(frozen=True)
class DaySales:
    """One date's draws for every cell: sales is 0 where no row is written."""

    promo: np.ndarray
    sales: np.ndarray
    expected: np.ndarray


@dataclass(frozen=True)
class Process:
    """How the generating process may differ from the one above, to test models on data unlike
    ours (docs/data.md, "Other processes"); the defaults are the process above.

    season_amplitude: of the yearly wave.
    trend: yearly growth of every rate, λ · (1 + trend) ** (years since the first date).
    dispersion: extra-Poisson noise, λ · Gamma(1/dispersion, dispersion) per cell and date (mean 1,
        variance dispersion), so unit sales are negative binomial; 0: none.
    """

    season_amplitude: float = SEASON_AMPLITUDE
    trend: float = 0.0
    dispersion: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.season_amplitude < 1:
            raise ConfigError(f"season_amplitude must be in [0, 1); got {self.season_amplitude!r}.")
        if not -1 < self.trend <= 10:
            raise ConfigError(f"trend must be in (-1, 10]; got {self.trend!r}.")
        if not 0 <= self.dispersion <= 10:
            raise ConfigError(f"dispersion must be in [0, 10]; got {self.dispersion!r}.")


DEFAULT_PROCESS = Process()


def yearly(day: date, amplitude: float = SEASON_AMPLITUDE) -> float:
    """The seasonal factor: a smooth yearly wave and the December lift."""
    wave = 1 + amplitude * math.sin(2 * math.pi * (day.timetuple().tm_yday - 80) / 365.25)
    return wave * (DECEMBER_LIFT if day.month == 12 and day.day >= 15 else 1.0)


def is_payday(day: date) -> bool:
    """The 15th or the last day of the month."""
    return day.day == 15 or (day + timedelta(1)).month != day.month


def day_factor(day: date, day_off: bool, amplitude: float = SEASON_AMPLITUDE) -> float:
    """The part of λ that depends on the date only (besides a trend)."""
    return (
        WEEKLY[day.weekday()] * yearly(day, amplitude)
        * (HOLIDAY_LIFT if day_off else 1.0)
        * (PAYDAY_LIFT if is_payday(day) else 1.0)
    )


def expected_sales(lam: np.ndarray, by_weight: np.ndarray, dispersion: float = 0.0) -> np.ndarray:
    """E[max(sales, 0) | a row is written], for each cell's λ (negative binomial unit sales
    when dispersion > 0: P(0) = (1 + dispersion · λ) ** (−1 / dispersion))."""
    kept = 1 - P_RETURN
    log_zero = -lam if dispersion == 0 else -np.log1p(dispersion * lam) / dispersion  # log P(0 units)
    written = P_RETURN - kept * np.expm1(log_zero)
    return np.where(by_weight, kept * lam, kept * lam / written)


def simulate_day(
    cells: Cells, day: date, day_off: bool, seed: int, process: Process = DEFAULT_PROCESS, years: float = 0.0,
) -> DaySales:
    """Draw one date's promotions, sales and returns from its own random stream (years: since
    the first date, for the trend)."""
    rng = np.random.default_rng([seed, day.toordinal()])
    n = len(cells.base)
    promo = rng.random(n) < P_PROMO
    lam = (cells.base * day_factor(day, day_off, process.season_amplitude) * np.where(promo, PROMO_LIFT, 1.0)
           * (1 + process.trend) ** years)
    sales = np.empty(n)
    unit = ~cells.by_weight
    # the extra noise is drawn from a stream of its own, so the default process keeps its draws
    noisy = lam if process.dispersion == 0 else lam * np.random.default_rng([seed, day.toordinal(), 1]).gamma(
        1 / process.dispersion, process.dispersion, size=n)
    sales[unit] = rng.poisson(noisy[unit])
    sales[cells.by_weight] = np.round(rng.gamma(GAMMA_SHAPE, noisy[cells.by_weight] / GAMMA_SHAPE), 3)
    returned = np.flatnonzero(rng.random(n) < P_RETURN)
    units = rng.integers(UNIT_RETURN[0], UNIT_RETURN[1] + 1, size=len(returned))
    kilos = np.round(rng.uniform(*WEIGHT_RETURN, size=len(returned)), 3)
    sales[returned] = -np.where(cells.by_weight[returned], kilos, units)
    return DaySales(promo=promo, sales=sales, expected=expected_sales(lam, cells.by_weight, process.dispersion))


# --- CSV encoding -----------------------------------------------------------------------------

def _int_text(values: np.ndarray) -> pa.Array:
    """Integers as text."""
    return pc.cast(pa.array(values, type=pa.int64()), pa.string())


def _fixed_text(values: np.ndarray, places: int) -> pa.Array:
    """Floats as text with exactly `places` decimals (correctly rounded)."""
    return pc.cast(pc.cast(pa.array(values), pa.decimal128(18, places)), pa.string())


def _csv_field(value: object) -> str:
    """One CSV field, quoted when it needs to be."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([value])
    return out.getvalue()


def _sales_text(sales: np.ndarray, by_weight: np.ndarray) -> pa.Array:
    """unit_sales as written: whole units, or kilograms with three decimals."""
    return pc.if_else(pa.array(by_weight), _fixed_text(sales, 3), _int_text(sales.astype(np.int64)))


@dataclass(frozen=True)
class CellText:
    """The text of each cell's store, item and, for the workshop file, item columns."""

    store: pa.Array
    item: pa.Array
    item_columns: pa.Array  # "family,class,perishable"

    @classmethod
    def of(cls, cells: Cells, items: Items) -> CellText:
        """Encode once, take per date."""
        columns = pa.array([
            f"{_csv_field(family)},{klass},{int(perishable)}"
            for family, klass, perishable in zip(items.family, items.klass, items.perishable)
        ])
        return cls(
            store=_int_text(cells.store),
            item=_int_text(items.nbr).take(cells.item),
            item_columns=columns.take(cells.item),
        )


# --- writing ----------------------------------------------------------------------------------

def _write_table(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A small CSV file, quoted where needed."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def _open_csv(stack: ExitStack, path: Path, columns: Sequence[str]) -> BinaryIO:
    """A CSV file open for appending blocks, its header written."""
    out = stack.enter_context(path.open("wb"))
    out.write((",".join(columns) + "\n").encode())
    return out


def _write_block(out: BinaryIO, *columns: pa.Array | str) -> None:
    """Append one line per row of the encoded columns (a str repeats down the column)."""
    lines = pc.binary_join_element_wise(*columns, ",")
    if len(lines):
        as_one_list = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
        out.write(pc.binary_join(as_one_list, "\n")[0].as_buffer())
        out.write(b"\n")


def _workshop_days(spec: SizeSpec) -> tuple[date, date] | None:
    """The first and last date of the workshop file, or None when the spec has none of it."""
    first = max(spec.start, date(schema.WORKSHOP_YEAR, 1, 1))
    last = min(spec.end, date(schema.WORKSHOP_YEAR, 12, 31))
    return (first, last) if schema.WORKSHOP_STORE in spec.stores and first <= last else None


def _dates(start: date, end: date) -> Iterator[date]:
    """Every date from start to end, inclusive."""
    for offset in range((end - start).days + 1):
        yield start + timedelta(offset)


def _write_workshop_block(
    out: BinaryIO, day: date, last: date, day_off: bool, ids: pa.Array, item: pa.Array,
    units: pa.Array, item_columns: pa.Array,
) -> None:
    """Append one date of store 47 to the workshop file, with its calendar columns."""
    calendar = f"{day.year},{day.month},{day.day},{day.weekday()},{(last - day).days},{day_off}"
    _write_block(out, ids, day.isoformat(), item, units, item_columns, calendar)


def _write_sales(
    spec: SizeSpec,
    cells: Cells,
    text: CellText,
    seed: int,
    out_dir: Path,
    on_progress: Callable[[int], object] | None,
    process: Process = DEFAULT_PROCESS,
    only: frozenset[date] | None = None,
) -> tuple[int, int]:
    """Stream train.csv, expected.csv and the workshop file, one date at a time; count rows.
    only: write these dates alone (each date's sales are its own draws: the same as in the full set)."""
    days_off = day_off_dates(spec.start, spec.end)
    workshop_days = _workshop_days(spec) if only is None else None
    workshop_path = out_dir / schema.WORKSHOP_FILE
    workshop_path.unlink(missing_ok=True)  # never leave a stale one beside a new train.csv
    in_store_47 = cells.store == schema.WORKSHOP_STORE
    rows = workshop_rows = 0
    with ExitStack() as stack:
        train = _open_csv(stack, out_dir / schema.TRAIN_FILE, schema.TRAIN_COLUMNS)
        expected = _open_csv(stack, out_dir / schema.EXPECTED_FILE, schema.EXPECTED_COLUMNS)
        workshop = (
            _open_csv(stack, workshop_path, schema.WORKSHOP_COLUMNS) if workshop_days else None
        )
        for day in _dates(spec.start, spec.end):
            if only is not None and day not in only:
                continue
            sales = simulate_day(cells, day, day in days_off, seed, process, (day - spec.start).days / 365.25)
            written = np.flatnonzero(sales.sales)
            ids = _int_text(np.arange(rows, rows + len(written)))
            item = text.item.take(written)
            units = _sales_text(sales.sales[written], cells.by_weight[written])
            promo = (
                pc.if_else(pa.array(sales.promo[written]), "True", "False")
                if day >= PROMO_RECORDED_FROM else ""
            )
            _write_block(train, ids, day.isoformat(), text.store.take(written), item, units, promo)
            _write_block(expected, ids, _fixed_text(sales.expected[written], 4))
            if workshop is not None and workshop_days[0] <= day <= workshop_days[1]:
                mine = np.flatnonzero(in_store_47[written])
                _write_workshop_block(
                    workshop, day, workshop_days[1], day in days_off, ids.take(mine),
                    item.take(mine), units.take(mine), text.item_columns.take(written[mine]),
                )
                workshop_rows += len(mine)
            rows += len(written)
            if on_progress is not None:
                on_progress(rows)
    return rows, workshop_rows


def _size_spec(size: str | SizeSpec) -> SizeSpec:
    """The spec of a named size (or the spec itself)."""
    if isinstance(size, SizeSpec):
        return size
    if size not in SIZES:
        raise ConfigError(
            f"size must be one of {', '.join(SIZES)}; got {size!r}.",
            hint="tiny is for tests, workshop is store 47 in 2016, full is Kaggle-sized.",
        )
    return SIZES[size]


def generate_days(size: str, days: Collection[date], out_dir: Path, seed: int = 42) -> dict:
    """The actual sales of these dates (e.g. the days a model forecast), in the Kaggle layout, from the
    process of `size` and `seed`: what that data set has, or would have had, on those days."""
    if not days:
        raise ConfigError("there are no dates to write the sales of.", "Ask the model server for forecasts first.")
    spec = _size_spec(size)
    spec = SizeSpec(f"{spec.name}-days", spec.stores, spec.n_items, min(days), max(days))
    return generate(spec, out_dir, seed, only=frozenset(days))


def generate(
    size: str | SizeSpec,
    out_dir: Path,
    seed: int = 42,
    on_progress: Callable[[int], object] | None = None,
    process: Process = DEFAULT_PROCESS,
    only: frozenset[date] | None = None,
) -> dict:
    """Write the synthetic data set of a size (or a custom SizeSpec) into out_dir; summarise it.

    on_progress, if given, is called with the number of train.csv rows written after each date.
    process: a generating process other than the default one (for tests of unlike data).
    only: the sales of these dates alone, without the workshop file (generate_days).
    """
    spec = _size_spec(size)
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = make_items(spec.n_items, seed)
    stores = [store for store in make_stores(seed) if store.nbr in spec.stores]
    cells = make_cells(stores, items, seed)
    _write_table(
        out_dir / schema.ITEMS_FILE, schema.ITEMS_COLUMNS,
        zip(items.nbr.tolist(), items.family, items.klass.tolist(), items.perishable.astype(int)),
    )
    _write_table(out_dir / schema.STORES_FILE, schema.STORES_COLUMNS, [s[:5] for s in stores])
    _write_table(
        out_dir / schema.HOLIDAYS_FILE, schema.HOLIDAYS_COLUMNS,
        [
            (row.date.isoformat(), *row[1:5], str(row.transferred))
            for row in holidays_events(spec.start, spec.end)
        ],
    )
    text = CellText.of(cells, items)
    rows, workshop_rows = _write_sales(spec, cells, text, seed, out_dir, on_progress, process, only)
    return {
        "size": spec.name,
        "out_dir": str(out_dir),
        "rows": rows,
        "workshop_rows": workshop_rows,
        "dates": (spec.end - spec.start).days + 1 if only is None else len(only),
        "stores": len(stores),
        "items": len(items.nbr),
        "seconds": round(time.perf_counter() - started, 3),
    }
