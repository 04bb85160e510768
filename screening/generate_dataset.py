"""Large enumerations: generated candidates streamed parent by parent into a Parquet dataset (a folder of parts).

``sse-screen generate PARENTS -o FOLDER`` (an output without a suffix) writes ``FOLDER/part-00000.parquet``, one part
per parent, as soon as that parent is done, so memory holds one parent's candidates at a time. Every part has the
same schema (:data:`screening.generate.GENERATED_COLUMNS`, text columns as strings, numbers as float64), so
``pandas.read_parquet(FOLDER)`` and ``dask.dataframe.read_parquet(FOLDER)`` read the folder as one table. Compositions
are deduplicated across parents as in one call (a canonical composition already written is not written again).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["NUMERIC_COLUMNS", "write_candidate_dataset"]

#: Generated columns stored as float64 (the others as strings).
NUMERIC_COLUMNS = (
    "dopant_state",
    "dopant_fraction",
    "codopant_state",
    "codopant_fraction",
    "substitution_probability",
    "plausibility",
)


def write_candidate_dataset(
    parents: Iterable[object], folder: str | Path, *, max_candidates: int | None = None, **options: Any
) -> dict[str, Any]:
    """Generate the variants of each parent in turn and write them as one Parquet part per parent.

    Args:
        parents: Parent formulas or CIF paths, as for :func:`screening.generate.generate_candidates`.
        folder: The dataset folder (created; must not hold Parquet parts already).
        max_candidates: Stop once this many variants are written (parents in input order); None: no limit.
        **options: Passed to :func:`screening.generate.generate_candidates` (fractions, dopants, exclude, ...).

    Returns:
        A summary: ``variants`` (written), ``known`` (with ``known_as``), ``parents`` (used), ``parts`` (files), and
        ``errors`` (the ``parent_error`` of each parent that could not be used).

    Raises:
        ValueError: The folder already holds Parquet parts, or a bad generation option.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sse_screen.features.canonical import canonical_keys
    from sse_screen.screening.generate import GENERATED_COLUMNS, generate_candidates

    folder = Path(folder)
    if folder.is_dir() and any(folder.glob("*.parquet")):
        raise ValueError(f"{folder}: already holds Parquet parts; give a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(c, pa.float64() if c in NUMERIC_COLUMNS else pa.string()) for c in GENERATED_COLUMNS])
    seen: set[str] = set()
    summary: dict[str, Any] = {"variants": 0, "known": 0, "parents": 0, "parts": 0, "errors": []}
    for parent in parents:
        left = None if max_candidates is None else max_candidates - summary["variants"]
        if left is not None and left <= 0:
            break
        table = generate_candidates([parent], max_candidates=left, **options)
        ok = (table["parent_error"] == "").to_numpy()
        keys = pd.Series(canonical_keys(table["formula"].where(ok, "")), dtype=object)
        repeat = ok & keys.isin(seen).to_numpy()
        table = table[~repeat].reset_index(drop=True)
        seen.update(k for k in keys[~repeat & ok] if k is not None)
        summary["errors"] += [e for e in table["parent_error"] if e]
        variants = int(((table["move"] != "parent") & (table["parent_error"] == "")).sum())
        summary["variants"] += variants
        summary["known"] += int((table["known_as"] != "").sum())
        summary["parents"] += int(ok.any())
        for column in GENERATED_COLUMNS:
            numeric = column in NUMERIC_COLUMNS
            table[column] = pd.to_numeric(table[column], errors="coerce") if numeric else table[column].astype(str)
        part = pa.Table.from_pandas(table[list(GENERATED_COLUMNS)], schema=schema, preserve_index=False)
        pq.write_table(part, folder / f"part-{summary['parts']:05d}.parquet")
        summary["parts"] += 1
    return summary
