"""The table `sse-screen rank` prints without -o, on rankings with pandas NA (rejected and invalid rows)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from sse_screen.screening.printed_table import WIDE_CONSOLE, format_cell, hidden_rows_note, print_ranking


def ranking() -> pd.DataFrame:
    """What ``rank_candidates`` returns for Li6PS5Cl, Xx2, NaCl: Int64 NA ranks, NaN predictions of an invalid row."""
    return pd.DataFrame(
        {
            "input_row": [0, 2, 1],
            "formula": ["Li6PS5Cl", "NaCl", "Xx2"],
            "e_hull_ev_per_atom": [0.069, 0.0, np.nan],
            "p_stable": [0.41, 0.88, np.nan],
            "band_gap_ev": [2.22, 4.7, np.nan],
            "log10_sigma_s_per_cm": [-3.29, -6.48, np.nan],
            "status": ["ranked", "rejected", "invalid"],
            "reason": ["", "contains no Li (mobile ion)", "unknown element symbol 'Xx'"],
            "duplicate_of": pd.array([pd.NA] * 3, dtype=object),
            "score": [0.51, 0.35, np.nan],
            "pareto_rank": pd.array([1, pd.NA, pd.NA], dtype="Int64"),
            "rank": pd.array([1, pd.NA, pd.NA], dtype="Int64"),
        }
    )


def printed(table: pd.DataFrame, **kwargs: object) -> str:
    out = io.StringIO()
    print_ranking(table, file=out, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize(
    ("value", "number_format", "text"),
    [
        (pd.NA, "{:d}", ""), (np.nan, "{:.2f}", ""), (None, "", ""), (float("nan"), "", ""),
        (np.int64(3), "{:d}", "3"), (np.float64(0.51234), "{:.2f}", "0.51"), (2.0, "{:d}", "2"),
        ("Li3PS4", "", "Li3PS4"), (True, "", "True"), (np.float32(-3.2), "{:.2f}", "-3.20"),
    ],
)  # fmt: skip
def test_cells(value: object, number_format: str, text: str) -> None:
    assert format_cell(value, number_format) == text


def test_rejected_and_invalid_rows_show_status_and_reason() -> None:
    text = printed(ranking(), source="lists/short.csv")
    assert "sse-screen ranking of short.csv" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert lines["1"].split()[1] == "Li6PS5Cl" and lines["1"].rstrip().endswith("ranked")
    assert "rejected: contains no Li (mobile ion)" in lines["NaCl"]
    assert "invalid: unknown element symbol 'Xx'" in lines["Xx2"]
    assert "nan" not in text.lower() and "<NA>" not in text
    assert "not shown" not in text  # every row is shown


def test_top_larger_than_the_table_prints_every_row() -> None:
    text = printed(ranking(), top=30)
    assert all(formula in text for formula in ("Li6PS5Cl", "NaCl", "Xx2"))
    assert "not shown" not in text


def test_rows_left_out_are_counted_by_status() -> None:
    text = printed(ranking(), top=1)
    assert "NaCl" not in text and "Xx2" not in text
    assert "2 more rows not shown (1 rejected, 1 invalid): --top 3 prints them all" in " ".join(text.split())
    assert hidden_rows_note(ranking(), 3) == ""


def test_an_80_column_terminal_gets_the_essential_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = printed(ranking())
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "front" not in text and "stable" not in text  # the optional columns need WIDE_CONSOLE characters
    assert "rejected: contains no Li" in " ".join(text.split())
    monkeypatch.setenv("COLUMNS", str(WIDE_CONSOLE))
    assert "front" in printed(ranking())


def test_a_ranking_without_prediction_columns() -> None:
    table = ranking()[["formula", "status", "reason"]]
    text = printed(table)
    assert "invalid: unknown element symbol 'Xx'" in text
