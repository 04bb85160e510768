"""Figures logged with every training run: parity plots and feature importance (matplotlib, no pyplot state)."""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from matplotlib.figure import Figure


def parity_figure(y: np.ndarray, pred: np.ndarray, *, unit: str, title: str, floor: float | None = 0.0) -> Figure:
    """Density parity plot of predictions against true values (log-scaled hexbin, identity line)."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    figure = Figure(figsize=(4.5, 4.5), layout="constrained")
    axes = figure.subplots()
    axes.hexbin(y, pred, gridsize=60, mincnt=1, bins="log", cmap="viridis")
    both = np.concatenate([y, pred])
    low = floor if floor is not None else float(np.nanpercentile(both, 0.5))
    high = float(np.nanpercentile(both, 99.5))
    axes.plot([low, high], [low, high], color="black", lw=1)
    axes.set(xlim=(low, high), ylim=(low, high), xlabel=f"true ({unit})", ylabel=f"predicted ({unit})", title=title)
    return figure


def importance_figure(booster: xgb.Booster, *, top: int = 25) -> Figure:
    """Horizontal bars of the ``top`` features by total gain of a booster (names from the booster)."""
    gain = booster.get_score(importance_type="total_gain")
    items = sorted(gain.items(), key=lambda kv: kv[1])[-top:]
    figure = Figure(figsize=(7, 0.25 * len(items) + 1), layout="constrained")
    axes = figure.subplots()
    axes.barh([k for k, _ in items], [v for _, v in items])
    axes.set(xlabel="total gain", title=f"top {len(items)} features")
    axes.tick_params(axis="y", labelsize=7)
    return figure
