"""Applicability domain of the conductivity model: is a composition like the ones it was trained on?

Out of domain: no Li, an element never seen in training, or a mean distance to the ``k`` nearest training
compositions (robust-scaled values of the composition booster's most important features) beyond a quantile of
the same distance among the training compositions themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sse_screen.features.formula import ELEMENT_SYMBOLS, parse_batch

#: Rows per block of the distance computation (bounds memory on large batches).
_BLOCK_ROWS = 2000


def knn_distance(x: np.ndarray, points: np.ndarray, *, k: int, exclude_self: bool = False) -> np.ndarray:
    """Mean RMS distance of each row of ``x`` to its ``k`` nearest ``points`` (itself excluded if asked)."""
    squared = (x**2).sum(axis=1)[:, None] + (points**2).sum(axis=1)[None, :] - 2.0 * x @ points.T
    d = np.sqrt(np.maximum(squared, 0.0) / x.shape[1])  # RMS distance via one matrix product
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    k = min(k, points.shape[0] - int(exclude_self))
    return np.sort(d, axis=1)[:, :k].mean(axis=1)


def fit_domain(
    formulas: list[object],
    comp: np.ndarray,
    names: list[str],
    gain: dict[str, float],
    *,
    n_features: int,
    k: int,
    quantile: float,
) -> dict[str, Any]:
    """The domain of the training compositions, JSON-ready.

    Args:
        formulas: Training formulas.
        comp: Their composition features (columns ``names``).
        names: Feature names of ``comp``'s columns.
        gain: Feature importance (total gain) of the composition booster, by name.
        n_features: How many of the most important features span the distance.
        k: Nearest neighbours averaged.
        quantile: Quantile of the training compositions' own distances that becomes the threshold.
    """
    top = sorted(gain, key=gain.get, reverse=True)[:n_features]
    x = comp[:, [names.index(name) for name in top]]
    center = np.nanmedian(x, axis=0)
    q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
    scale = np.where(q75 - q25 > 0, q75 - q25, np.nanstd(x, axis=0) + 1e-9)
    points = np.unique(np.round(np.nan_to_num((x - center) / scale), 3), axis=0)
    distance = knn_distance(points, points, k=k, exclude_self=True)
    batch = parse_batch(formulas)
    return {
        "features": top,
        "center": center.tolist(),
        "scale": scale.tolist(),
        "points": points.tolist(),
        "threshold": float(np.quantile(distance, quantile)),
        "element_indices": sorted({int(i) for i in batch.index[batch.mask]}),
    }


def in_domain(
    domain: dict[str, Any], formulas: list[object], comp: np.ndarray, names: list[str], *, k: int
) -> np.ndarray:
    """Per row: inside the domain (Li present, every element seen in training, near enough the training data)."""
    x = comp[:, [names.index(name) for name in domain["features"]]]
    z = np.nan_to_num((x - np.asarray(domain["center"])) / np.asarray(domain["scale"]))
    points = np.asarray(domain["points"], dtype=float)
    blocks = [knn_distance(z[s : s + _BLOCK_ROWS], points, k=k) for s in range(0, len(z), _BLOCK_ROWS)]
    near = np.concatenate(blocks or [[]])
    batch = parse_batch(formulas)
    seen = np.zeros(len(ELEMENT_SYMBOLS), dtype=bool)
    seen[domain["element_indices"]] = True
    known = np.where(batch.mask, seen[batch.index], True).all(axis=1)
    li = comp[:, names.index("Li atomic fraction")] > 0
    return (near <= domain["threshold"]) & known & li
