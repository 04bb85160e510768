"""Rank, predict and featurize a Parquet dataset partition by partition: the same answer as one process, bounded memory.

Each partition (a :class:`screening.parquet_dataset.Piece`) runs the same pure functions as a whole table in one
process (:func:`screening.rank.rank_rows`, :func:`screening.predict.predict_table`,
:func:`screening.featurize.featurize_table`). A *runner* maps a function over the partitions: :class:`SerialRunner`
one after the other in this process, or :class:`screening.distributed.DaskRunner` on a ``dask.distributed`` cluster.

Ranking needs three global steps, each a small reduction on the client between passes over the partitions:

1. **Duplicates** (pass A): each partition returns the 128-bit digests of its distinct canonical compositions
   (:mod:`features.canonical`) and their first rows; the client finds the first row of each composition in the
   whole input, and pass B names every later row with it ``duplicate of row N`` as one process would.
2. **Pareto fronts** (pass B): each partition returns the objective values of its ranked rows in its own fronts
   1..K (K = ``exact_fronts``, 5). A row in global front k <= K is in front <= k of its partition, and every row of
   a dominance chain ending at it is too, so the fronts of the union of these sets are the global fronts up to K;
   deeper rows get ``pareto_rank`` K + 1, which reads "front K + 1 or deeper".
3. **Order** (pass C): the client sorts (score, front, input row) of the ranked rows (~50 bytes a row) into the global
   ``rank``; each partition is written sorted (ranked rows by ``rank``, then rejected, then invalid rows) and the
   first :data:`screening.rank.MAX_EXPLAINED_ROWS` of the global order get their prediction drivers. The parts
   follow the input order: filter ``rank <= N`` for the best rows, or :func:`read_ranking` for the global order.

Per-row columns equal those of :func:`screening.rank.rank_candidates` on the whole input; ``pareto_rank`` is equal
up to front K and ``rank`` equal except among rows with exactly equal scores beyond front K (ties are broken by
front, then input row). A duplicate whose first row is in another partition is predicted from its own composition
(equal to its first row's prediction unless that row had a CIF).
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from sse_screen.screening import parquet_dataset as pds

#: Pareto fronts computed exactly across partitions; deeper rows get ``EXACT_FRONTS + 1``.
EXACT_FRONTS = 5


class Runner(Protocol):
    """Maps a function over argument tuples, one call per partition, results in order."""

    def map(self, fn: Callable[..., Any], args: list[tuple], *, rows: Sequence[int], description: str) -> list: ...


@dataclass
class SerialRunner:
    """Runs the partitions one after the other in this process (bounded memory: one partition at a time)."""

    quiet: bool = True

    def map(self, fn: Callable[..., Any], args: list[tuple], *, rows: Sequence[int], description: str) -> list:
        from sse_screen.screening.progress import progress_reporter

        out = []
        with progress_reporter(total=int(sum(rows)), description=description, quiet=self.quiet) as advance:
            for a, n in zip(args, rows, strict=True):
                out.append(fn(*a))
                advance(int(n))
        return out


@dataclass(frozen=True)
class ModelSpec:
    """Which models to load, by URI per task (None: the worker's shipped default): loaded once per process."""

    uris: tuple[tuple[str, str | None], ...]


_MODELS: dict[ModelSpec, dict] = {}


def models_of(ref: ModelSpec | dict) -> dict:
    """The models of a :class:`ModelSpec`, loaded once per process (a worker loads them at most once), or ``ref``."""
    if not isinstance(ref, ModelSpec):
        return ref
    if ref not in _MODELS:
        from sse_screen.screening.predict import load_models

        _MODELS[ref] = load_models(dict(ref.uris))
    return _MODELS[ref]


# ---- pass A: distinct compositions ------------------------------------------------------------------------------


def _key_codes(keys: np.ndarray) -> tuple[np.ndarray, list]:
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def partition_keys(piece: pds.Piece, formula_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Digests (``S16``) of the distinct compositions of a partition and the input position of each one's first row."""
    from sse_screen.screening.predict import parse_candidates

    candidates = parse_candidates(pds.read_piece(piece, formula_column=formula_column))
    codes, uniques = _key_codes(candidates.keys)
    digests = np.array([hashlib.blake2b(str(k).encode(), digest_size=16).digest() for k in uniques], dtype="S16")
    found, first = np.unique(codes, return_index=True)
    return digests, (first[found >= 0] + piece.offset).astype(np.int64)


def global_first_rows(results: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Per partition, the input position of the first row of the whole input for each of its compositions."""
    if not results:
        return []
    digests = np.concatenate([d for d, _ in results])
    firsts = np.concatenate([f for _, f in results])
    _, inverse = np.unique(digests, return_inverse=True)
    best = np.full(inverse.max() + 1 if len(inverse) else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, inverse, firsts)
    bounds = np.cumsum([0] + [len(d) for d, _ in results])
    return [best[inverse[a:b]] for a, b in itertools.pairwise(bounds)]


# ---- pass B: the per-row funnel ------------------------------------------------------------------------------------


@dataclass
class PartSummary:
    """What pass B of a partition hands back: its ranked rows' order keys and its Pareto candidates."""

    rows: np.ndarray  # input positions of the ranked rows, ascending
    scores: np.ndarray
    candidate_rows: np.ndarray  # ranked rows in fronts 1..K of the partition
    candidate_values: np.ndarray  # their objective values (minimised)
    schema: Any
    counts: dict[str, int] = field(default_factory=dict)


def rank_partition(
    piece: pds.Piece,
    models: ModelSpec | dict,
    options: Any,
    first_of_key: np.ndarray,
    staging: str,
    formula_column: str,
    exact_fronts: int,
) -> PartSummary:
    """Pass B: :func:`screening.rank.rank_rows` on one partition, written to ``staging``; its order keys returned."""
    from sse_screen.screening.mobile_ion import conductivity_weight_off
    from sse_screen.screening.predict import parse_candidates
    from sse_screen.screening.rank import rank_rows
    from sse_screen.screening.ranking import DEFAULT_OBJECTIVES, active_objectives, objective_matrix

    table = pds.read_piece(piece, formula_column=formula_column)
    candidates = parse_candidates(table)
    codes, _ = _key_codes(candidates.keys)
    first_rows = np.where(codes >= 0, np.asarray(first_of_key, dtype=np.int64)[np.maximum(codes, 0)], -1)
    try:
        ranked, _ = rank_rows(
            table,
            models_of(models),
            options=options,
            candidates=candidates,
            first_rows=first_rows,
            row_offset=piece.offset,
            max_fronts=exact_fronts,
        )
    except ValueError:  # the whole batch's problem (clashing columns, bad weights): one message, no bisection
        raise
    except Exception:  # a row that breaks a model: find it, keep the others (a row never fails its partition)
        ranked = _rank_isolating(table, models_of(models), options, first_rows, piece.offset, exact_fronts)
    pds.write_part(ranked, staging, piece.index)
    is_ranked = (ranked["status"] == "ranked").to_numpy()
    in_front = is_ranked & (ranked["pareto_rank"].fillna(exact_fronts + 1).to_numpy(dtype=np.int64) <= exact_fronts)
    weights = conductivity_weight_off(dict(options.weights), options.mobile_ion)
    active = active_objectives(ranked, DEFAULT_OBJECTIVES, weights=weights)
    values = objective_matrix(ranked.loc[in_front], active, mode=options.mode)
    return PartSummary(
        rows=ranked["input_row"].to_numpy(dtype=np.int64)[is_ranked],
        scores=ranked["score"].to_numpy(dtype=np.float64)[is_ranked],
        candidate_rows=ranked["input_row"].to_numpy(dtype=np.int64)[in_front],
        candidate_values=values,
        schema=pds.part_schema(ranked),
        counts=ranked["status"].value_counts().to_dict(),
    )


def _isolating(n: int, run: Callable[[int, int], pd.DataFrame], fail: Callable[[int, str], pd.DataFrame]):
    """``run(0, n)``; where it raises, ``run`` on halves, recursively, until the rows that raise are alone and
    ``fail(row, message)`` stands for each. The other rows get what they get in a whole batch (their values depend
    on their composition only; duplicates name their first row by input position)."""

    def go(lo: int, hi: int) -> pd.DataFrame:
        try:
            return run(lo, hi)
        except Exception as exc:
            if hi - lo == 1:
                return fail(lo, " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
            mid = (lo + hi) // 2
            return _concat([go(lo, mid), go(mid, hi)])

    return go(0, n)


def _concat(halves: list[pd.DataFrame]) -> pd.DataFrame:
    """Halves of a partition as one table: the column order of the widest, mixed dtypes as objects (None missing)."""
    for column in set().union(*(h.columns for h in halves)):
        if len({str(h[column].dtype) if column in h else "" for h in halves}) > 1:
            for h in halves:
                if column in h:
                    h[column] = h[column].astype(object).where(h[column].notna(), None)
    out = pd.concat(halves, ignore_index=True)
    widest = list(max(halves, key=lambda h: h.shape[1]).columns)
    return out[widest + [c for c in out.columns if c not in widest]]


def _rank_isolating(
    table: pd.DataFrame, models: dict, options: Any, first_rows: np.ndarray, offset: int, exact_fronts: int
) -> pd.DataFrame:
    """:func:`screening.rank.rank_rows` with :func:`_isolating`: a row that raises is ``invalid``, the error its
    reason."""
    from sse_screen.screening.rank import rank_rows

    def run(lo: int, hi: int) -> pd.DataFrame:
        part = table.iloc[lo:hi].reset_index(drop=True)
        kwargs = {"first_rows": first_rows[lo:hi], "row_offset": offset + lo, "max_fronts": exact_fronts}
        return rank_rows(part, models, options=options, **kwargs)[0]

    def fail(row: int, message: str) -> pd.DataFrame:
        failed = table.iloc[row : row + 1].reset_index(drop=True)
        failed.insert(0, "input_row", [offset + row])
        return failed.assign(status="invalid", reason=f"internal error on this row: {message}", warnings="")

    return _isolating(len(table), run, fail)


def global_ranks(
    summaries: list[PartSummary], *, order_by: str, exact_fronts: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per partition, the global ``rank`` and ``pareto_rank`` of its ranked rows (order of ``PartSummary.rows``)."""
    from sse_screen.screening.ranking import pareto_rank

    rows = np.concatenate([s.rows for s in summaries]) if summaries else np.zeros(0, dtype=np.int64)
    scores = np.concatenate([s.scores for s in summaries]) if summaries else np.zeros(0)
    front = np.full(len(rows), exact_fronts + 1, dtype=np.int64)
    cand_rows = np.concatenate([s.candidate_rows for s in summaries]) if summaries else rows[:0]
    if len(cand_rows):
        values = np.vstack([s.candidate_values for s in summaries if len(s.candidate_rows)])
        front[np.searchsorted(rows, cand_rows)] = pareto_rank(values, max_fronts=exact_fronts)
    s = np.nan_to_num(scores, nan=-np.inf)
    order = np.lexsort((rows, front, -s)) if order_by == "score" else np.lexsort((rows, -s, front))
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(1, len(rows) + 1)
    bounds = np.cumsum([0] + [len(x.rows) for x in summaries])
    return [(rank[a:b], front[a:b]) for a, b in itertools.pairwise(bounds)]


# ---- pass C: global order, drivers, final parts -------------------------------------------------------------------


def finish_partition(
    index: int,
    staging: str,
    output: str,
    ranks: tuple[np.ndarray, np.ndarray],
    models: ModelSpec | dict,
    options: Any,
    schema: Any,
) -> int:
    """Pass C: global ``rank``/``pareto_rank`` in, rows sorted, drivers for the best rows, the final part written."""
    from sse_screen.screening.mobile_ion import blank_conductivity
    from sse_screen.screening.predict import parse_candidates
    from sse_screen.screening.rank import MAX_EXPLAINED_ROWS, add_drivers, sort_order

    ranked = pds.read_part(staging, index)
    rows = np.flatnonzero((ranked["status"] == "ranked").to_numpy())
    rank, front = ranks
    pareto = pd.array([pd.NA] * len(ranked), dtype="Int64")
    position = pd.array([pd.NA] * len(ranked), dtype="Int64")
    pareto[rows], position[rows] = front, rank
    ranked["pareto_rank"], ranked["rank"] = pareto, position
    ranked = ranked.iloc[sort_order(ranked)].reset_index(drop=True)
    if options.explain:
        best = np.flatnonzero((ranked["rank"].fillna(MAX_EXPLAINED_ROWS + 1) <= MAX_EXPLAINED_ROWS).to_numpy())
        subset = ranked.iloc[best].reset_index(drop=True)
        inputs = [c for c in ("formula", "cif_path") if c in subset.columns]
        explained = add_drivers(
            subset.assign(input_row=np.arange(len(subset))),
            models_of(models),
            parse_candidates(subset[inputs]),
            None,
        )
        for column in ("stability_drivers", "conductivity_drivers"):
            ranked[column] = ""
            if len(best):
                ranked.loc[best, column] = explained[column].to_numpy(dtype=object)
    ranked = blank_conductivity(ranked, options.mobile_ion)
    pds.write_part(ranked, output, index, schema=schema)
    return len(ranked)


@dataclass
class RankResult:
    """Counts of a dataset ranking (status -> rows) and where it was written."""

    output: Path
    counts: dict[str, int]
    n_parts: int


def rank_pieces(
    pieces: list[pds.Piece],
    output: str | Path,
    models: ModelSpec | dict,
    *,
    options: Any,
    runner: Runner,
    formula_column: str = "formula",
    exact_fronts: int = EXACT_FRONTS,
) -> RankResult:
    """Rank a dataset given as pieces into the dataset ``output`` (module docstring: passes A, B and C)."""
    import pyarrow as pa

    output = pds.prepare_output(output)
    staging = str(output / pds.STAGING)
    rows = pds.piece_row_counts(pieces).tolist()
    keys = runner.map(partition_keys, [(p, formula_column) for p in pieces], rows=rows, description="compositions")
    firsts = global_first_rows(keys)
    del keys  # the digests: ~50 bytes a distinct composition on the client
    summaries: list[PartSummary] = runner.map(
        rank_partition,
        [(p, models, options, f, staging, formula_column, exact_fronts) for p, f in zip(pieces, firsts, strict=True)],
        rows=rows,
        description="ranking",
    )
    schema = pds.unify_schemas([s.schema for s in summaries])
    if options.explain:
        schema = schema.append(pa.field("stability_drivers", pa.string()))
        schema = schema.append(pa.field("conductivity_drivers", pa.string()))
    ranks = global_ranks(summaries, order_by=options.order_by, exact_fronts=exact_fronts)
    runner.map(
        finish_partition,
        [(p.index, staging, str(output), r, models, options, schema) for p, r in zip(pieces, ranks, strict=True)],
        rows=rows,
        description="ordering",
    )
    shutil.rmtree(staging, ignore_errors=True)
    counts: dict[str, int] = {}
    for s in summaries:
        for k, v in s.counts.items():
            counts[k] = counts.get(k, 0) + int(v)
    return RankResult(output, counts, len(pieces))


# ---- predict and featurize: row-wise, two cheap passes for one schema ---------------------------------------------


def map_partition(kind: str, piece: pds.Piece, models: ModelSpec | dict | None, preset: str, staging: str, column: str):
    """Pass 1 of predict/featurize on one partition: the row-wise function, written to ``staging``; its schema."""
    from sse_screen.screening.featurize import featurize_table
    from sse_screen.screening.predict import predict_table

    table = pds.read_piece(piece, formula_column=column)

    def run(lo: int, hi: int) -> pd.DataFrame:
        part = table.iloc[lo:hi].reset_index(drop=True)
        if kind == "predict":
            return predict_table(part, models_of(models))
        return featurize_table(part, preset=preset)

    def fail(row: int, message: str) -> pd.DataFrame:
        return table.iloc[row : row + 1].reset_index(drop=True).assign(error=f"internal error on this row: {message}")

    try:
        result = run(0, len(table))
    except ValueError:  # the whole batch's problem (clashing columns): one message
        raise
    except Exception:  # a row that breaks a model: find it, keep the others
        result = _isolating(len(table), run, fail)
    pds.write_part(result, staging, piece.index)
    return pds.part_schema(result), int((result["error"] != "").sum())


def conform_partition(index: int, staging: str, output: str, schema: Any) -> int:
    """Pass 2: a staged part cast to the dataset's one schema and written as the final part."""
    table = pds.read_part(staging, index)
    pds.write_part(table, output, index, schema=schema)
    return len(table)


def map_pieces(
    kind: str,
    pieces: list[pds.Piece],
    output: str | Path,
    *,
    runner: Runner,
    models: ModelSpec | dict | None = None,
    preset: str = "electrolyte",
    formula_column: str = "formula",
) -> tuple[Path, int]:
    """Predict (``kind="predict"``) or featurize every partition into the dataset ``output``; returns it and the
    number of rows with an error."""
    output = pds.prepare_output(output)
    staging = str(output / pds.STAGING)
    rows = pds.piece_row_counts(pieces).tolist()
    results = runner.map(
        map_partition,
        [(kind, p, models, preset, staging, formula_column) for p in pieces],
        rows=rows,
        description="predicting" if kind == "predict" else "featurizing",
    )
    schema = pds.unify_schemas([s for s, _ in results])
    runner.map(
        conform_partition, [(p.index, staging, str(output), schema) for p in pieces], rows=rows, description="writing"
    )
    shutil.rmtree(staging, ignore_errors=True)
    return output, sum(n for _, n in results)


def read_ranking(output: str | Path, *, top: int | None = None) -> pd.DataFrame:
    """A ranked dataset as one table in the global order of :func:`screening.rank.rank_candidates` (``top`` rows)."""
    from sse_screen.screening.rank import sort_order

    table = pd.read_parquet(output)
    ordered = table.iloc[sort_order(table)].reset_index(drop=True)
    return ordered if top is None else ordered.head(top)
