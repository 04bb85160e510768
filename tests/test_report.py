"""The HTML report of a ranking: its title, the Pareto plot's labels and the table, on real matplotlib output."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sse_screen.screening.report import LABEL_GAP, N_LABELS, html_report, label_heights, pareto_figure
from sse_screen.screening.table_io import write_table


def ranking(n_ranked: int = 12) -> pd.DataFrame:
    """A ranking as ``rank_candidates`` returns it: ranked rows (most at E_hull = 0, as real lists), then a
    rejected and an invalid row with missing values (pandas NA in the Int64 columns)."""
    n = n_ranked + 2
    missing = [pd.NA, pd.NA]
    return pd.DataFrame(
        {
            "input_row": np.arange(n),
            "formula": [f"Li{i + 1}PS4Cl0.{i}" for i in range(n_ranked)] + ["NaCl", "Xx2"],
            "status": ["ranked"] * n_ranked + ["rejected", "invalid"],
            "reason": [""] * n_ranked + ["contains no Li (mobile ion)", "unknown element symbol 'Xx'"],
            "score": [*np.linspace(0.9, 0.1, n_ranked), 0.3, np.nan],
            "pareto_rank": pd.array([1 + i % 3 for i in range(n_ranked)] + missing, dtype="Int64"),
            "rank": pd.array(list(range(1, n_ranked + 1)) + missing, dtype="Int64"),
            "e_hull_ev_per_atom": [0.0] * (n_ranked - 2) + [0.04, 0.06] + [0.01, np.nan],
            "e_hull_std_ev_per_atom": [0.02] * n_ranked + [0.01, np.nan],
            "log10_sigma_s_per_cm": [*np.linspace(-2.0, -2.5, n_ranked), -6.0, np.nan],
            "log10_sigma_std": [0.5] * n_ranked + [0.4, np.nan],
            "conductivity_model": ["composition"] * (n - 1) + [""],
            "duplicate_of": pd.array([pd.NA] * n, dtype=object),
            "warnings": [""] * n,
            "stability_drivers": ["a +0.1; b -0.05; c +0.01"] * n_ranked + ["", ""],
        }
    )


def test_report_is_titled_after_the_input_not_the_output(tmp_path: Path) -> None:
    out = write_table(ranking(), tmp_path / "ranked-output.html", source="lists/my_candidates.csv")
    text = out.read_text()
    assert "<title>sse-screen ranking of my_candidates.csv</title>" in text
    assert "<h1>sse-screen ranking of my_candidates.csv</h1>" in text
    assert "ranked-output" not in text
    assert "Input: <code>lists/my_candidates.csv</code>" in text


def test_missing_values_print_as_empty_cells_and_values_carry_their_std() -> None:
    text = html_report(ranking(), source="c.csv")
    invalid_row = re.search(r'<tr class="invalid">(.*?)</tr>', text).group(1)
    assert "unknown element symbol &#x27;Xx&#x27;" in invalid_row
    assert "nan" not in invalid_row.lower() and "&lt;NA&gt;" not in invalid_row
    assert '<span>0.000</span> <span class="sd">± 0.020</span>' in text
    # a column with one value for every predicted row is named once, not repeated in every row
    assert "<th" in text and ">σ model<" not in text and "Conductivity model: composition" in text


def test_table_fits_the_page_with_text_columns_wrapped() -> None:
    text = html_report(ranking(), source="c.csv")
    assert re.search(r"table \{\{?[^}]*width: 100%", text)
    assert re.search(r"td\.text, td\.formula \{\{? ?overflow-wrap: anywhere", text)
    assert '<td class="text">contains no Li (mobile ion)</td>' in text
    # the long per-row drivers have their own table instead of widening the main one
    main, drivers = text.split('<table class="ranking">')[1].split('<table class="drivers">')
    assert "a +0.1; b -0.05" not in main and "a +0.1; b -0.05" in drivers


@pytest.mark.parametrize(
    "wanted",
    [np.full(10, 0.5), np.full(10, 0.99), np.linspace(0.0, 0.05, 12), np.array([0.9, 0.1, 0.5]), np.array([0.3])],
)
def test_label_heights_keep_order_gap_and_axes(wanted: np.ndarray) -> None:
    placed = label_heights(wanted, gap=LABEL_GAP)
    assert placed.shape == wanted.shape
    assert placed.min() >= 0.02 - 1e-12 and placed.max() <= 0.98 + 1e-12
    order = np.argsort(wanted, kind="stable")
    assert np.all(np.diff(placed[order]) >= LABEL_GAP - 1e-12)


def test_pareto_labels_only_the_best_rows_and_none_overlap() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    figure = pareto_figure(ranking(n_ranked=15))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # lay out (constrained layout) as savefig does
    renderer = canvas.get_renderer()
    labels = [t for t in figure.axes[0].texts if t.get_text().startswith("#")]
    assert [t.get_text().split()[0] for t in labels] == [f"#{i}" for i in range(1, N_LABELS + 1)]
    boxes = [Text.get_window_extent(t, renderer) for t in labels]  # the text, not its leader line
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    inside = figure.axes[0].get_window_extent(renderer)
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 for b in boxes)  # no label leaves the plot


def test_report_of_a_list_without_ranked_rows() -> None:
    table = ranking().tail(2).reset_index(drop=True)
    text = html_report(table, source="bad.csv")
    assert "0 ranked, 1 rejected, 1 invalid" in text and "<svg" in text
    assert '<table class="drivers">' not in text
