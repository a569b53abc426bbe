"""Feedback: arrived actuals appended to the training data in either layout, duplicates skipped and
counted, files replaced whole or not at all."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from cd4ml.errors import DataError
from cd4ml.problems import files
from cd4ml.problems.favorita.feedback import add_actuals
from cd4ml.problems.favorita import readers, schema
from cd4ml.problems.favorita.generate import SizeSpec, generate
from cd4ml.problems.favorita.process import process_rows

JANUARY = SizeSpec("january", (44, 47), 5, date(2016, 1, 1), date(2016, 1, 31))
FEBRUARY = SizeSpec("february", (44, 47), 5, date(2016, 2, 1), date(2016, 2, 7))


@pytest.fixture(scope="module")
def drops(tmp_path_factory) -> dict[str, Path]:
    """Training data for January and a data drop of the first week of February (same catalogue)."""
    folder = tmp_path_factory.mktemp("drops")
    generate(JANUARY, folder / "january", seed=42)
    generate(FEBRUARY, folder / "february", seed=42)
    return {"january": folder / "january", "february": folder / "february"}


def copy(source: Path, to: Path) -> Path:
    import shutil

    if source.is_dir():
        shutil.copytree(source, to)
    else:
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, to)
    return to


def records(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_workshop_file_gets_the_rows_of_store_47_with_every_column(drops, tmp_path):
    target = copy(drops["january"] / schema.WORKSHOP_FILE, tmp_path / "store47-2016.csv")
    before = records(target)
    drop = records(drops["february"] / schema.TRAIN_FILE)
    result = add_actuals(drops["february"], target)

    after = records(target)
    ours = [r for r in drop if r["store_nbr"] == "47"]
    assert result.added == len(ours) == len(after) - len(before) > 0
    assert result.other_stores == len(drop) - len(ours) and result.duplicates == 0
    assert (result.first_date, result.last_date) == ("2016-02-01", "2016-02-07")
    last_id = max(int(r["id"]) for r in before)
    assert [int(r["id"]) for r in after[len(before):]] == list(range(last_id + 1, last_id + 1 + len(ours)))
    # every row, old and new, counts its days to the new end of the data
    assert result.recomputed_days_til_end
    for row in after:
        assert int(row["days_til_end_of_data"]) == (date(2016, 2, 7) - date.fromisoformat(row["date"])).days
    new = after[len(before)]
    day = date.fromisoformat(new["date"])
    assert (new["year"], new["month"], new["day"], new["dayofweek"]) == ("2016", "2", str(day.day), str(day.weekday()))
    assert new["family"] and new["class"] and new["perishable"] in ("0", "1") and new["dayoff"] in ("True", "False")
    assert {k: v for k, v in after[0].items() if k != "days_til_end_of_data"} == \
        {k: v for k, v in before[0].items() if k != "days_til_end_of_data"}
    # and it reads back as training data
    source = readers.open_source(target)
    assert len(list(process_rows(source.rows(), str(target)))) == len(after)


def test_the_same_drop_twice_adds_nothing(drops, tmp_path):
    target = copy(drops["january"] / schema.WORKSHOP_FILE, tmp_path / "store47-2016.csv")
    first = add_actuals(drops["february"], target)
    content = target.read_bytes()
    again = add_actuals(drops["february"], target)
    assert again.added == 0 and again.duplicates == first.added
    assert str(again).startswith(f"nothing new for {target}; skipped {first.added:,} already present")
    assert target.read_bytes() == content


def test_a_kaggle_folder_gets_train_rows_with_new_ids(drops, tmp_path):
    target = copy(drops["january"], tmp_path / "kaggle")
    before = records(target / schema.TRAIN_FILE)
    drop = records(drops["february"] / schema.TRAIN_FILE)
    result = add_actuals(drops["february"], target)
    after = records(target / schema.TRAIN_FILE)
    assert result.added == len(drop) == len(after) - len(before) and result.layout == "kaggle"
    assert [int(r["id"]) for r in after[len(before):]] == list(range(len(before), len(before) + len(drop)))
    strip = lambda r: (r["date"], r["store_nbr"], r["item_nbr"], r["unit_sales"], r["onpromotion"])  # noqa: E731
    assert sorted(map(strip, after[len(before):])) == sorted(map(strip, drop))
    assert result.new_items == []
    assert readers.open_source(target).calendar >= readers.open_source(drops["february"]).calendar


def test_a_new_product_and_a_new_day_off_reach_items_and_holidays(drops, tmp_path):
    target = copy(drops["january"], tmp_path / "kaggle")
    drop = tmp_path / "drop.csv"
    drop.write_text(",".join(schema.WORKSHOP_COLUMNS) + "\n"
                    "7,2016-02-10,555,4,BEVERAGES,1120,0,2016,2,10,2,0,True\n")
    result = add_actuals(drop, target)
    assert result.added == 1 and result.new_items == [555] and result.new_days_off == ["2016-02-10"]
    assert records(target / schema.ITEMS_FILE)[-1] == {"item_nbr": "555", "family": "BEVERAGES", "class": "1120",
                                                       "perishable": "0"}
    assert date(2016, 2, 10) in readers.open_source(target).calendar
    assert records(target / schema.TRAIN_FILE)[-1]["store_nbr"] == "47"


def test_rows_already_in_the_training_data_are_skipped_and_counted(drops, tmp_path):
    target = copy(drops["january"] / schema.WORKSHOP_FILE, tmp_path / "store47-2016.csv")
    overlap = tmp_path / "overlap.csv"
    rows = records(target)
    with overlap.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[-3:])  # already there
        writer.writerow({**rows[-1], "date": "2016-02-01", "id": "1"})  # new
        writer.writerow({**rows[-1], "date": "2016-02-01", "id": "2"})  # twice in the drop
    result = add_actuals(overlap, target)
    assert (result.added, result.duplicates) == (1, 4)


def test_a_bad_row_in_the_drop_refuses_it_all_and_leaves_the_data_as_it_was(drops, tmp_path):
    target = copy(drops["january"] / schema.WORKSHOP_FILE, tmp_path / "data" / "store47-2016.csv")
    content = target.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(schema.WORKSHOP_COLUMNS) + "\n"
                   "1,2016-02-01,99197,3,DAIRY,2112,1,2016,2,1,0,0,False\n"
                   "2,2016-02-01,105574,three,DAIRY,2124,1,2016,2,1,0,0,False\n")
    with pytest.raises(DataError, match=r"bad.csv line 3: cannot parse the value \(column 'unit_sales', value 'three'\)"):
        add_actuals(bad, target)
    assert target.read_bytes() == content
    assert sorted(p.name for p in target.parent.iterdir()) == ["store47-2016.csv"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_one(drops, tmp_path, monkeypatch):
    target = copy(drops["january"] / schema.WORKSHOP_FILE, tmp_path / "data" / "store47-2016.csv")
    content = target.read_bytes()

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)  # the atomic write (cd4ml/problems/files.py)
    with pytest.raises(OSError, match="No space left"):
        add_actuals(drops["february"], target)
    assert target.read_bytes() == content
    assert sorted(p.name for p in target.parent.iterdir()) == ["store47-2016.csv"]


def test_a_missing_target_says_how_to_make_one(drops, tmp_path):
    with pytest.raises(DataError, match="the training data .*nothing.csv does not exist"):
        add_actuals(drops["february"], tmp_path / "nothing.csv")
