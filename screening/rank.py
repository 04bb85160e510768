"""Rank candidates end to end: check, predict, score, Pareto-rank, explain: what the CLI and the web service call.

A funnel, cheap checks first: the table is parsed once and the composition checks run before any model. Rows that
are invalid (formula or CIF), lack the mobile ion, contain an excluded element, cannot be charge balanced or repeat
the composition of an earlier row are not sent through the models (``RankOptions.predict_rejected`` sends the
rejected ones anyway); their ``reason`` says why and their prediction columns stay empty, except that a duplicate
gets a copy of its original's predictions. The other rows are predicted once per distinct composition from one
shared feature table (:mod:`screening.predict`), which the explanations read too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from sse_screen.screening.checks import DEFAULT_EXCLUSIONS, CheckConfig, run_checks
from sse_screen.screening.mobile_ion import blank_conductivity
from sse_screen.screening.predict import (
    Candidates,
    call_with_features,
    featurize,
    join_predictions,
    parse_candidates,
    predict_candidates,
)
from sse_screen.screening.ranking import rank_table

STATUS_ORDER = {"ranked": 0, "rejected": 1, "invalid": 2}
#: Rows whose prediction drivers are computed (per-row xgboost contributions cost more than a prediction).
MAX_EXPLAINED_ROWS = 2_000


@dataclass(frozen=True, kw_only=True)
class RankOptions:
    """What a chemist can set for a ranking (all optional; defaults are documented in the README).

    Attributes:
        mobile_ion: Element every candidate must contain (``"Li"``; ``"Na"`` for sodium conductors).
        exclusions: Excluded element -> category shown in the reason (None: radioactive, toxic and noble gases).
        max_e_hull_ev_per_atom: Reject candidates predicted above this energy above hull, eV/atom.
        min_band_gap_ev: Reject candidates predicted below this band gap, eV.
        max_cost_usd_per_kg: Reject candidates whose raw-element cost is above this, USD/kg.
        weights: Objective name (stability, conductivity, band_gap, cost) -> weight in the score.
        mode: ``"mean"``; ``"optimistic"``/``"pessimistic"`` rank on interval bounds (what to test next).
        order_by: ``"score"`` or ``"pareto"``.
        explain: Add the features that drove each ranked row's stability and conductivity predictions.
        predict_rejected: Also predict rows the composition checks reject (no mobile ion, excluded element, not
            charge balanced); by default they are not sent through the models and their predictions stay empty.
    """

    mobile_ion: str = "Li"
    exclusions: Mapping[str, str] | None = None
    max_e_hull_ev_per_atom: float | None = None
    min_band_gap_ev: float | None = None
    max_cost_usd_per_kg: float | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    mode: Literal["mean", "optimistic", "pessimistic"] = "mean"
    order_by: Literal["score", "pareto"] = "score"
    explain: bool = True
    predict_rejected: bool = False

    def check_config(self) -> CheckConfig:
        return CheckConfig(
            mobile_ion=self.mobile_ion,
            exclusions=dict(DEFAULT_EXCLUSIONS if self.exclusions is None else self.exclusions),
            max_e_hull_ev_per_atom=self.max_e_hull_ev_per_atom,
            min_band_gap_ev=self.min_band_gap_ev,
            max_cost_usd_per_kg=self.max_cost_usd_per_kg,
        )


def rank_candidates(
    table: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    options: RankOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Check, predict, score and order a candidate table (the funnel of the module docstring).

    Args:
        table: Candidates: a ``formula`` column (and optionally ``cif_path``); other columns are carried through.
        models: Task -> fitted model (``screening.predict.load_models``).
        options: Checks, limits, weights and ranking mode.
        on_progress: Called with the number of input rows predicted after each chunk.

    Returns:
        One row per input row, best first: ranked rows by ``rank``, then rejected, then invalid rows (input order
        within each). Columns: ``input_row`` (0-based position in the input), the input columns, every prediction
        column of ``sse-screen predict``, ``cost_usd_per_kg``, ``status`` (ranked/rejected/invalid), ``reason``,
        ``warnings``, ``duplicate_of``, ``score``, ``pareto_rank``, ``rank`` and, with ``explain``,
        ``stability_drivers`` / ``conductivity_drivers``. Prediction columns are empty for rows not sent to the
        models (invalid and, unless ``predict_rejected``, rejected rows); duplicates carry their original's.
    """
    options = options or RankOptions()
    table = table.reset_index(drop=True)
    candidates = parse_candidates(table)
    ranked, features = rank_rows(table, models, options=options, candidates=candidates, on_progress=on_progress)
    ranked = ranked.iloc[sort_order(ranked)].reset_index(drop=True)
    if options.explain:
        ranked = add_drivers(ranked, models, candidates, features)
    ranked = blank_conductivity(ranked, options.mobile_ion)  # api helper: no Li-trained σ or drivers for other ions
    return ranked


def rank_rows(
    table: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    options: RankOptions,
    candidates: Candidates | None = None,
    first_rows: np.ndarray | None = None,
    row_offset: int = 0,
    max_fronts: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The row-wise part of :func:`rank_candidates` (checks, predictions, status, score) in input order, unsorted.

    Also what each partition of a Parquet dataset runs (:mod:`screening.partitioned`): with ``first_rows`` (input
    position of the first row of the whole input with the same composition, -1 for none) duplicates are found
    across partitions; a duplicate whose first row is in another partition is predicted itself (the same
    composition gets the same prediction). ``pareto_rank`` and ``rank`` are those of ``table`` alone.

    Args:
        table: Candidates with a RangeIndex.
        models: Task -> fitted model.
        options: Checks, limits, weights and ranking mode.
        candidates: ``parse_candidates(table)`` when the caller has it.
        first_rows: See above; None finds duplicates within ``table``.
        row_offset: Input position of the first row of ``table`` (``input_row`` counts from it).
        max_fronts: Passed to :func:`screening.ranking.rank_table`.
        on_progress: Called with the number of input rows predicted after each chunk.

    Returns:
        The ranking columns of :func:`rank_candidates` without drivers, in input order, and the batch's feature
        table (see :func:`screening.predict.predict_candidates`).
    """
    candidates = candidates or parse_candidates(table)
    checks = run_checks(candidates.formulas, config=options.check_config())
    n = len(table)
    if first_rows is None:
        comp = checks["composition_id"].to_numpy()
        first = pd.Series(np.arange(n)).groupby(comp).transform("min").to_numpy() if n else np.zeros(0, dtype=int)
        duplicate = (comp >= 0) & (first != np.arange(n))
        local = duplicate
    else:
        rows = np.asarray(first_rows, dtype=np.int64)
        duplicate = (rows >= 0) & (rows != row_offset + np.arange(n))
        local = duplicate & (rows >= row_offset)  # the first row is in this table (it always comes earlier)
        first = rows - row_offset
    passed = (checks["status"] == "ok").to_numpy() | options.predict_rejected
    send = passed & ~local
    predictions, features = predict_candidates(candidates, models, send=send, on_progress=on_progress)
    copy = np.flatnonzero(local & (candidates.errors == ""))
    for column in predictions.columns.drop("error") if len(copy) else ():
        values = predictions[column].to_numpy(copy=True)  # a duplicate shows its original's predictions, copied
        values[copy] = values[first[copy]]
        predictions[column] = values
    predicted = join_predictions(table, candidates, predictions)
    ranked = rank_table(
        predicted,
        weights=dict(options.weights),
        config=options.check_config(),
        mode=options.mode,
        order_by=options.order_by,
        checks=checks.set_axis(predicted.index),
        first_rows=None if first_rows is None else np.asarray(first_rows, dtype=np.int64),
        row_offset=row_offset,
        max_fronts=max_fronts,
    )
    ranked.insert(0, "input_row", row_offset + np.arange(len(ranked)))
    return ranked, features


def sort_order(ranked: pd.DataFrame) -> np.ndarray:
    """Positions that put a ranking in output order: ranked rows by ``rank``, then rejected, then invalid."""
    return np.lexsort(
        (
            ranked["input_row"].to_numpy(),
            ranked["rank"].fillna(np.iinfo(np.int64).max).to_numpy(dtype=np.int64),
            ranked["status"].map(STATUS_ORDER).to_numpy(),
        )
    )


def add_drivers(
    ranked: pd.DataFrame, models: Mapping[str, Any], candidates: Candidates, features: pd.DataFrame | None
) -> pd.DataFrame:
    """Explain the first :data:`MAX_EXPLAINED_ROWS` ranked rows from the batch's feature table."""
    rows = np.flatnonzero((ranked["status"] == "ranked").to_numpy())[:MAX_EXPLAINED_ROWS]
    inputs = ranked["input_row"].to_numpy()[rows]
    codes = candidates.codes[inputs]
    formulas = [candidates.distinct[c] for c in codes]
    if len(rows) and (features is None or not np.isin(codes, features.index).all()):
        features = featurize(formulas).set_axis(codes)  # too many compositions to keep: these few again
    table = features.loc[codes].reset_index(drop=True) if len(rows) and features is not None else None
    structures = candidates.structures
    kwargs = {"structures": [structures[i] for i in inputs]} if structures is not None else {}
    for task, column in (("stability", "stability_drivers"), ("conductivity", "conductivity_drivers")):
        model = models.get(task)
        ranked[column] = ""
        if model is None or not hasattr(model, "explain") or not len(rows):
            continue
        extra = kwargs if task == "conductivity" else {}
        ranked.loc[rows, column] = call_with_features(model.explain, formulas, table, **extra)
    return ranked
