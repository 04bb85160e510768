"""Predict every property model for a candidate table: the pure function behind ``sse-screen predict``.

One feature table per batch: the formulas are parsed once, each row gets its canonical composition
(:mod:`features.canonical`), and each distinct composition is featurized once with the ``electrolyte`` preset and
predicted once; every model (and, in :mod:`screening.rank`, every explanation) reads that table, and the results are
broadcast back to the rows. The models are asked about the canonical formula, so every prediction is a function of
the composition, not of how its formula was written (``Li5Ge0.5PS6`` and ``Li10GeP2S12`` get the same values).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sse_screen.features.canonical import canonical_compositions
from sse_screen.features.formula import parse_batch
from sse_screen.models.conductivity import load_conductivity_model
from sse_screen.models.property_model import load_property_model
from sse_screen.screening.known import attach_known
from sse_screen.screening.structures import read_structures

#: Tasks served by ``sse-screen predict``, in output-column order.
PREDICT_TASKS = ("stability", "band_gap", "conductivity")
DEFAULT_CHUNK_ROWS = 50_000
#: Feature preset of the shared feature table (its columns include every other preset's by name).
FEATURE_PRESET = "electrolyte"
#: Up to this many distinct predicted compositions, the feature table is kept for the explanations.
MAX_KEPT_FEATURE_ROWS = 200_000


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


@dataclass(frozen=True)
class Candidates:
    """A candidate table parsed once (:func:`parse_candidates`).

    Attributes:
        formulas: Per row, the formula as given (taken from the structure where the cell was empty).
        structures: Per row, the structure read from ``cif_path`` (or None); None when there is no such column.
        errors: ``(n,)`` object array: why the row cannot be predicted (unreadable CIF, formula that does not
            parse), "" when it can.
        keys: ``(n,)`` canonical keys (None for rows that did not parse).
        codes: ``(n,)`` int, index of the row's composition in ``distinct`` (-1 for rows that did not parse).
        distinct: Canonical formula of each distinct composition, in order of first appearance.
    """

    formulas: list[str]
    structures: list[Any] | None
    errors: np.ndarray
    keys: np.ndarray
    codes: np.ndarray
    distinct: list[str]


def parse_candidates(table: pd.DataFrame) -> Candidates:
    """Read the structures of a candidate table, parse its formulas once and give each row its composition."""
    structures, cif_errors, formulas = read_structures(table)
    batch = parse_batch(formulas)
    canon = canonical_compositions(batch)
    errors = np.array([c or p or "" for c, p in zip(cif_errors, batch.errors, strict=True)], dtype=object)
    codes, _ = pd.factorize(pd.Series(canon.keys, dtype=object), use_na_sentinel=True)
    code_of, first = np.unique(codes, return_index=True)  # factorize numbers codes by first appearance
    distinct = [canon.formulas[i] for i in first[code_of >= 0]]
    return Candidates(formulas, structures, errors, canon.keys, np.asarray(codes, dtype=np.int64), distinct)


def predict_table(
    table: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Append every model's prediction columns and one ``error`` column to a candidate table.

    Each distinct composition is featurized and predicted once (module docstring). Rows with a readable CIF in a
    ``cif_path`` column get the structure-aware conductivity model; a CIF that cannot be read makes its row an error.

    Args:
        table: Candidate table with a ``formula`` column (and optionally ``cif_path``); other columns are carried
            through. An empty formula with a CIF is taken from the structure.
        models: Task name -> fitted model (see :func:`load_models`).
        chunk_rows: Distinct compositions per chunk.
        on_progress: Called with the number of input rows finished after each chunk.

    Returns:
        One row per input row, in order: the input columns (``formula`` filled from CIFs where it was empty), the
        prediction columns of each model and ``error`` (empty when fine; otherwise the first reason found, and every
        prediction column of that row is empty), then the ``known_*`` columns of :func:`screening.known.attach_known`.
    """
    candidates = parse_candidates(table)
    predictions, _ = predict_candidates(
        candidates, models, send=candidates.errors == "", chunk_rows=chunk_rows, on_progress=on_progress
    )
    return join_predictions(table, candidates, predictions)


def join_predictions(table: pd.DataFrame, candidates: Candidates, predictions: pd.DataFrame) -> pd.DataFrame:
    """The input table (``formula`` filled from CIFs) followed by the prediction columns, index kept."""
    predictions = predictions.set_axis(table.index)
    out = table.copy()
    out["formula"] = candidates.formulas
    clashes = sorted(set(predictions.columns) & set(out.columns))
    if clashes:
        raise ValueError(f"input columns clash with prediction columns: {', '.join(clashes)}")
    return attach_known(pd.concat([out, predictions], axis=1))  # api helper: measured / MP values, when known


def predict_candidates(
    candidates: Candidates,
    models: Mapping[str, Any],
    *,
    send: np.ndarray,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Predict the compositions of the rows in ``send``, once per distinct composition.

    Args:
        candidates: The parsed table.
        models: Task name -> fitted model.
        send: ``(n,)`` bool, rows to predict (rows that cannot be predicted are never sent).
        chunk_rows: Distinct compositions per chunk.
        on_progress: Called with the number of input rows finished (rows not sent count at the start).

    Returns:
        The prediction columns and ``error`` for every row (RangeIndex; rows not sent: empty predictions, their
        ``errors`` reason or ""), and the feature table of the predicted compositions (index: their code in
        ``candidates.distinct``) when there are at most :data:`MAX_KEPT_FEATURE_ROWS` of them, else None.
    """
    codes = candidates.codes
    n = len(codes)
    send = np.asarray(send, dtype=bool) & (codes >= 0) & (candidates.errors == "")
    wanted = np.unique(codes[send])
    position = np.full(len(candidates.distinct), -1, dtype=np.int64)
    position[wanted] = np.arange(len(wanted))
    lookup = np.append(position, -1)  # rows without a composition (codes < 0) look up the trailing -1
    row_pos = np.where(send, lookup[np.where(codes >= 0, codes, len(position))], -1)
    counts = np.bincount(row_pos[row_pos >= 0], minlength=len(wanted))
    if on_progress is not None and (n - int(counts.sum())) > 0:
        on_progress(n - int(counts.sum()))
    structures = candidates.structures
    struct_rows = np.flatnonzero(send & np.array([s is not None for s in structures or [None] * n], dtype=bool))
    struct_pos = set(row_pos[struct_rows].tolist())
    kept: list[pd.DataFrame] = []
    struct_features: dict[int, np.ndarray] = {}
    parts = []
    for start in range(0, len(wanted), chunk_rows):
        formulas = [candidates.distinct[c] for c in wanted[start : start + chunk_rows]]
        features = featurize(formulas)
        parts.append(_predict_formulas(formulas, models, features))
        if len(wanted) <= MAX_KEPT_FEATURE_ROWS:
            kept.append(features)
        for p in struct_pos & set(range(start, start + len(formulas))):
            struct_features[p] = features.iloc[p - start].to_numpy()
        if on_progress is not None:
            on_progress(int(counts[start : start + chunk_rows].sum()))
    per_key = pd.concat(parts, ignore_index=True) if parts else _empty_predictions(models)
    predictions = per_key.iloc[np.maximum(row_pos, 0)].reset_index(drop=True) if len(per_key) else per_key
    if not len(per_key):
        predictions = predictions.reindex(range(n))
    predictions["error"] = np.where(row_pos >= 0, predictions["error"].to_numpy(dtype=object), candidates.errors)
    if len(struct_rows) and "conductivity" in models:
        names = kept[0].columns if kept else featurize(candidates.distinct[:1]).columns
        table = pd.DataFrame([struct_features[p] for p in row_pos[struct_rows]], columns=names)
        _predict_structures(predictions, candidates, struct_rows, models["conductivity"], table)
    blank(predictions, (row_pos < 0) | (predictions["error"].to_numpy(dtype=object) != ""))
    features = pd.concat(kept, ignore_index=True).set_axis(wanted) if kept else None
    return predictions, features


def featurize(formulas: list[str]) -> pd.DataFrame:
    """The shared feature table: :data:`FEATURE_PRESET` composition features of each formula, by name."""
    from sse_screen.features.composition import CompositionFeaturizer

    featurizer = CompositionFeaturizer(preset=FEATURE_PRESET, errors="nan").fit()
    values, _ = featurizer.featurize(formulas)
    return pd.DataFrame(values, columns=list(featurizer.get_feature_names_out()))


def call_with_features(method: Callable[..., Any], formulas: list[str], features: pd.DataFrame, **kwargs: Any) -> Any:
    """Call a model's ``predict_table``/``explain`` with the shared feature table (``features=``) when it takes it.

    Models that do not take ``features`` (older ones) featurize the formulas themselves; so do keywords such as
    ``structures`` that the method does not take (they are dropped).
    """
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {k: v for k, v in kwargs.items() if k in params}
    if "features" in params:
        kwargs["features"] = features
    return method(formulas, **kwargs)


def _predict_formulas(formulas: list[str], models: Mapping[str, Any], features: pd.DataFrame) -> pd.DataFrame:
    """All models' predictions for distinct compositions (composition only), with the first error per row."""
    columns: list[pd.DataFrame] = []
    error = pd.Series([""] * len(formulas), dtype=object)
    for model in models.values():
        predicted = call_with_features(model.predict_table, formulas, features).reset_index(drop=True)
        error = error.where(error != "", predicted.pop("error"))
        columns.append(predicted)
    return pd.concat([*columns, error.rename("error")], axis=1)


def _predict_structures(
    predictions: pd.DataFrame, candidates: Candidates, rows: np.ndarray, model: Any, features: pd.DataFrame
) -> None:
    """Overwrite the conductivity columns of rows with a structure by the structure-aware model (in place)."""
    structures = candidates.structures or []
    formulas = [candidates.distinct[c] for c in candidates.codes[rows]]
    with_structure = call_with_features(
        model.predict_table, formulas, features, structures=[structures[i] for i in rows]
    ).reset_index(drop=True)
    error = with_structure.pop("error")
    for column in with_structure.columns:  # same model, same dtypes: overwrite the structure rows
        values = predictions[column].to_numpy(copy=True)
        values[rows] = with_structure[column].to_numpy()
        predictions[column] = values
    keep = predictions.loc[rows, "error"].to_numpy(dtype=object)
    predictions.loc[rows, "error"] = np.where(keep != "", keep, error.to_numpy(dtype=object))


def _empty_predictions(models: Mapping[str, Any]) -> pd.DataFrame:
    """Zero-row prediction columns when nothing was sent to the models (every column then empty)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in prediction_columns(models)})


def blank(predictions: pd.DataFrame, rows: np.ndarray) -> None:
    """Empty every prediction column (not ``error``) of ``rows`` (bool mask), in place: NaN, None or ""."""
    rows = np.asarray(rows, dtype=bool)
    if not rows.any():
        return
    for column in predictions.columns:
        if column == "error":
            continue
        series = predictions[column]
        if pd.api.types.is_float_dtype(series):
            predictions.loc[rows, column] = np.nan
        elif pd.api.types.is_bool_dtype(series):
            predictions[column] = series.astype(object)
            predictions.loc[rows, column] = None
        elif pd.api.types.is_object_dtype(series) and series.isna().all():
            predictions[column] = np.nan  # nothing predicted in this batch: a missing value, like a float column
        else:
            predictions.loc[rows, column] = ""
