"""process: typing and cleaning raw rows; filter: keeping the chosen stores and items."""

from __future__ import annotations

from datetime import date

import pytest

from cd4ml.errors import DataError
from cd4ml.problems.favorita.process import filter_rows, process_row, process_rows


def raw(**changes) -> dict:
    row = {
        "id": "7", "date": "2016-08-01", "store_nbr": "47", "item_nbr": "99197",
        "unit_sales": "12", "onpromotion": "False", "family": "DAIRY", "class": "2112",
        "perishable": "1", "dayoff": "False",
    }
    row.update(changes)
    return row


def test_process_row_types_every_field():
    row = process_row(raw())
    assert row == {
        "id": 7, "date": date(2016, 8, 1), "store_nbr": 47, "item_nbr": 99197,
        "unit_sales": 12.0, "onpromotion": False, "family": "DAIRY", "class": "2112",
        "perishable": True, "dayoff": False,
    }


def test_process_row_clips_returns_to_zero():
    assert process_row(raw(unit_sales="-3"))["unit_sales"] == 0.0


def test_process_row_keeps_fractional_kilograms():
    assert process_row(raw(unit_sales="1.234"))["unit_sales"] == pytest.approx(1.234)


@pytest.mark.parametrize("text, expected", [("", False), ("True", True), ("False", False), ("1", True), ("0", False), ("true", True)])
def test_process_row_reads_onpromotion_with_empty_as_false(text, expected):
    assert process_row(raw(onpromotion=text))["onpromotion"] is expected


def test_process_row_takes_an_empty_id():
    assert process_row(raw(id=""))["id"] is None


@pytest.mark.parametrize(
    "column, value",
    [("date", "2016-13-01"), ("date", ""), ("item_nbr", "milk"), ("unit_sales", "ten"),
     ("unit_sales", "nan"), ("dayoff", "maybe"), ("perishable", "2"), ("store_nbr", "1.5x")],
)
def test_process_row_names_the_column_and_value_it_cannot_parse(column, value):
    with pytest.raises(DataError) as caught:
        process_row(raw(**{column: value}))
    assert caught.value.column == column and caught.value.value == value


def test_process_rows_locates_a_bad_row_by_file_and_line():
    rows = [(2, raw()), (9, raw(unit_sales="ten"))]
    with pytest.raises(DataError, match=r"train\.csv line 9.*unit_sales.*'ten'"):
        list(process_rows(rows, source="train.csv"))


def test_process_rows_skips_bad_rows_only_when_allowed_and_counts_them():
    bad = []
    rows = [(2, raw()), (3, raw(unit_sales="x")), (4, raw())]
    kept = list(process_rows(rows, source="s.csv", max_bad_rows=1, on_bad=bad.append))
    assert len(kept) == 2 and [e.line for e in bad] == [3]


def test_process_rows_fails_when_bad_rows_exceed_the_threshold():
    rows = [(n, raw(unit_sales="x")) for n in (2, 3)]
    with pytest.raises(DataError, match=r"more than 1 bad row"):
        list(process_rows(rows, source="s.csv", max_bad_rows=1))


def test_process_rows_is_lazy():
    def endless():
        while True:
            yield 2, raw()
    stream = process_rows(endless(), source="s.csv")
    assert next(stream)["item_nbr"] == 99197


def test_filter_rows_keeps_the_chosen_items_and_stores():
    rows = [process_row(raw(item_nbr=str(i), store_nbr=str(s))) for i in (1, 2) for s in (10, 20)]
    kept = list(filter_rows(rows, items=frozenset({2}), stores=frozenset({10})))
    assert [(r["item_nbr"], r["store_nbr"]) for r in kept] == [(2, 10)]


def test_filter_rows_with_no_selection_keeps_everything():
    rows = [process_row(raw(item_nbr=str(i))) for i in (1, 2, 3)]
    assert list(filter_rows(rows, items=None, stores=None)) == rows


def test_process_rows_counts_a_line_the_reader_could_not_read_as_a_bad_row():
    unreadable = DataError("the line has 3 fields, the header 13")
    bad = []
    kept = list(process_rows([(2, raw()), (3, unreadable)], source="s.csv", max_bad_rows=1, on_bad=bad.append))
    assert len(kept) == 1 and [(e.path, e.line) for e in bad] == [("s.csv", 3)]
