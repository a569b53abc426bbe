"""Feedback: arrived actual sales appended to the training data, so the next pipeline run learns
from them (serve -> log -> label -> retrain -> gate -> deploy).

    result = add_actuals(actuals_path, target)     # target: the configured [data] source

The actuals are a data drop in either layout (a workshop CSV or a Kaggle-layout folder), read
and checked by the problem's own readers and processing; one bad row refuses the whole drop.
Into the target:

  Kaggle folder   rows are appended to train.csv with new ids (after the largest id there);
                  products train.csv has never seen are added to items.csv, and days off of the
                  drop that the calendar lacks to holidays_events.csv (as national holidays).
  workshop file   rows are appended with all its columns (store 47 only: other stores are
                  skipped and counted); when the last date moves, days_til_end_of_data is
                  recomputed for every row, the file rewritten as a stream.

Rows already present (same date, item and store) are skipped and counted, so running the same
drop twice adds nothing. Every file is written to a temporary file beside it and renamed over
it: a crash leaves the old file or the new one, never half of one. The data fingerprint (sha256)
the pipeline logs to MLflow changes with the file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable

from cd4ml.errors import DataError
from cd4ml.problems.favorita import readers, schema
from cd4ml.problems.favorita.process import process_row
from cd4ml.problems.files import append_rows, csv_header, csv_lines, replacing

Key = tuple[str, int, int]


@dataclass(frozen=True)
class ActualRow:
    """One row of the drop: typed fields, plus unit_sales and onpromotion as written there."""

    day: date
    item_nbr: int
    store_nbr: int
    unit_sales: str
    onpromotion: str
    family: str
    klass: str
    perishable: bool
    dayoff: bool

    @property
    def key(self) -> Key:
        return (self.day.isoformat(), self.item_nbr, self.store_nbr)


@dataclass
class FeedbackResult:
    target: Path
    layout: str  # "kaggle" or "workshop"
    added: int = 0
    duplicates: int = 0  # already in the target, or twice in the drop
    other_stores: int = 0  # not store 47 (workshop file only)
    first_date: str | None = None
    last_date: str | None = None
    ids: tuple[int, int] | None = None
    recomputed_days_til_end: bool = False
    new_items: list[int] = field(default_factory=list)
    new_days_off: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.added:
            text = f"nothing new for {self.target}"
        else:
            text = (f"added {self.added:,} rows ({self.first_date} .. {self.last_date}"
                    + (f", ids {self.ids[0]}..{self.ids[1]}" if self.ids else "") + f") to {self.target}")
        text += f"; skipped {self.duplicates:,} already present"
        if self.layout == "workshop":
            text += f", {self.other_stores:,} of stores other than {schema.WORKSHOP_STORE}"
        if self.recomputed_days_til_end:
            text += f"; the data now ends {self.last_date}: days_til_end_of_data recomputed for every row"
        if self.new_items:
            text += f"; {len(self.new_items)} new product(s) added to {schema.ITEMS_FILE}"
        if self.new_days_off:
            text += f"; {len(self.new_days_off)} day(s) off added to {schema.HOLIDAYS_FILE}"
        return text


def read_actual_rows(path: Path) -> list[ActualRow]:
    """Every row of a data drop, checked; a bad row is a DataError with its file and line."""
    source = readers.open_source(Path(path))
    rows = []
    for line, raw in source.rows():
        try:
            if isinstance(raw, DataError):
                raise raw
            row = process_row(raw)
        except DataError as err:
            raise err.at(str(source.path), line) from None
        rows.append(ActualRow(
            day=row["date"], item_nbr=row["item_nbr"], store_nbr=row["store_nbr"],
            unit_sales=str(raw["unit_sales"]).strip(), onpromotion=str(raw.get("onpromotion", "")).strip(),
            family=row["family"], klass=row["class"], perishable=row["perishable"], dayoff=row["dayoff"],
        ))
    if not rows:
        raise DataError(f"{path} holds no sales rows", "Point --actuals at a data drop with sales in it.")
    return rows


@dataclass
class TargetScan:
    """What the target already holds: the keys on the drop's dates, the largest id, the last date."""

    keys: set[Key]
    max_id: int | None
    last_date: str | None
    calendar: frozenset[date]


def scan_target(path: Path, dates: set[str]) -> TargetScan:
    """One pass over the target's sales rows (through the readers)."""
    source = readers.open_source(path)
    keys: set[Key] = set()
    max_id: int | None = None
    last: str | None = None
    for _, raw in source.rows():
        if isinstance(raw, DataError):
            raise raw.at(str(source.path))
        day = str(raw["date"]).strip()
        if last is None or day > last:
            last = day
        ident = str(raw.get("id", "")).strip()
        if ident:
            try:
                number = int(ident)
            except ValueError:
                number = None
            if number is not None and (max_id is None or number > max_id):
                max_id = number
        if day in dates:
            keys.add((day, int(float(str(raw["item_nbr"]).strip())), int(float(str(raw["store_nbr"]).strip()))))
    return TargetScan(keys, max_id, last, frozenset(source.calendar or ()))


def new_rows(actuals: Iterable[ActualRow], present: set[Key], store: int | None) -> tuple[list[ActualRow], int, int]:
    """The rows to append, in date and item order: (rows, duplicates, other stores). Pure."""
    seen = set(present)
    chosen, duplicates, others = [], 0, 0
    for row in actuals:
        if store is not None and row.store_nbr != store:
            others += 1
        elif row.key in seen:
            duplicates += 1
        else:
            seen.add(row.key)
            chosen.append(row)
    chosen.sort(key=lambda r: (r.day, r.store_nbr, r.item_nbr))
    return chosen, duplicates, others


def workshop_fields(row: ActualRow, ident: int | None, last: date) -> dict[str, str]:
    """The workshop file's columns of one new row. Pure."""
    return {
        "id": "" if ident is None else str(ident), "date": row.day.isoformat(), "store_nbr": str(row.store_nbr),
        "item_nbr": str(row.item_nbr), "unit_sales": row.unit_sales, "onpromotion": row.onpromotion,
        "family": row.family, "class": row.klass, "perishable": str(int(row.perishable)),
        "year": str(row.day.year), "month": str(row.day.month), "day": str(row.day.day),
        "dayofweek": str(row.day.weekday()), "days_til_end_of_data": str((last - row.day).days),
        "dayoff": str(row.dayoff),
    }


def kaggle_fields(row: ActualRow, ident: int | None) -> dict[str, str]:
    """train.csv's columns of one new row. Pure."""
    return {"id": "" if ident is None else str(ident), "date": row.day.isoformat(), "store_nbr": str(row.store_nbr),
            "item_nbr": str(row.item_nbr), "unit_sales": row.unit_sales, "onpromotion": row.onpromotion}


def add_actuals(actuals_path: Path, target: Path) -> FeedbackResult:
    """Append the new rows of a data drop to the training data at `target` (see the module doc)."""
    target = Path(target)
    actuals = read_actual_rows(actuals_path)
    dates = {row.day.isoformat() for row in actuals}
    kaggle = target.is_dir()
    if not kaggle and not target.exists():
        raise DataError(f"the training data {target} does not exist",
                        "Generate it (generate-data) or set [data] source / --data to it.")
    scan = scan_target(target, dates)
    rows, duplicates, others = new_rows(actuals, scan.keys, None if kaggle else schema.WORKSHOP_STORE)
    result = FeedbackResult(target=target, layout="kaggle" if kaggle else "workshop",
                            duplicates=duplicates, other_stores=others)
    if not rows:
        return result
    start = (scan.max_id + 1) if scan.max_id is not None else None
    ids = [None] * len(rows) if start is None else list(range(start, start + len(rows)))
    result.added = len(rows)
    result.first_date, result.last_date = rows[0].day.isoformat(), rows[-1].day.isoformat()
    result.ids = (ids[0], ids[-1]) if start is not None else None
    if kaggle:
        _add_to_kaggle(target, rows, ids, scan, result)
    else:
        _add_to_workshop(target, rows, ids, scan, result)
    return result


def _add_to_kaggle(folder: Path, rows: list[ActualRow], ids: list[int | None], scan: TargetScan,
                   result: FeedbackResult) -> None:
    items_path = folder / schema.ITEMS_FILE
    known = _item_numbers(items_path)
    new_items: dict[int, ActualRow] = {}
    for row in rows:
        if row.item_nbr not in known and row.item_nbr not in new_items:
            new_items[row.item_nbr] = row
    if new_items:
        header = csv_header(items_path)
        append_rows(items_path, header, (
            {"item_nbr": str(r.item_nbr), "family": r.family, "class": r.klass, "perishable": str(int(r.perishable))}
            for r in new_items.values()
        ))
        result.new_items = sorted(new_items)
    days_off = sorted({r.day for r in rows if r.dayoff} - scan.calendar)
    if days_off:
        holidays = folder / schema.HOLIDAYS_FILE
        append_rows(holidays, csv_header(holidays), (
            {"date": d.isoformat(), "type": "Holiday", "locale": "National", "locale_name": "Ecuador",
             "description": "Day off (from a feedback data drop)", "transferred": "False"} for d in days_off
        ))
        result.new_days_off = [d.isoformat() for d in days_off]
    train = folder / schema.TRAIN_FILE
    append_rows(train, csv_header(train), (kaggle_fields(r, i) for r, i in zip(rows, ids)))


def _add_to_workshop(path: Path, rows: list[ActualRow], ids: list[int | None], scan: TargetScan,
                     result: FeedbackResult) -> None:
    header = csv_header(path)
    old_last = date.fromisoformat(scan.last_date) if scan.last_date else rows[-1].day
    last = max(old_last, rows[-1].day)
    fields = (workshop_fields(r, i, last) for r, i in zip(rows, ids))
    if last != old_last and "days_til_end_of_data" in header:
        _rewrite_with_days_til_end(path, header, last, fields)
        result.recomputed_days_til_end = True
    else:
        append_rows(path, header, fields)
    result.last_date = last.isoformat() if result.recomputed_days_til_end else result.last_date


# --- reading and rewriting the target's files (the writing itself: cd4ml/problems/files.py) --------

def _item_numbers(path: Path) -> set[int]:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        found = set()
        for record in csv.DictReader(f):
            try:
                found.add(int(float(str(record.get("item_nbr", "")).strip())))
            except ValueError:
                continue
        return found


def _rewrite_with_days_til_end(path: Path, header: list[str], last: date, records: Iterable[dict[str, str]]) -> None:
    """Rewrite the workshop file as a stream with days_til_end_of_data counted to the new last
    date, then append the records."""
    at_date, at_days = header.index("date"), header.index("days_til_end_of_data")
    last_ordinal = last.toordinal()
    with replacing(path) as out, path.open("rb") as original:
        out.write(original.readline())  # the header as it was (BOM included)
        text = io.TextIOWrapper(original, encoding="utf-8", newline="")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for fields in csv.reader(text):
            if not fields:
                continue
            if len(fields) == len(header):
                fields[at_days] = str(last_ordinal - date.fromisoformat(fields[at_date].strip()).toordinal())
            writer.writerow(fields)
            if buffer.tell() > (1 << 20):
                out.write(buffer.getvalue().encode("utf-8"))
                buffer.seek(0)
                buffer.truncate()
        out.write(buffer.getvalue().encode("utf-8"))
        for line in csv_lines(header, records):
            out.write(line)
