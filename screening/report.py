"""A self-contained HTML report of a ranking: the ranked table and a Pareto plot, no internet assets."""

from __future__ import annotations

import html
import io
import numbers
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

#: The report's main table: (header, column, its standard-deviation column or "", number format, CSS class).
#: Columns absent from the ranking are left out; a value with a std column prints as ``value ± std``.
REPORT_COLUMNS: tuple[tuple[str, str, str, str, str], ...] = (
    ("rank", "rank", "", "{:.0f}", "num"),
    ("formula", "formula", "", "", "formula"),
    ("status", "status", "", "", ""),
    ("reason", "reason", "", "", "text"),
    ("score", "score", "", "{:.2f}", "num"),
    ("front", "pareto_rank", "", "{:.0f}", "num"),
    ("E_hull (eV/atom)", "e_hull_ev_per_atom", "e_hull_std_ev_per_atom", "{:.3f}", "num"),
    ("p stable", "p_stable", "", "{:.2f}", "num"),
    ("decomposition", "decomposition", "", "", "text"),
    ("log10 σ (S/cm)", "log10_sigma_s_per_cm", "log10_sigma_std", "{:.2f}", "num"),
    ("σ model", "conductivity_model", "", "", ""),
    ("in domain", "in_domain", "", "", ""),
    ("band gap (eV)", "band_gap_ev", "band_gap_std_ev", "{:.2f}", "num"),
    ("p insulator", "p_insulator", "", "{:.2f}", "num"),
    ("cost (USD/kg)", "cost_usd_per_kg", "", "{:.4g}", "num"),
    ("warnings", "warnings", "", "", "text"),
)
#: Columns left out of the table when every row holds the same value (named once in the summary instead).
CONSTANT_HIDDEN = ("conductivity_model",)
#: Per-row prediction drivers, shown in their own table under the main one (they are long).
DRIVER_COLUMNS = (("stability drivers", "stability_drivers"), ("conductivity drivers", "conductivity_drivers"))
STATUS_COLOURS = {"ranked": "#1b9e77", "rejected": "#d95f02", "invalid": "#7570b3"}
MAX_TABLE_ROWS = 2_000
#: Best ranked rows labelled in the Pareto plot.
N_LABELS = 8
#: Smallest vertical distance between two labels in the plot (axes fraction; 7 pt text in a ~3.8 in tall plot).
LABEL_GAP = 0.045


def pareto_svg(ranked: pd.DataFrame, *, n_labels: int = N_LABELS) -> str:
    """The :func:`pareto_figure` of a ranking as an inline SVG string."""
    buffer = io.StringIO()
    pareto_figure(ranked, n_labels=n_labels).savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def pareto_figure(ranked: pd.DataFrame, *, n_labels: int = N_LABELS):
    """Scatter of predicted conductivity against predicted E_hull, coloured by status, first front outlined.

    Only the ``n_labels`` best ranked rows are labelled (``#rank formula``); their labels sit in a column beside the
    points, spread so that they never overlap, each with a thin leader line to its point (many candidates share
    E_hull = 0, where labels at the points would pile up).

    Returns:
        A ``matplotlib.figure.Figure`` (no pyplot state).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.8), layout="constrained")
    axes = figure.subplots()
    if {"e_hull_ev_per_atom", "log10_sigma_s_per_cm"} <= set(ranked.columns):
        for status, colour in STATUS_COLOURS.items():
            rows = ranked[ranked["status"] == status]
            axes.scatter(
                rows["e_hull_ev_per_atom"], rows["log10_sigma_s_per_cm"], s=18, c=colour, label=status, alpha=0.8
            )
        ranked_rows = ranked[ranked["status"] == "ranked"]
        if "pareto_rank" in ranked.columns:
            front = ranked_rows[ranked_rows["pareto_rank"] == 1]
            axes.scatter(
                front["e_hull_ev_per_atom"], front["log10_sigma_s_per_cm"], s=60, facecolors="none",
                edgecolors="black", label="Pareto front",
            )  # fmt: skip
        _label_best(axes, ranked_rows.head(n_labels))
        figure.legend(loc="outside right upper", fontsize=8)
    axes.set(xlabel="predicted E_hull (eV/atom)", ylabel="predicted log10 σ (S/cm)", title="candidates")
    return figure


def label_heights(y: np.ndarray, *, gap: float, low: float = 0.02, high: float = 0.98) -> np.ndarray:
    """Heights (axes fraction) for labels wanted at heights ``y``: same order, at least ``gap`` apart, in range.

    Labels are pushed apart upwards, then the whole stack is shifted down if it leaves the axes (and it is squeezed
    evenly if it cannot fit at all).
    """
    y = np.clip(np.asarray(y, dtype=np.float64), low, high)
    order = np.argsort(y, kind="stable")
    placed = y[order].copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    if len(placed) and placed[-1] > high:
        placed -= placed[-1] - high
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
        if placed[0] < low:
            placed = np.linspace(low, high, len(placed)) if len(placed) > 1 else np.array([low])
    out = np.empty_like(placed)
    out[order] = placed
    return out


def _label_best(axes, best: pd.DataFrame) -> None:
    x = best["e_hull_ev_per_atom"].to_numpy(dtype=np.float64)
    y = best["log10_sigma_s_per_cm"].to_numpy(dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return
    best, x, y = best[keep], x[keep], y[keep]
    axes.autoscale_view()
    to_axes = axes.transData + axes.transAxes.inverted()
    frac = to_axes.transform(np.column_stack([x, y]))
    heights = label_heights(frac[:, 1], gap=LABEL_GAP)
    # labels in one column to the right of the labelled points, or to their left when the points are on the right
    right = float(np.max(frac[:, 0])) < 0.6
    column = min(float(np.max(frac[:, 0])) + 0.08, 0.62) if right else max(float(np.min(frac[:, 0])) - 0.08, 0.05)
    ranks = best["rank"] if "rank" in best.columns else pd.Series(range(1, len(best) + 1), index=best.index)
    for px, py, height, rank, formula in zip(x, y, heights, ranks, best["formula"], strict=True):
        axes.annotate(
            f"#{rank:.0f} {formula}", xy=(px, py), xycoords="data", xytext=(column, height),
            textcoords="axes fraction", fontsize=7, va="center", ha="left" if right else "right",
            arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 1, "shrinkB": 3},
        )  # fmt: skip


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _cell(value: object, number_format: str = "", std: object = None) -> str:
    """One escaped cell: empty when missing, numbers with ``number_format``, ``value ± std`` when a std is given."""
    if _missing(value):
        return ""
    if number_format and isinstance(value, numbers.Real) and not isinstance(value, bool):
        text = number_format.format(float(value))
        if not _missing(std) and isinstance(std, numbers.Real):
            # a narrow page moves "± std" under the value; a number itself never breaks
            text = f'<span>{text}</span> <span class="sd">± {number_format.format(float(std))}</span>'
        return text
    return html.escape(str(value))


def _distinct(values: pd.Series) -> list[object]:
    """The distinct non-missing, non-empty values of a column."""
    return [v for v in values.dropna().unique() if v != ""]


def report_title(source: str | Path = "") -> str:
    """``sse-screen ranking of <input file name>`` (or ``sse-screen ranking`` without an input name)."""
    name = Path(source).name if source else ""
    return f"sse-screen ranking of {name}" if name else "sse-screen ranking"


def _table(rows: pd.DataFrame, columns: list[tuple[str, str, str, str, str]], table_class: str) -> str:
    head = "".join(f'<th class="{css}">{html.escape(header)}</th>' for header, _, _, _, css in columns)
    body = "\n".join(
        f'<tr class="{html.escape(str(row.get("status", "")))}">'
        + "".join(
            f'<td class="{css}">{_cell(row[col], fmt, row[std] if std else None)}</td>'
            for _, col, std, fmt, css in columns
        )
        + "</tr>"
        for row in rows.to_dict("records")
    )
    return f'<table class="{table_class}"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def html_report(ranked: pd.DataFrame, *, title: str | None = None, source: str | Path = "") -> str:
    """The report as one HTML string (inline CSS and SVG; every text cell escaped).

    Args:
        ranked: A ranking (the output of ``rank_candidates``), in output order.
        title: Page title and heading; default :func:`report_title` of ``source``.
        source: The input file the ranking was computed from (named in the title and the summary).
    """
    title = title or report_title(source)
    columns = [
        (h, c, std if std in ranked.columns else "", f, css) for h, c, std, f, css in REPORT_COLUMNS
        if c in ranked.columns and (c not in CONSTANT_HIDDEN or len(_distinct(ranked[c])) > 1)
    ]  # fmt: skip
    constant = "".join(
        f" {c.replace('_', ' ').capitalize()}: {html.escape(str(_distinct(ranked[c])[0]))} (every predicted row)."
        for c in CONSTANT_HIDDEN if c in ranked.columns and len(_distinct(ranked[c])) == 1
    )  # fmt: skip
    counts = ranked["status"].value_counts().to_dict()
    shown = ranked.head(MAX_TABLE_ROWS)
    main = _table(shown, columns, "ranking")
    drivers = [(h, c, "", "", "text") for h, c in DRIVER_COLUMNS if c in ranked.columns]
    explained = shown[shown["status"] == "ranked"]
    if drivers:
        explained = explained[(explained[[c for _, c, *_ in drivers]] != "").any(axis=1)]
    drivers_html = (
        "<h2>What drove each prediction</h2><p>The three features that pushed each ranked row's prediction most "
        "(xgboost per-row contributions, in the model's units).</p>"
        + _table(explained, [("rank", "rank", "", "{:.0f}", "num"), ("formula", "formula", "", "", "formula"),
                             *drivers], "drivers")
        if drivers and len(explained) else ""
    )  # fmt: skip
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUS_COLOURS)
    more = f"<p>Showing the first {MAX_TABLE_ROWS} of {len(ranked)} rows.</p>" if len(ranked) > MAX_TABLE_ROWS else ""
    origin = f"Input: <code>{html.escape(str(source))}</code>. " if source else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.75rem; width: 100%; margin-bottom: 1.5rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.15rem 0.3rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; position: sticky; top: 0; }}
td.text, td.formula {{ overflow-wrap: anywhere; }}
td.num, th.num {{ text-align: right; }} td.num span {{ white-space: nowrap; }} .sd {{ color: #666; }}
td.text {{ min-width: 7em; }}
td.formula {{ min-width: 6em; }}
tr.rejected td {{ color: #a0522d; }} tr.invalid td {{ color: #6a5acd; }}
.plot svg {{ max-width: 860px; width: 100%; height: auto; }}
@media print {{ @page {{ size: A4 landscape; margin: 1cm; }} body {{ margin: 0; }} th {{ position: static; }} }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{origin}{len(ranked)} candidates: {summary}. Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.
Predictions are model estimates ± one standard deviation; rows with <i>in domain</i> false lie outside the
conductivity model's training data. Rejected and invalid rows come last, each with its reason.{constant}</p>
<div class="plot">{pareto_svg(ranked)}</div>
{more}
{main}
{drivers_html}
</body></html>
"""
