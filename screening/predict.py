"""Predict every property model for a candidate table: the pure function behind ``sse-screen predict``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from models.property_model import PropertyModel, load_property_model

#: Tasks served by ``sse-screen predict``, in output-column order.
PREDICT_TASKS = ("stability", "band_gap")
DEFAULT_CHUNK_ROWS = 50_000


def load_models(uris: Mapping[str, str | None] | None = None) -> dict[str, PropertyModel]:
    """Load the model of every task (explicit URI per task if given, else env var, else shipped default)."""
    uris = uris or {}
    return {task: load_property_model(task, model_uri=uris.get(task)) for task in PREDICT_TASKS}


def predict_table(
    table: pd.DataFrame,
    models: Mapping[str, PropertyModel],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Append every model's prediction columns and one ``error`` column to a candidate table.

    Each distinct formula is predicted once (candidate lists repeat), chunk by chunk.

    Args:
        table: Candidate table with a ``formula`` column; other columns are carried through.
        models: Task name -> fitted :class:`PropertyModel`.
        chunk_rows: Distinct formulas per chunk.
        on_progress: Called with the number of input rows finished after each chunk.

    Returns:
        One row per input row, in order: the input columns, the prediction columns of each model (NaN where the row
        has an error) and ``error`` (empty when fine, else the first reason found).
    """
    codes, uniques = pd.factorize(table["formula"].astype(str), use_na_sentinel=False)
    parts: list[pd.DataFrame] = []
    counts = np.bincount(codes, minlength=len(uniques))
    for start in range(0, len(uniques), chunk_rows):
        chunk = list(uniques[start : start + chunk_rows])
        columns: list[pd.DataFrame] = []
        error = pd.Series([""] * len(chunk), dtype=object)
        for model in models.values():
            predicted = model.predict_table(chunk)
            error = error.where(error != "", predicted.pop("error"))
            columns.append(predicted)
        parts.append(pd.concat([*columns, error.rename("error")], axis=1))
        if on_progress is not None:
            on_progress(int(counts[start : start + chunk_rows].sum()))
    columns_out = [c for model in models.values() for c in model.output_columns()] + ["error"]
    per_unique = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns_out)
    predictions = per_unique.iloc[codes].reset_index(drop=True)
    predictions.index = table.index
    clashes = sorted(set(predictions.columns) & set(table.columns))
    if clashes:
        raise ValueError(f"input columns clash with prediction columns: {', '.join(clashes)}")
    return pd.concat([table, predictions], axis=1)
