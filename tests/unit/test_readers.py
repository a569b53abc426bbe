"""Readers of both layouts: the quirks of real files, pushdown of the item filter, fingerprints."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from cd4ml.errors import DataError
from cd4ml.problems.favorita.readers import open_source

WORKSHOP_HEADER = (
    "id,date,item_nbr,unit_sales,family,class,perishable,year,month,day,dayofweek,"
    "days_til_end_of_data,dayoff"
)


def write(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def workshop_file(tmp_path: Path, **kw) -> Path:
    return write(
        tmp_path / "store47-2016.csv",
        WORKSHOP_HEADER + "\n"
        "1,2016-08-01,99197,12,DAIRY,2112,1,2016,8,1,0,152,False\n"
        "2,2016-08-01,105574,-2,DAIRY,2124,1,2016,8,1,0,152,False\n"
        '3,2016-08-01,311111,4,"LIQUOR,WINE,BEER",1316,0,2016,8,1,0,152,False\n'
        "4,2016-08-02,99197,7.5,DAIRY,2112,1,2016,8,2,1,151,True\n",
        **kw,
    )


def kaggle_dir(tmp_path: Path, train_body: str | None = None, train_header: str | None = None) -> Path:
    folder = tmp_path / "kaggle"
    folder.mkdir()
    write(
        folder / "train.csv",
        (train_header or "id,date,store_nbr,item_nbr,unit_sales,onpromotion") + "\n"
        + (
            train_body
            or "0,2013-01-01,25,99197,7,\n"
            "1,2014-04-02,47,105574,-1,False\n"
            "2,2014-04-02,47,311111,3.25,True\n"
        ),
    )
    write(
        folder / "items.csv",
        'item_nbr,family,class,perishable\n99197,DAIRY,2112,1\n105574,DAIRY,2124,1\n'
        '311111,"LIQUOR,WINE,BEER",1316,0\n',
    )
    write(folder / "stores.csv", "store_nbr,city,state,type,cluster\n47,Quito,Pichincha,A,14\n")
    write(
        folder / "holidays_events.csv",
        "date,type,locale,locale_name,description,transferred\n"
        "2013-01-01,Holiday,National,Ecuador,Primer dia del ano,False\n"
        "2014-04-02,Event,National,Ecuador,Something,False\n"
        "2014-04-03,Holiday,Local,Quito,Fundacion,False\n",
    )
    return folder


def numbered(path: Path, items=None) -> list[tuple]:
    """(line, raw row or DataError) as the reader yields them."""
    return list(open_source(path, items=items).rows())


def rows_of(path: Path, items=None) -> list[dict]:
    return [raw for _, raw in numbered(path, items)]


def lines_of(path: Path, items=None) -> list[int]:
    return [line for line, _ in numbered(path, items)]


def test_workshop_reader_yields_string_rows_with_line_numbers(tmp_path):
    rows = rows_of(workshop_file(tmp_path))
    assert lines_of(workshop_file(tmp_path)) == [2, 3, 4, 5]
    assert rows[0]["item_nbr"] == "99197" and rows[0]["unit_sales"] == "12"
    assert rows[0]["store_nbr"] == "47" and rows[0]["onpromotion"] == ""
    assert rows[2]["family"] == "LIQUOR,WINE,BEER"


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
def test_workshop_reader_takes_bom_and_crlf(tmp_path, bom, crlf):
    rows = rows_of(workshop_file(tmp_path, bom=bom, crlf=crlf))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[3]["dayoff"] == "True"  # no stray \r on the last column


def test_workshop_reader_takes_columns_in_another_order(tmp_path):
    path = write(
        tmp_path / "s.csv",
        "dayoff,unit_sales,item_nbr,date,family,class,perishable\n"
        "False,3,99197,2016-01-04,DAIRY,2112,1\n",
    )
    (row,) = rows_of(path)
    assert (row["date"], row["item_nbr"], row["unit_sales"]) == ("2016-01-04", "99197", "3")


def test_workshop_reader_takes_a_last_line_without_newline(tmp_path):
    path = write(tmp_path / "s.csv", WORKSHOP_HEADER + "\n" + "9,2016-01-04,99197,3,DAIRY,2112,1,2016,1,4,0,9,False")
    assert [r["id"] for r in rows_of(path)] == ["9"]
    assert [r["id"] for r in rows_of(path, items=frozenset({99197}))] == ["9"]


def test_item_pushdown_gives_the_same_rows_as_a_full_parse(tmp_path):
    path = workshop_file(tmp_path)
    everything = [r for r in rows_of(path) if int(r["item_nbr"]) in {99197, 311111}]
    pushed = rows_of(path, items=frozenset({99197, 311111}))
    assert pushed == everything


def test_item_pushdown_ignores_the_number_inside_other_numbers(tmp_path):
    path = write(
        tmp_path / "s.csv",
        WORKSHOP_HEADER + "\n"
        "99197,2016-01-04,5,3,DAIRY,2112,1,2016,1,4,0,9,False\n"  # the id, not the item
        "7,2016-01-04,199197,99197,DAIRY,2112,1,2016,1,4,0,9,False\n"  # a sale, not the item
        "8,2016-01-04,99197,3,DAIRY,2112,1,2016,1,4,0,9,False\n",
    )
    assert [r["id"] for r in rows_of(path, items=frozenset({99197}))] == ["8"]


def test_pushdown_across_chunk_boundaries(tmp_path, monkeypatch):
    import cd4ml.problems.favorita.readers as readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 37)  # lines straddle every chunk
    path = workshop_file(tmp_path)
    assert lines_of(path, items=frozenset({99197})) == [2, 5]
    assert lines_of(path) == [2, 3, 4, 5]


def test_reader_counts_lines_and_fingerprints_the_bytes(tmp_path):
    path = workshop_file(tmp_path)
    source = open_source(path, items=frozenset({105574}))
    rows = list(source.rows())
    assert len(rows) == 1
    assert source.stats.lines == 4
    assert source.stats.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv.*generate-data"):
        rows_of(tmp_path / "nope.csv")


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path / "s.csv", "id,date,unit_sales\n1,2016-01-01,3\n")
    with pytest.raises(DataError, match=r"s\.csv.*missing column.*item_nbr"):
        rows_of(path)


def test_a_line_with_too_few_fields_is_reported_with_its_line(tmp_path):
    path = write(tmp_path / "s.csv", WORKSHOP_HEADER + "\n1,2016-01-04,99197\n")
    ((line, bad),) = numbered(path)  # in the row's place, for process_rows to count against [data] max_bad_rows
    assert line == 2 and isinstance(bad, DataError) and bad.line == 2 and "13 fields" in str(bad)


def test_binary_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(WORKSHOP_HEADER.encode() + b"\n\xff\xfe\x00garbage\n")
    ((_, bad),) = numbered(path)
    assert isinstance(bad, DataError) and "line 2" in str(bad) and "not UTF-8" in str(bad)


def test_kaggle_reader_joins_items_and_days_off(tmp_path):
    source = open_source(kaggle_dir(tmp_path))
    rows = [raw for _, raw in source.rows()]
    assert [r["family"] for r in rows] == ["DAIRY", "DAIRY", "LIQUOR,WINE,BEER"]
    assert [r["dayoff"] for r in rows] == ["True", "False", "False"]  # Event and Local are not days off
    assert rows[0]["onpromotion"] == "" and rows[2]["onpromotion"] == "True"
    assert source.calendar == frozenset({date(2013, 1, 1)})


def test_kaggle_reader_takes_columns_in_another_order(tmp_path):
    folder = kaggle_dir(
        tmp_path,
        train_header="onpromotion,unit_sales,item_nbr,store_nbr,date,id",
        train_body="True,4,99197,47,2016-01-04,5\n",
    )
    ((_, row),) = list(open_source(folder).rows())
    assert (row["id"], row["store_nbr"], row["onpromotion"]) == ("5", "47", "True")


def test_kaggle_reader_reports_an_item_missing_from_items_csv(tmp_path):
    folder = kaggle_dir(tmp_path, train_body="0,2016-01-04,47,123,1,False\n")
    with pytest.raises(DataError, match=r"train\.csv line 2.*item_nbr.*123.*items\.csv"):
        list(open_source(folder).rows())


def test_kaggle_folder_without_items_csv_says_which_file_is_missing(tmp_path):
    folder = kaggle_dir(tmp_path)
    (folder / "items.csv").unlink()
    with pytest.raises(DataError, match=r"items\.csv"):
        open_source(folder)


def test_kaggle_fingerprint_covers_every_file(tmp_path):
    folder = kaggle_dir(tmp_path)
    first = open_source(folder)
    list(first.rows())
    (folder / "items.csv").write_text("item_nbr,family,class,perishable\n99197,DAIRY,1,1\n105574,DAIRY,1,1\n311111,X,1,0\n")
    second = open_source(folder)
    list(second.rows())
    assert first.stats.sha256 != second.stats.sha256
