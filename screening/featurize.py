"""Featurize a candidate table chunk by chunk: the pure function behind ``sse-screen featurize``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from sse_screen.features.composition import CompositionFeaturizer

DEFAULT_CHUNK_ROWS = 100_000


def featurize_table(
    table: pd.DataFrame,
    *,
    preset: str = "electrolyte",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Append composition features and a per-row ``error`` column to a candidate table.

    Works on chunks of ``chunk_rows`` rows so memory stays bounded for millions of candidates; each chunk maps onto a
    Parquet/Dask partition unchanged.

    Args:
        table: Candidate table with a ``formula`` column (strings); other columns are carried through.
        preset: Feature preset of :class:`features.composition.CompositionFeaturizer`.
        chunk_rows: Rows per chunk.
        on_progress: Called with the number of rows finished after each chunk.

    Returns:
        A table with one row per input row, in order: the input columns, one column per feature (NaN for rows with
        an error) and ``error`` (empty string when the row is fine, else the reason).
    """
    featurizer = CompositionFeaturizer(preset=preset, errors="nan").fit(table["formula"].iloc[:1])
    names = list(featurizer.get_feature_names_out())
    clashes = sorted(set(names) & set(table.columns))
    if clashes:
        raise ValueError(f"input columns clash with feature names: {', '.join(clashes[:5])}")
    parts: list[pd.DataFrame] = []
    for start in range(0, len(table), chunk_rows):
        chunk = table.iloc[start : start + chunk_rows]
        values, errors = featurizer.featurize(chunk["formula"].to_numpy())
        features = pd.DataFrame(values, columns=names, index=chunk.index)
        error_column = pd.Series([e or "" for e in errors], index=chunk.index, name="error", dtype=object)
        parts.append(pd.concat([chunk, features, error_column], axis=1))
        if on_progress is not None:
            on_progress(len(chunk))
    if not parts:
        empty = pd.DataFrame(np.empty((0, len(names))), columns=names)
        return pd.concat([table, empty, pd.Series([], name="error", dtype=object)], axis=1)
    return pd.concat(parts, axis=0)
