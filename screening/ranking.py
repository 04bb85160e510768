"""Rank a predictions table: a desirability score, Pareto fronts, duplicates, and a status and reason for every row.

Pure functions over pandas/numpy. :func:`score` and the checks are row-wise (map them over chunks or partitions);
:func:`pareto_rank` and the final order need the ranked rows of the whole table (reduce them once, on the distinct
compositions).

Default score (Derringer desirability). Each objective ``i`` present in the table maps its value ``x`` (mode-adjusted,
see :func:`screening.checks.objective_value`) to a desirability in (0, 1) by a logistic curve::

    d_i = 1 / (1 + exp(-(x - center_i) / scale_i))   (maximised objectives)
    d_i = 1 / (1 + exp(+(x - center_i) / scale_i))   (minimised objectives)

and the score is the weighted geometric mean ``score = exp(sum_i w_i ln d_i / sum_i w_i)``, in (0, 1], so that one
very poor property (unstable, electronically conducting) cannot be bought back by the others. A missing value counts
as ``d = 1e-6`` (worst). Defaults (:data:`DEFAULT_OBJECTIVES`; ``d = 0.5`` at the centre):

============  ========================  =========  ===================  =============  ======
objective     column                    direction  centre               scale          weight
============  ========================  =========  ===================  =============  ======
stability     e_hull_ev_per_atom        minimise   0.05 eV/atom         0.025 eV/atom  1.0
conductivity  log10_sigma_s_per_cm      maximise   -4 (1e-4 S/cm)       1.0 decade     1.0 (expected)
band_gap      band_gap_ev               maximise   2.0 eV               0.5 eV         0.5
cost          cost_usd_per_kg (log10)   minimise   2 (100 USD/kg)       0.5 decade     0.25
============  ========================  =========  ===================  =============  ======

"(expected)": in ``mean`` mode the conductivity's desirability is its expectation over the model's predictive
distribution ``Normal(mean, log10_sigma_std)`` (:func:`desirability`), so ``-2.0 +- 4.1`` (a guess) scores below
``-2.1 +- 0.3``. Objectives whose column is absent are left out (weights renormalise); ``weights={"cost": 0}``
leaves one out too.
The Pareto rank uses the same objectives (those with weight > 0) with the same mode-adjusted values.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

from sse_screen.screening.checks import (
    CheckConfig,
    Mode,
    check_limits,
    objective_value,
    run_checks,
    uncertainty_columns,
)
from sse_screen.screening.mobile_ion import blank_conductivity, conductivity_weight_off

__all__ = [
    "DEFAULT_OBJECTIVES",
    "OUTPUT_COLUMNS",
    "Objective",
    "active_objectives",
    "desirability",
    "objective_matrix",
    "pareto_rank",
    "rank_table",
    "score",
]

OrderBy = Literal["score", "pareto"]
MIN_DESIRABILITY: Final[float] = 1e-6
#: Columns :func:`rank_table` appends (``cost_usd_per_kg`` too when the input lacks it).
OUTPUT_COLUMNS: Final[tuple[str, ...]] = (
    "status",
    "reason",
    "warnings",
    "duplicate_of",
    "score",
    "pareto_rank",
    "rank",
)


@dataclass(frozen=True, kw_only=True)
class Objective:
    """One property to optimise.

    Attributes:
        name: Short name used for weights (``"stability"``).
        column: Prediction column holding the mean (``"e_hull_ev_per_atom"``).
        maximize: True if larger is better.
        center: Value with desirability 0.5, in the column's unit (after log10 if ``log10``).
        scale: Width of the logistic curve, same unit; > 0.
        weight: Weight in the geometric mean; 0 leaves the objective out of score and Pareto rank.
        log10: Take log10 of the value first (prices).
        expected: In ``mean`` mode, score the expected desirability over the predictive distribution
            (``Normal(mean, std)`` from the ``<stem>_std`` column) instead of the desirability of the mean, so a
            wide-interval guess counts for less than a confident prediction of the same value.
    """

    name: str
    column: str
    maximize: bool
    center: float
    scale: float
    weight: float = 1.0
    log10: bool = False
    expected: bool = False


DEFAULT_OBJECTIVES: Final[tuple[Objective, ...]] = (
    Objective(name="stability", column="e_hull_ev_per_atom", maximize=False, center=0.05, scale=0.025, weight=1.0),
    Objective(name="conductivity", column="log10_sigma_s_per_cm", maximize=True, center=-4.0, scale=1.0, expected=True),
    Objective(name="band_gap", column="band_gap_ev", maximize=True, center=2.0, scale=0.5, weight=0.5),
    Objective(name="cost", column="cost_usd_per_kg", maximize=False, center=2.0, scale=0.5, weight=0.25, log10=True),
)


def active_objectives(
    table: pd.DataFrame,
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    *,
    weights: Mapping[str, float] | None = None,
) -> list[Objective]:
    """The objectives whose column is in ``table`` and whose weight (after ``weights`` overrides) is > 0.

    Raises:
        ValueError: A weight names no objective, is negative or not finite, or a scale is not positive.
    """
    weights = dict(weights or {})
    unknown = sorted(set(weights) - {o.name for o in objectives})
    if unknown:
        raise ValueError(f"Unknown objective(s) in weights: {unknown}; known: {[o.name for o in objectives]}")
    out = []
    for obj in objectives:
        w = float(weights.get(obj.name, obj.weight))
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"Weight of {obj.name!r} must be a finite number >= 0, got {w}")
        if not obj.scale > 0:
            raise ValueError(f"Scale of {obj.name!r} must be > 0, got {obj.scale}")
        if w > 0 and obj.column in table.columns:
            out.append(dataclasses.replace(obj, weight=w))
    return out


def _values(table: pd.DataFrame, obj: Objective, mode: Mode, k: float | None) -> np.ndarray:
    x = objective_value(table, obj.column, maximize=obj.maximize, mode=mode, k=k)
    if obj.log10:
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log10(x)
    return x


def desirability(values: np.ndarray, obj: Objective, std: np.ndarray | None = None) -> np.ndarray:
    """Logistic desirability in (0, 1) of (log10-transformed, if set) values; NaN stays NaN.

    With ``std`` (same unit as the values), the expected desirability of ``Normal(values, std)``, by the probit
    approximation ``E[logistic(z)] ~= logistic(mu / sqrt(1 + pi sigma^2 / 8))`` (MacKay 1992), with ``mu`` and
    ``sigma`` in units of the curve's scale; a NaN std counts as 0.
    """
    z = (np.asarray(values, dtype=np.float64) - obj.center) / obj.scale
    if std is not None:
        sigma = np.nan_to_num(np.asarray(std, dtype=np.float64), nan=0.0) / obj.scale
        z = z / np.sqrt(1.0 + np.pi * sigma**2 / 8.0)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z if obj.maximize else z))


def score(
    table: pd.DataFrame,
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    *,
    weights: Mapping[str, float] | None = None,
    mode: Mode = "mean",
    k: float | None = None,
) -> np.ndarray:
    """Default score of every row (module docstring): weighted geometric mean of desirabilities, in (0, 1].

    Row-wise: the score of a row does not depend on the other rows. NaN where no objective is present.
    """
    active = active_objectives(table, objectives, weights=weights)
    if not active:
        return np.full(len(table), np.nan)
    total = np.zeros(len(table))
    for obj in active:
        std_column = uncertainty_columns(obj.column)["std"]
        use_std = obj.expected and mode == "mean" and not obj.log10 and std_column in table.columns
        std = pd.to_numeric(table[std_column], errors="coerce").to_numpy(dtype=np.float64) if use_std else None
        d = desirability(_values(table, obj, mode, k), obj, std)
        total += obj.weight * np.log(np.clip(np.nan_to_num(d, nan=0.0), MIN_DESIRABILITY, 1.0))
    return np.exp(total / sum(o.weight for o in active))


def objective_matrix(
    table: pd.DataFrame,
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    *,
    weights: Mapping[str, float] | None = None,
    mode: Mode = "mean",
    k: float | None = None,
) -> np.ndarray:
    """``(n, m)`` values to minimise (maximised objectives negated; NaN -> +inf), one column per active objective."""
    active = active_objectives(table, objectives, weights=weights)
    cols = [(-1.0 if o.maximize else 1.0) * _values(table, o, mode, k) for o in active]
    out = np.column_stack(cols) if cols else np.zeros((len(table), 0))
    return np.where(np.isnan(out), np.inf, out)


def pareto_rank(values: np.ndarray, *, max_fronts: int | None = None) -> np.ndarray:
    """Non-dominated sorting: front number of every row (1 = not dominated by any row), all objectives minimised.

    Row ``a`` dominates ``b`` if it is no worse in every objective and better in one; equal rows share a front.
    Algorithms: identical rows are merged first, the rest sorted lexicographically (a dominating row always comes
    first) and each placed in the first front that does not dominate it, found by bisection over the fronts (ENS-BS,
    Zhang et al. 2015, IEEE TEVC 19:201). The front test is a bisection in a sorted list for two objectives, a 2-D
    staircase query for three (O(n log n) overall) and one vectorised comparison against the front's members for
    four or more (O(n x front size)). ``benchmarks/pareto.py`` times them.

    Args:
        values: ``(n, m)`` objective values, smaller is better; +inf allowed (worst), NaN not.
        max_fronts: Report fronts beyond this as ``max_fronts + 1`` (exact up to it; saves time with 4+ objectives).

    Returns:
        ``(n,)`` int64 front numbers, 1-based.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"Expected a 2-D (rows x objectives) array, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("Objective values contain NaN; map missing values to +inf first")
    n, m = values.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if m == 0:
        return np.ones(n, dtype=np.int64)
    finite_max = np.where(np.isfinite(values), values, -np.inf).max(axis=0)
    values = np.where(np.isposinf(values), np.where(np.isfinite(finite_max), finite_max, 0.0) + 1.0, values)
    uniq, inverse = np.unique(values, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if m == 1:
        ranks = np.arange(1, len(uniq) + 1)
    elif m == 2:
        ranks = _sweep_2d(uniq)
    elif m == 3:
        ranks = _sweep_3d(uniq)
    else:
        ranks = _sweep_nd(uniq, max_fronts)
    if max_fronts is not None:
        ranks = np.minimum(ranks, max_fronts + 1)
    return ranks[inverse].astype(np.int64)


def _sweep_2d(points: np.ndarray) -> np.ndarray:
    """Fronts of distinct 2-D points sorted lexicographically (as ``np.unique`` returns them)."""
    mins: list[float] = []  # best (smallest) second objective of each front so far, increasing with the front
    ranks = np.empty(len(points), dtype=np.int64)
    for i, f2 in enumerate(points[:, 1].tolist()):
        front = bisect.bisect_right(mins, f2)
        if front == len(mins):
            mins.append(f2)
        else:
            mins[front] = f2
        ranks[i] = front + 1
    return ranks


def _sweep_3d(points: np.ndarray) -> np.ndarray:
    """Fronts of distinct 3-D points sorted lexicographically (ENS with binary search over fronts).

    Every earlier point has a first objective no larger, so a point is dominated by a front exactly when some
    member is no worse in objectives 2 and 3: a query on the front's 2-D staircase (members not dominated in the
    (2, 3) projection, objective 2 increasing, objective 3 decreasing). If front ``k`` dominates a point, so does
    front ``k - 1``, hence the bisection over fronts.
    """
    stairs: list[tuple[list[float], list[float]]] = []
    ranks = np.empty(len(points), dtype=np.int64)

    def dominated(front: int, f2: float, f3: float) -> bool:
        xs, ys = stairs[front]
        j = bisect.bisect_right(xs, f2) - 1
        return j >= 0 and ys[j] <= f3

    for i, (f2, f3) in enumerate(points[:, 1:].tolist()):
        lo, hi = 0, len(stairs)
        while lo < hi:
            mid = (lo + hi) // 2
            if dominated(mid, f2, f3):
                lo = mid + 1
            else:
                hi = mid
        if lo == len(stairs):
            stairs.append(([f2], [f3]))
        else:
            xs, ys = stairs[lo]
            j = bisect.bisect_left(xs, f2)
            end = j
            while end < len(xs) and ys[end] >= f3:
                end += 1
            xs[j:end] = [f2]
            ys[j:end] = [f3]
        ranks[i] = lo + 1
    return ranks


def _sweep_nd(points: np.ndarray, max_fronts: int | None) -> np.ndarray:
    """Fronts of distinct points (any number of objectives) sorted lexicographically: ENS-BS (Zhang et al. 2015).

    As :func:`_sweep_3d`, but each front is checked by one vectorised comparison against its members, of which only
    those not dominated in objectives 2.. by a later member are kept (the others cannot decide a query). With
    ``max_fronts``, points beyond it are not stored (exact for the fronts up to ``max_fronts``: a point dominated
    by a deeper point is also dominated by front ``max_fronts``).
    """
    n, m = points.shape
    fronts: list[np.ndarray] = []  # (m - 1, capacity) per front: objectives 2.. of its members, column-major
    sizes: list[int] = []
    ranks = np.empty(n, dtype=np.int64)
    tail = points[:, 1:]
    cap = max_fronts if max_fronts is not None else n

    def dominated(front: int, p: np.ndarray) -> bool:
        return bool((fronts[front][:, : sizes[front]] <= p).all(axis=0).any())

    for i, (p, p_col) in enumerate(zip(tail.tolist(), tail[:, :, None], strict=True)):
        lo, hi = 0, len(fronts)
        while lo < hi:
            mid = (lo + hi) // 2
            if dominated(mid, p_col):
                lo = mid + 1
            else:
                hi = mid
        ranks[i] = lo + 1
        if lo >= cap:
            continue
        if lo == len(fronts):
            fronts.append(np.empty((m - 1, 16)))
            sizes.append(0)
        cols, size = fronts[lo], sizes[lo]
        # members p dominates in objectives 2.. can never decide a later query that p does not: drop them
        keep = (cols[:, :size] < p_col).any(axis=0)
        if not keep.all():
            size = int(keep.sum())
            cols[:, :size] = cols[:, : len(keep)][:, keep]
        if size == cols.shape[1]:
            cols = fronts[lo] = np.hstack([cols, np.empty_like(cols)])
        cols[:, size] = p
        sizes[lo] = size + 1
    return ranks


def _join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise ``"a; b"`` of two object arrays of strings, skipping empty parts."""
    out = np.asarray(a, dtype=object).copy()
    for i in np.flatnonzero(b != ""):
        out[i] = f"{a[i]}; {b[i]}" if a[i] else b[i]
    return out


def rank_table(
    table: pd.DataFrame,
    *,
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    weights: Mapping[str, float] | None = None,
    config: CheckConfig | None = None,
    mode: Mode = "mean",
    k: float | None = None,
    order_by: OrderBy = "score",
    formula_column: str = "formula",
    max_fronts: int | None = None,
    checks: pd.DataFrame | None = None,
    first_rows: np.ndarray | None = None,
    row_offset: int = 0,
) -> pd.DataFrame:
    """Check, score, Pareto-rank and order a predictions table (the output of ``predict_table``).

    Status, in order of precedence: ``invalid`` (the formula does not parse, or the ``error`` column is non-empty);
    ``rejected`` (a chemistry check or limit failed, or the row repeats the reduced composition of an earlier row:
    reason ``duplicate of row N``, N counted from 1 like the rows of the file, or the index label when the table
    has its own index); else ``ranked``. Only ranked rows get ``pareto_rank`` and ``rank``.

    A mobile ion (``config.mobile_ion``) without a conductivity model gets empty conductivity columns and no
    conductivity objective (:mod:`screening.mobile_ion`).

    Args:
        table: Predictions table with a formula column; other columns are carried through unchanged.
        objectives: Objectives of the score and the Pareto rank (used when their column is present).
        weights: Objective name -> weight overrides (0 leaves an objective out).
        config: Chemistry checks and limits; defaults to ``CheckConfig()``.
        mode: ``"mean"`` or, to choose what to test next, ``"optimistic"`` / ``"pessimistic"`` (interval bounds;
            see :func:`screening.checks.objective_value`). Applies to the score, the Pareto rank and the limits.
        k: Standard deviations for the bounds (None: the table's lower/upper columns, else 1).
        order_by: ``"score"`` (descending; ties by Pareto rank then input order) or ``"pareto"`` (front, then
            score descending, then input order).
        formula_column: Name of the formula column.
        max_fronts: Report deeper Pareto fronts as ``max_fronts + 1`` (see :func:`pareto_rank`).
        checks: The output of :func:`screening.checks.run_checks` for the same rows with the same ``config``, when
            the caller already ran it (``rank_candidates`` does, for its funnel); None runs the checks here.
        first_rows: For one partition of a larger input: per row, the 0-based input position of the first row of
            the whole input with the same composition (-1: no composition); duplicates are then found across
            partitions and named by input position. None: duplicates are found within ``table``.
        row_offset: Input position of the partition's first row (with ``first_rows``).

    Returns:
        The input columns, ``cost_usd_per_kg`` (USD/kg; added if absent) and :data:`OUTPUT_COLUMNS`: ``status``,
        ``reason`` ("" when ranked), ``warnings`` (soft flags, "" if none), ``duplicate_of`` (index label of the
        first row with the same composition, i.e. its 0-based position for a default index, like ``input_row`` of
        ``rank_candidates``; else <NA>), ``score`` (0-1, NaN for invalid rows), ``pareto_rank`` and ``rank``
        (Int64, 1 = best, <NA> unless ranked). Row order and index are the input's.

    Raises:
        ValueError: Missing formula column, input columns that clash with the output columns, bad weights/mode.
    """
    if formula_column not in table.columns:
        raise ValueError(f"No formula column {formula_column!r}; columns are {list(table.columns)}")
    if order_by not in ("score", "pareto"):
        raise ValueError(f"Unknown {order_by=}; expected 'score' or 'pareto'")
    clashes = sorted(set(OUTPUT_COLUMNS) & set(table.columns))
    if clashes:
        raise ValueError(f"input columns clash with ranking output columns: {', '.join(clashes)}")
    config = config or CheckConfig()
    if checks is None:
        checks = run_checks(table[formula_column], config=config)
    elif len(checks) != len(table):
        raise ValueError(f"checks has {len(checks)} rows for a table of {len(table)}")
    # no Li-trained conductivity for another mobile ion: empty columns, objective out of score and Pareto front
    out = blank_conductivity(table, config.mobile_ion).copy()
    if any(o.name == "conductivity" for o in objectives):
        weights = conductivity_weight_off(dict(weights or {}), config.mobile_ion)
    if "cost_usd_per_kg" not in out.columns:
        out["cost_usd_per_kg"] = checks["cost_usd_per_kg"].to_numpy()
    n = len(out)
    status = checks["status"].to_numpy(dtype=object).copy()
    reason = checks["reason"].to_numpy(dtype=object).copy()
    warn = checks["warnings"].to_numpy(dtype=object).copy()

    if "error" in out.columns:
        err = out["error"].fillna("").astype(str).to_numpy(dtype=object)
        bad = err != ""  # the prediction's reason (e.g. an unreadable CIF) says more than "empty formula"
        status[bad], reason[bad] = "invalid", err[bad]
    limits = check_limits(out, config=config, mode=mode, k=k)
    fail = ~limits.passed & (status != "invalid")
    reason = _join(reason, np.where(fail, limits.reason, ""))
    status[fail] = "rejected"

    labels = out.index.to_numpy(dtype=object)
    if first_rows is None:
        comp = checks["composition_id"].to_numpy()
        first_pos = pd.Series(np.arange(n)).groupby(comp).transform("min").to_numpy()
        dup = (comp >= 0) & (first_pos != np.arange(n)) & (status != "invalid")
        # messages count rows from 1 like the file (cli helper's edit); a table with its own index labels names them
        names = np.arange(1, n + 1, dtype=object) if out.index.equals(pd.RangeIndex(n)) else labels
        first_label = labels[first_pos] if n else labels
        first_name = names[first_pos] if n else names
    else:  # one partition of a larger input (screening.partitioned): first rows are positions in the whole input
        first_pos = np.asarray(first_rows, dtype=np.int64)
        dup = (first_pos >= 0) & (first_pos != row_offset + np.arange(n)) & (status != "invalid")
        first_label, first_name = first_pos.astype(object), (first_pos + 1).astype(object)
    dup_reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(dup):
        dup_reason[i] = f"duplicate of row {first_name[i]} (same composition)"
    reason = _join(dup_reason, reason)
    status[dup] = "rejected"
    status[status == "ok"] = "ranked"

    active = active_objectives(out, objectives, weights=weights)
    values = objective_matrix(out, active, mode=mode, k=k)
    ranked = status == "ranked"
    for j, obj in enumerate(active):
        missing = ranked & ~np.isfinite(values[:, j])
        warn = _join(warn, np.where(missing, f"no {obj.name} value (counted as worst)", ""))
    if "in_domain" in out.columns:
        outside = ranked & ~out["in_domain"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        warn = _join(warn, np.where(outside, "conductivity prediction outside the model's domain", ""))
    scores = score(out, active, mode=mode, k=k)
    scores[status == "invalid"] = np.nan

    pareto = pd.array([pd.NA] * n, dtype="Int64")
    rank = pd.array([pd.NA] * n, dtype="Int64")
    rows = np.flatnonzero(ranked)
    if len(rows):
        front = pareto_rank(values[rows], max_fronts=max_fronts)
        s = np.nan_to_num(scores[rows], nan=-np.inf)
        # np.lexsort: the last key is the primary one; input position breaks every tie (deterministic)
        order = np.lexsort((rows, front, -s)) if order_by == "score" else np.lexsort((rows, -s, front))
        position = np.empty(len(rows), dtype=np.int64)
        position[order] = np.arange(1, len(rows) + 1)
        pareto[rows] = front
        rank[rows] = position
    dup_of = pd.array([pd.NA] * n, dtype=object)
    dup_of[dup] = first_label[dup]
    out["status"] = status
    out["reason"] = reason
    out["warnings"] = warn
    out["duplicate_of"] = dup_of
    out["score"] = scores
    out["pareto_rank"] = pareto
    out["rank"] = rank
    return out
