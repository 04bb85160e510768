"""Predict every property model for a candidate table: the pure function behind ``sse-screen predict``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sse_screen.models.conductivity import load_conductivity_model
from sse_screen.models.property_model import load_property_model
from sse_screen.screening.known import attach_known
from sse_screen.screening.structures import read_structures

#: Tasks served by ``sse-screen predict``, in output-column order.
PREDICT_TASKS = ("stability", "band_gap", "conductivity")
DEFAULT_CHUNK_ROWS = 50_000


def load_models(uris: Mapping[str, str | None] | None = None, *, tasks: tuple[str, ...] = PREDICT_TASKS) -> dict:
    """Load the model of every task (explicit URI per task if given, else env var, else shipped default).

    Raises:
        models.registry.ModelNotFoundError: A model could not be loaded (the message lists what was tried).
    """
    uris = uris or {}
    models: dict[str, Any] = {}
    for task in tasks:
        if task == "conductivity":
            models[task] = load_conductivity_model(model_uri=uris.get(task))
        else:
            models[task] = load_property_model(task, model_uri=uris.get(task))
    return models


def prediction_columns(models: Mapping[str, Any]) -> list[str]:
    """The columns :func:`predict_table` adds, ``error`` last."""
    return [c for model in models.values() for c in model.output_columns()] + ["error"]


def predict_table(
    table: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Append every model's prediction columns and one ``error`` column to a candidate table.

    Each distinct formula is predicted once per chunk (candidate lists repeat). Rows with a readable CIF in a
    ``cif_path`` column get the structure-aware conductivity model; a CIF that cannot be read makes its row an error.

    Args:
        table: Candidate table with a ``formula`` column (and optionally ``cif_path``); other columns are carried
            through. An empty formula with a CIF is taken from the structure.
        models: Task name -> fitted model (see :func:`load_models`).
        chunk_rows: Distinct formulas per chunk.
        on_progress: Called with the number of input rows finished after each chunk.

    Returns:
        One row per input row, in order: the input columns (``formula`` filled from CIFs where it was empty), the
        prediction columns of each model and ``error`` (empty when fine; otherwise the first reason found, and every
        prediction column of that row is empty), then the ``known_*`` columns of :func:`screening.known.attach_known`.
    """
    structures, cif_errors, formulas = read_structures(table)
    codes, uniques = pd.factorize(pd.Series(formulas, dtype=object), use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(uniques))
    parts = []
    for start in range(0, len(uniques), chunk_rows):
        parts.append(_predict_formulas(list(uniques[start : start + chunk_rows]), models))
        if on_progress is not None:
            on_progress(int(counts[start : start + chunk_rows].sum()))
    columns = prediction_columns(models)
    per_unique = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    predictions = per_unique.iloc[codes].reset_index(drop=True)

    if structures is not None and "conductivity" in models:
        rows = [i for i, s in enumerate(structures) if s is not None]
        if rows:
            model = models["conductivity"]
            with_structure = model.predict_table([formulas[i] for i in rows], structures=[structures[i] for i in rows])
            error = with_structure.pop("error")
            target = np.asarray(rows)
            for column in with_structure.columns:  # same model, same dtypes: overwrite the structure rows
                values = predictions[column].to_numpy(copy=True)
                values[target] = with_structure[column].to_numpy()
                predictions[column] = values
            keep = predictions.loc[target, "error"].to_numpy(dtype=object)
            predictions.loc[target, "error"] = np.where(keep != "", keep, error.to_numpy(dtype=object))
    cif_error = np.array([e or "" for e in cif_errors], dtype=object)
    predictions["error"] = np.where(cif_error != "", cif_error, predictions["error"].to_numpy(dtype=object))
    _blank_errors(predictions)
    predictions.index = table.index
    out = table.copy()
    out["formula"] = formulas
    clashes = sorted(set(predictions.columns) & set(out.columns))
    if clashes:
        raise ValueError(f"input columns clash with prediction columns: {', '.join(clashes)}")
    return attach_known(pd.concat([out, predictions], axis=1))  # api helper: measured / MP values, when known


def _predict_formulas(formulas: list[str], models: Mapping[str, Any]) -> pd.DataFrame:
    """All models' predictions for distinct formulas (composition only), with the first error per row."""
    columns: list[pd.DataFrame] = []
    error = pd.Series([""] * len(formulas), dtype=object)
    for model in models.values():
        predicted = model.predict_table(formulas)
        error = error.where(error != "", predicted.pop("error"))
        columns.append(predicted)
    return pd.concat([*columns, error.rename("error")], axis=1)


def _blank_errors(predictions: pd.DataFrame) -> None:
    """Empty every prediction column of rows that have an error (in place)."""
    bad = (predictions["error"] != "").to_numpy()
    if not bad.any():
        return
    for column in predictions.columns:
        if column == "error":
            continue
        series = predictions[column]
        if pd.api.types.is_float_dtype(series):
            predictions.loc[bad, column] = np.nan
        elif pd.api.types.is_bool_dtype(series):
            predictions[column] = series.astype(object)
            predictions.loc[bad, column] = None
        else:
            predictions.loc[bad, column] = ""
