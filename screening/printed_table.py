"""The ranking as ``sse-screen rank`` prints it without ``-o``: the first rows, and why the others are not there.

Every output row has a status (ranked, rejected, invalid). The printed table shows the first ``top`` rows of the
ranked output in its order (ranked rows by rank, then rejected, then invalid rows, each with its reason), so a short
list shows every row. When rows are left out, the caption counts them by status and says how to see them. Missing
values (pandas ``NA``, ``NaN``, ``None``: e.g. the rank of a rejected row, the predictions of an invalid one) print as
empty cells.
"""

from __future__ import annotations

import numbers
import os
import sys
from pathlib import Path
from typing import TextIO

import pandas as pd

#: Rows printed when ``--top`` is not given.
DEFAULT_PRINTED_ROWS = 20
#: Console width used when stdout is a file or a pipe and ``COLUMNS`` is not set (rich would assume 80).
PIPED_WIDTH = 120
#: Columns printed only when the console is at least this wide (characters), so 80 columns stay readable.
WIDE_CONSOLE = 100
#: Column -> (header, format of a number) of the printed table, in order (columns absent from the table are skipped).
PRINTED_COLUMNS: dict[str, tuple[str, str]] = {
    "rank": ("rank", "{:d}"),
    "formula": ("formula", ""),
    "score": ("score", "{:.2f}"),
    "pareto_rank": ("front", "{:d}"),
    "e_hull_ev_per_atom": ("E_hull\neV/atom", "{:.3f}"),
    "p_stable": ("p\nstable", "{:.2f}"),
    "log10_sigma_s_per_cm": ("log10 σ\nS/cm", "{:.2f}"),
    "band_gap_ev": ("gap\neV", "{:.2f}"),
    "status": ("status: reason", ""),
}
WIDE_ONLY_COLUMNS = ("pareto_rank", "p_stable")
STATUSES = ("ranked", "rejected", "invalid")


def format_cell(value: object, number_format: str = "") -> str:
    """One cell as text: empty for a missing value (``pd.NA``, ``NaN``, ``None``), numbers with ``number_format``."""
    if value is None or value is pd.NA or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if number_format and isinstance(value, numbers.Real) and not isinstance(value, bool):  # numpy numbers too
        return number_format.format(int(value) if number_format.endswith("d}") else float(value))
    return str(value)


def hidden_rows_note(ranked: pd.DataFrame, n_shown: int) -> str:
    """The caption under a table that shows the first ``n_shown`` rows: which rows are not shown and how to see them.

    Empty when every row is shown.
    """
    hidden = ranked.iloc[n_shown:]
    if hidden.empty:
        return ""
    counts = hidden["status"].value_counts()
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s, 0))
    return (
        f"{len(hidden)} more rows not shown ({parts}): --top {len(ranked)} prints them all, "
        "-o FILE writes every row with its reason"
    )


def status_cell(status: object, reason: object) -> str:
    """``ranked``, or the status and why: ``rejected: contains no Li (mobile ion)``."""
    status, reason = format_cell(status), format_cell(reason)
    return f"{status}: {reason}" if reason and status != "ranked" else status


def print_ranking(
    ranked: pd.DataFrame, *, top: int | None = None, source: str | Path = "", file: TextIO | None = None
) -> None:
    """Print the first rows of a ranking (the output of ``rank_candidates``) as a table.

    Args:
        ranked: The ranked table, in output order, with at least ``formula`` and ``status`` columns (``reason``
            is shown after the status of rows that are not ranked).
        top: Rows to print (:data:`DEFAULT_PRINTED_ROWS` when None); more than the table holds prints them all.
        source: Input file, named in the title.
        file: Where to print (stdout when None).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = file or sys.stdout
    console = Console(file=out)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(file=out, width=PIPED_WIDTH)
    shown = ranked.head(DEFAULT_PRINTED_ROWS if top is None else top)
    name = Path(source).name if source else ""
    table = Table(
        title=f"sse-screen ranking of {name}" if name else "sse-screen ranking",
        caption=hidden_rows_note(ranked, len(shown)) or None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    columns = [
        c for c in PRINTED_COLUMNS
        if c in ranked.columns and (console.width >= WIDE_CONSOLE or c not in WIDE_ONLY_COLUMNS)
    ]  # fmt: skip
    for column in columns:
        header, number_format = PRINTED_COLUMNS[column]
        if column == "status":
            table.add_column(header, overflow="fold", min_width=16)
        elif column == "formula":
            table.add_column(header, overflow="fold", min_width=10, max_width=24)
        else:
            table.add_column(header, justify="right" if number_format else "left", no_wrap=True)
    reasons = shown["reason"] if "reason" in shown.columns else pd.Series("", index=shown.index)
    for row, reason in zip(shown[columns].itertuples(index=False), reasons, strict=True):
        values = dict(zip(columns, row, strict=True))
        table.add_row(
            *(
                status_cell(values[c], reason) if c == "status" else format_cell(values[c], PRINTED_COLUMNS[c][1])
                for c in columns
            )
        )
    console.print(table)
