"""Feedback: a drop of arrived actual house sales appended to the training sales, so the next
pipeline run learns from them (serve -> log -> label -> retrain -> gate -> deploy).

    result = add_actuals(drop, target)   # drop: a folder (or sales.csv) with zipcodes.csv beside it,
                                         # e.g. generate-data --problem houses --actuals-for EVENTS;
                                         # target: the configured [data] source

The drop is read and checked by the houses readers and processing: one bad row refuses the whole
drop, and nothing is written. Sales are keyed by sale_id: one the target (or the drop, before it)
already holds is skipped and counted, so the same drop twice adds nothing. zipcodes.csv stays
consistent: a zip code the target's table lacks is added from the drop's; one the drop puts in
another state than the target's table is refused. When both have expected.csv, the new sales'
expected prices are appended too, so runs keep reporting the best achievable score. Every file
is replaced atomically (cd4ml/problems/files.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cd4ml.errors import DataError
from cd4ml.problems.files import append_rows, csv_header
from cd4ml.problems.houses import readers, schema
from cd4ml.problems.houses.process import process_row


@dataclass(frozen=True)
class ActualSale:
    sale_id: str  # as the join key writes it
    sale_date: str
    zipcode: str
    place: dict[str, str]  # state, city, metro (from the drop's zipcodes.csv)
    fields: dict[str, str]  # the sales columns as written in the drop


@dataclass
class FeedbackResult:
    target: Path
    added: int = 0
    duplicates: int = 0  # already in the target, or twice in the drop
    first_date: str | None = None
    last_date: str | None = None
    new_zipcodes: list[str] = field(default_factory=list)
    expected: int = 0  # expected prices appended to expected.csv

    def __str__(self) -> str:
        text = (f"added {self.added:,} sales ({self.first_date} .. {self.last_date}) to {self.target}"
                if self.added else f"nothing new for {self.target}")
        text += f"; skipped {self.duplicates:,} sale id(s) already present"
        if self.new_zipcodes:
            text += f"; {len(self.new_zipcodes)} new zip code(s) added to {schema.ZIPCODES_FILE}"
        return text


def read_drop(path: Path) -> list[ActualSale]:
    """Every sale of the drop, checked; a bad row is a DataError with its file and line."""
    source = readers.open_source(Path(path))
    sales = []
    for line, raw in source.rows():
        try:
            if isinstance(raw, DataError):
                raise raw
            row = process_row(raw)
        except DataError as err:
            raise err.at(str(source.path), line) from None
        sales.append(ActualSale(
            sale_id=str(row["sale_id"]), sale_date=row["sale_date"].isoformat(), zipcode=str(row["zipcode"]),
            place={k: str(raw[k]).strip() for k in ("state", "city", "metro")},
            fields={c: str(raw[c]).strip() for c in schema.SALES_COLUMNS},
        ))
    if not sales:
        raise DataError(f"{source.path} holds no sales", "Point --actuals at a drop of actual sales "
                        "(generate-data --problem houses --actuals-for EVENTS writes one).")
    return sales


def new_sales(drop: list[ActualSale], present: set[str]) -> tuple[list[ActualSale], int]:
    """The sales to append, in date and sale_id order, and how many were skipped. Pure."""
    seen, chosen = set(present), []
    for sale in drop:
        if sale.sale_id not in seen:
            seen.add(sale.sale_id)
            chosen.append(sale)
    chosen.sort(key=lambda s: (s.sale_date, int(s.sale_id)))
    return chosen, len(drop) - len(chosen)


def new_places(sales: list[ActualSale], known: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The zip codes of these sales that `known` lacks; a DataError when one is in another state. Pure."""
    found: dict[str, dict[str, str]] = {}
    for sale in sales:
        place = known.get(sale.zipcode)
        if place is None:
            found.setdefault(sale.zipcode, sale.place)
        elif place["state"] != sale.place["state"]:
            raise DataError(f"zip code {sale.zipcode} is in {sale.place['state']} in the drop but in {place['state']} "
                            f"in the training data's {schema.ZIPCODES_FILE}",
                            "Fix the drop's zipcodes.csv, or write the drop with the training data's seed.")
    return found


def add_actuals(drop_path: Path, target: Path) -> FeedbackResult:
    """Append the new sales of a drop to the training sales at `target` (see the module doc)."""
    sales_path = readers.open_source(Path(target)).path  # a missing file or zip-code table says how to make it
    drop = readers.open_source(Path(drop_path))
    zipcodes_path = sales_path.parent / schema.ZIPCODES_FILE
    actual = read_drop(drop.path)
    rows, duplicates = new_sales(actual, readers.read_sale_ids(sales_path))
    result = FeedbackResult(target=sales_path, duplicates=duplicates)
    if not rows:
        return result
    places = new_places(rows, readers.read_zipcodes(zipcodes_path.read_bytes(), zipcodes_path))
    drop_expected = readers.read_expected_rows(drop.path.parent / schema.EXPECTED_FILE)
    expected_path = sales_path.parent / schema.EXPECTED_FILE
    expected = [{"sale_id": s.sale_id, "expected_price": drop_expected[s.sale_id]}
                for s in rows if s.sale_id in drop_expected] if expected_path.is_file() else []
    # Checked: now write, the zip codes first, so no sale is ever without its place.
    if places:
        append_rows(zipcodes_path, csv_header(zipcodes_path), ({"zipcode": z, **p} for z, p in places.items()))
    append_rows(sales_path, csv_header(sales_path), (s.fields for s in rows))
    if expected:
        append_rows(expected_path, csv_header(expected_path), expected)
    result.added, result.first_date, result.last_date = len(rows), rows[0].sale_date, rows[-1].sale_date
    result.new_zipcodes, result.expected = sorted(places), len(expected)
    return result
