"""Reading candidate files and writing result tables, with real files on disk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sse_screen.screening.table_io import InputError, neutralise_csv_cells, read_candidates, write_table


def test_csv_keeps_rows_order_columns_and_sodium_nitride(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("name,formula\na,Li3PS4\nb,NaN\nc,\nd, Li2S \n")
    table = read_candidates(path)
    assert list(table.columns) == ["formula", "name"]
    assert table["formula"].tolist() == ["Li3PS4", "NaN", "", "Li2S"]
    assert table["name"].tolist() == ["a", "b", "c", "d"]


def test_tsv_parquet_and_named_formula_column(tmp_path: Path) -> None:
    tsv = tmp_path / "c.tsv"
    tsv.write_text("comp\tid\nLi3N\t1\nLiF\t2\n")
    assert read_candidates(tsv, formula_column="comp")["formula"].tolist() == ["Li3N", "LiF"]
    pq = tmp_path / "c.parquet"
    pd.DataFrame({"formula": ["Li3N", None], "x": [1.0, 2.0]}).to_parquet(pq)
    table = read_candidates(pq)
    assert table["formula"].tolist() == ["Li3N", ""]
    assert table["x"].tolist() == [1.0, 2.0]


def test_txt_one_formula_per_line_keeps_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("Li3PS4\n\nLiF\n\n\n")
    assert read_candidates(path)["formula"].tolist() == ["Li3PS4", "", "LiF"]


@pytest.mark.parametrize("header", ["formula", "Formula", " FORMULA "])
def test_txt_header_line_is_not_a_candidate(tmp_path: Path, header: str) -> None:
    path = tmp_path / "c.txt"
    path.write_text(f"{header}\nLi3PS4\n\nLiF\n")
    assert read_candidates(path)["formula"].tolist() == ["Li3PS4", "", "LiF"]
    named = tmp_path / "named.txt"
    named.write_text("composition\nLi3PS4\n")
    assert read_candidates(named, formula_column="composition")["formula"].tolist() == ["Li3PS4"]
    only = tmp_path / "only.txt"
    only.write_text("formula\n\n")
    with pytest.raises(InputError, match="holds no formulas"):
        read_candidates(only)


def test_html_report_is_titled_after_the_source(tmp_path: Path) -> None:
    table = pd.DataFrame({"formula": ["Li3PS4"], "status": ["ranked"], "reason": [""]})
    text = write_table(table, tmp_path / "out.html", source="inputs/screen_2024.csv").read_text()
    assert "<title>sse-screen ranking of screen_2024.csv</title>" in text
    assert "<h1>sse-screen ranking of screen_2024.csv</h1>" in text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty"),
        ("blank.txt", b"\n \n", "empty"),
        ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        ("latin1.csv", "formula\nLi2S\nÅ\n".encode("latin-1"), "not UTF-8"),
        ("nocol.csv", b"name,comp\na,Li2S\n", "no 'formula' column"),
        ("header.csv", b"formula\n", "no rows"),
        ("bad.parquet", b"not parquet at all", "Parquet"),
        ("c.xlsx", b"whatever", "unsupported file type"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_candidates(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_candidates(tmp_path / "nope.csv")


def test_csv_cells_a_spreadsheet_would_execute_are_neutralised(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {"formula": ['=HYPERLINK("x")', "+1", "@SUM(A1)", "\tcmd", "Li3PS4"], "value": [-1.0, 2.0, 3.0, 4.0, 5.0]}
    )
    safe = neutralise_csv_cells(table)
    assert safe["formula"].tolist() == ['\'=HYPERLINK("x")', "'+1", "'@SUM(A1)", "'\tcmd", "Li3PS4"]
    assert safe["value"].tolist() == [-1.0, 2.0, 3.0, 4.0, 5.0]
    out = write_table(table, tmp_path / "r.csv")
    assert pd.read_csv(out, keep_default_na=False)["formula"][0] == '\'=HYPERLINK("x")'


def test_write_parquet_and_json_roundtrip(tmp_path: Path) -> None:
    table = pd.DataFrame({"formula": ["=1"], "v": [1.5]})
    assert pd.read_parquet(write_table(table, tmp_path / "r.parquet"))["formula"][0] == "=1"
    assert pd.read_json(write_table(table, tmp_path / "r.json"))["v"][0] == 1.5
    with pytest.raises(InputError, match="unsupported output type"):
        write_table(table, tmp_path / "r.xlsx")
    with pytest.raises(InputError, match="does not exist"):
        write_table(table, tmp_path / "missing" / "r.csv")
