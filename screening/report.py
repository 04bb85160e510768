"""A self-contained HTML report of a ranking: the ranked table and a Pareto plot, no internet assets."""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime

import numpy as np
import pandas as pd

#: Columns shown in the report's table, in order (those present).
REPORT_COLUMNS = (
    "rank", "formula", "status", "reason", "score", "pareto_rank",
    "e_hull_ev_per_atom", "e_hull_std_ev_per_atom", "p_stable", "decomposition",
    "log10_sigma_s_per_cm", "log10_sigma_std", "conductivity_model", "in_domain",
    "band_gap_ev", "p_insulator", "cost_usd_per_kg", "warnings", "stability_drivers", "conductivity_drivers",
)  # fmt: skip
STATUS_COLOURS = {"ranked": "#1b9e77", "rejected": "#d95f02", "invalid": "#7570b3"}
MAX_TABLE_ROWS = 2_000


def pareto_svg(ranked: pd.DataFrame) -> str:
    """SVG scatter of predicted conductivity against predicted E_hull, coloured by status, first front outlined."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    if {"e_hull_ev_per_atom", "log10_sigma_s_per_cm"} <= set(ranked.columns):
        for status, colour in STATUS_COLOURS.items():
            rows = ranked[ranked["status"] == status]
            axes.scatter(
                rows["e_hull_ev_per_atom"], rows["log10_sigma_s_per_cm"], s=18, c=colour, label=status, alpha=0.8
            )
        front = ranked[(ranked["status"] == "ranked") & (ranked["pareto_rank"] == 1)]
        axes.scatter(
            front["e_hull_ev_per_atom"], front["log10_sigma_s_per_cm"], s=60, facecolors="none",
            edgecolors="black", label="Pareto front",
        )  # fmt: skip
        top = ranked[ranked["status"] == "ranked"].head(10)
        for _, row in top.iterrows():
            axes.annotate(str(row["formula"]), (row["e_hull_ev_per_atom"], row["log10_sigma_s_per_cm"]), fontsize=7)
        axes.legend(fontsize=8)
    axes.set(xlabel="predicted E_hull (eV/atom)", ylabel="predicted log10 σ (S/cm)", title="candidates")
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return html.escape(str(value))


def html_report(ranked: pd.DataFrame, *, title: str = "sse-screen ranking", source: str = "") -> str:
    """The report as one HTML string (inline CSS and SVG; every text cell escaped)."""
    columns = [c for c in REPORT_COLUMNS if c in ranked.columns]
    counts = ranked["status"].value_counts().to_dict()
    shown = ranked.head(MAX_TABLE_ROWS)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join(
        f'<tr class="{html.escape(str(row["status"]))}">'
        + "".join(f"<td>{_cell(row[c])}</td>" for c in columns)
        + "</tr>"
        for _, row in shown.iterrows()
    )
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUS_COLOURS)
    more = f"<p>Showing the first {MAX_TABLE_ROWS} of {len(ranked)} rows.</p>" if len(ranked) > MAX_TABLE_ROWS else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.8rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.2rem 0.4rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; position: sticky; top: 0; }}
tr.rejected td {{ color: #a0522d; }} tr.invalid td {{ color: #6a5acd; }}
.plot svg {{ max-width: 760px; height: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(source)} {len(ranked)} candidates: {summary}. Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.
Predictions are model estimates with uncertainties (std columns); rows with <code>in_domain</code> false lie outside the
conductivity model's training data.</p>
<div class="plot">{pareto_svg(ranked)}</div>
{more}
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table></body></html>
"""
