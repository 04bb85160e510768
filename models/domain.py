"""Applicability domain of the conductivity model: is a composition near the ones it was trained on?

The distance of a composition to the training data is the Euclidean distance between atomic-fraction vectors
(118 elements) to the nearest training composition. The threshold is calibrated the way the model is evaluated:
for each training composition, the distance to the nearest training composition of *another chemical system*
(so a doping series does not vouch for itself); the ``quantile`` of those distances is the threshold. A composition
is out of domain when it has no Li, holds an element never seen in training, or lies beyond the threshold.

Measured (``python -m sse_screen.experiments.conductivity_cv``): with quantile 0.85 about 14% of the rows are out of
domain in chemical-system-grouped CV; in leave-one-family-out CV the fraction depends on the family (see
``docs/conductivity.md``): composition alone does not identify a structure family.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sse_screen.features.formula import ELEMENT_SYMBOLS, parse_batch

#: Rows per block of the distance computation (bounds memory on large batches).
_BLOCK_ROWS = 2000


def nearest_distance(x: np.ndarray, points: np.ndarray, *, exclude: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance of each row of ``x`` to its nearest row of ``points`` (one matrix product per block).

    Args:
        x: ``(n, d)`` query rows.
        points: ``(m, d)`` reference rows.
        exclude: Optional ``(n, m)`` bool mask of pairs not to consider.
    """
    out = np.empty(len(x))
    norms = (points**2).sum(axis=1)[None, :]
    padded = np.zeros((_BLOCK_ROWS, x.shape[1]))
    for start in range(0, len(x), _BLOCK_ROWS):
        block = x[start : start + _BLOCK_ROWS]
        padded[: len(block)] = block
        padded[len(block) :] = 0.0
        # every product has the same shape, so a row's sums do not depend on the batch it came in (BLAS picks its
        # kernel, and its order of summation, by shape: a one-row product is a matrix-vector one)
        cross = (padded @ points.T)[: len(block)]
        squared = (block**2).sum(axis=1)[:, None] + norms - 2.0 * cross
        if exclude is not None:
            squared = np.where(exclude[start : start + _BLOCK_ROWS], np.inf, squared)
        out[start : start + len(block)] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
    return out


def fit_domain(formulas: list[object], groups: np.ndarray, *, quantile: float) -> dict[str, Any]:
    """The domain of the training compositions, JSON-ready (sparse atomic fractions, threshold, elements seen).

    Args:
        formulas: Training formulas (all parse).
        groups: Their chemical-system group labels (the threshold ignores neighbours of the same group).
        quantile: Quantile of the leave-group-out nearest distances that becomes the threshold.
    """
    batch = parse_batch(formulas)
    dense = batch.dense()
    points, first = np.unique(np.round(dense, 6), axis=0, return_index=True)
    point_groups = np.asarray(groups)[first]
    same = point_groups[:, None] == point_groups[None, :]
    distance = nearest_distance(points, points, exclude=same)
    finite = distance[np.isfinite(distance)]
    nz = [np.flatnonzero(row) for row in points]
    return {
        "metric": "euclidean distance of atomic-fraction vectors to the nearest training composition",
        "points": [[[int(i), float(row[i])] for i in idx] for row, idx in zip(points, nz, strict=True)],
        "threshold": float(np.quantile(finite, quantile)) if len(finite) else 0.0,
        "quantile": quantile,
        "element_indices": sorted({int(i) for i in batch.index[batch.mask]}),
    }


def _points(domain: dict[str, Any]) -> np.ndarray:
    points = np.zeros((len(domain["points"]), len(ELEMENT_SYMBOLS)))
    for row, pairs in enumerate(domain["points"]):
        for index, fraction in pairs:
            points[row, index] = fraction
    return points


def domain_distance(domain: dict[str, Any], formulas: list[object]) -> np.ndarray:
    """Distance of each composition to the training data, in units of the domain threshold (> 1: beyond it)."""
    x = parse_batch(formulas).dense()
    return nearest_distance(x, _points(domain)) / max(domain["threshold"], 1e-9)


def in_domain(domain: dict[str, Any], formulas: list[object], *, distance: np.ndarray | None = None) -> np.ndarray:
    """Per row: inside the domain (Li present, every element seen in training, within the distance threshold)."""
    batch = parse_batch(formulas)
    distance = domain_distance(domain, formulas) if distance is None else distance
    seen = np.zeros(len(ELEMENT_SYMBOLS), dtype=bool)
    seen[domain["element_indices"]] = True
    known = np.where(batch.mask, seen[batch.index], True).all(axis=1)
    li = (batch.dense()[:, ELEMENT_SYMBOLS.index("Li")] > 0) & batch.ok
    return (distance <= 1.0) & known & li
