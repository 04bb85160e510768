"""The composition features a model reads: computed here, or taken from a feature table the caller already built.

Screening featurizes each distinct composition of a batch once and hands that table (``features=``) to every
model and explanation, so no model parses and featurizes the same formulas again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sse_screen.features.composition import CompositionFeaturizer
from sse_screen.features.formula import parse_batch

#: Error of a row whose features are all missing although its formula parses.
NO_FEATURES = "no composition features for this row in the feature table"


def composition_feature_names(preset: str) -> list[str]:
    """Columns of ``CompositionFeaturizer(preset=preset)``, in order."""
    return list(CompositionFeaturizer(preset=preset).fit().get_feature_names_out())


def checked_feature_table(features: pd.DataFrame, *, n_rows: int, preset: str) -> pd.DataFrame:
    """The preset's composition columns of a caller's feature table, in order, after checking it.

    Raises:
        ValueError: ``features`` is not a DataFrame, has other than ``n_rows`` rows, lacks a needed column, has it
            twice or has a non-numeric one.
    """
    if not isinstance(features, pd.DataFrame):
        raise ValueError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    if len(features) != n_rows:
        raise ValueError(f"features has {len(features)} rows but there are {n_rows} formulas")
    names = composition_feature_names(preset)
    missing = [name for name in names if name not in features.columns]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        shown = ", ".join(map(repr, missing[:5]))
        raise ValueError(f"features lacks column(s) of the {preset!r} composition preset: {shown}{more}")
    twice = sorted(set(features.columns[features.columns.duplicated()]) & set(names))
    if twice:
        raise ValueError(f"features has duplicate column(s): {', '.join(map(repr, twice[:5]))}")
    table = features.loc[:, names]
    text = [name for name in names if not pd.api.types.is_numeric_dtype(table[name])]
    if text:
        raise ValueError(f"features column(s) not numeric: {', '.join(map(repr, text[:5]))}")
    return table


def composition_features(
    formulas: list[object], *, preset: str, features: pd.DataFrame | None = None
) -> tuple[np.ndarray, list[str | None]]:
    """Composition feature matrix (columns :func:`composition_feature_names`) and per-row errors (None: fine).

    Args:
        formulas: The rows' formulas.
        preset: Composition feature preset.
        features: None: featurize ``formulas``. Else a table with one row per formula (same order, matched by
            position, not index) holding at least the preset's columns by name, as produced by
            ``CompositionFeaturizer(preset=preset)``; extra columns are ignored. A row whose features are all NaN
            (what the featurizer gives a formula it rejects) is an error row, with the formula's own reason.

    Raises:
        ValueError: ``features`` is not a DataFrame, has another number of rows, lacks a needed column or has a
            non-numeric one.
    """
    if features is None:
        return CompositionFeaturizer(preset=preset, errors="nan").fit().featurize(formulas)
    table = checked_feature_table(features, n_rows=len(formulas), preset=preset)
    matrix = table.to_numpy(dtype=np.float64, copy=True)
    errors: list[str | None] = [None] * len(formulas)
    empty = np.flatnonzero(np.isnan(matrix).all(axis=1)) if matrix.shape[1] else np.array([], dtype=int)
    if len(empty):
        reasons = parse_batch([formulas[i] for i in empty]).errors
        for i, reason in zip(empty, reasons, strict=True):
            errors[i] = reason or NO_FEATURES
    return matrix, errors
