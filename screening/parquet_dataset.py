"""Parquet datasets in and out, one bounded piece at a time: what each partition of a large run reads and writes.

A dataset is a folder of Parquet part files (nested folders allowed; names starting with ``_`` or ``.`` are
skipped, like pyarrow does) or a glob such as ``runs/*.parquet``. Its rows are numbered in the order of the sorted
file paths, then row groups, then rows: the order ``pandas.read_parquet(folder)`` returns them in. The input is
split into :class:`Piece` s of at most ``rows_per_piece`` rows (a piece never spans two files), each read on its own.

Output datasets are folders of ``part-00000.parquet``, ``part-00001.parquet``, ... (one per input piece, in input
order), written to a temporary name and renamed, so a task that is run twice (a retried Dask task) leaves one file.
All parts share one schema (:func:`unify_schemas`), so ``pandas.read_parquet(folder)`` reads them as one table.
"""

from __future__ import annotations

import glob
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sse_screen.screening.table_io import InputError, normalise_candidates

PARQUET_SUFFIXES = (".parquet", ".pq")
#: Rows per piece (partition) unless the caller says otherwise.
DEFAULT_PIECE_ROWS = 100_000
#: Folder of an output dataset holding the parts of the first pass (skipped by readers: leading underscore).
STAGING = "_staging"


@dataclass(frozen=True)
class Piece:
    """A slice of one Parquet file: rows ``start:stop`` of its row groups ``row_groups`` (concatenated).

    Attributes:
        index: Position of the piece in the dataset (names its output part).
        path: The Parquet file.
        row_groups: Row groups read for this piece.
        start: First row, counted within the concatenated ``row_groups``.
        stop: One past the last row, same count.
        offset: Position of the piece's first row in the whole dataset (``input_row`` of that row).
    """

    index: int
    path: str
    row_groups: tuple[int, ...]
    start: int
    stop: int
    offset: int

    @property
    def n_rows(self) -> int:
        return self.stop - self.start


def dataset_files(source: str | Path) -> list[Path] | None:
    """The part files if ``source`` is a Parquet dataset (a folder holding Parquet files, or a glob), else None.

    A single ``.parquet`` file is not a dataset (it reads as a table), but :func:`plan_pieces` splits it too.

    Raises:
        InputError: A glob that matches no Parquet file.
    """
    text = str(source)
    if any(ch in text for ch in "*?[") and not Path(text).exists():
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if p.lower().endswith(PARQUET_SUFFIXES))
        if not files:
            raise InputError(f"{text}: the pattern matches no Parquet file")
        return files
    path = Path(text)
    if not path.is_dir():
        return None
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in PARQUET_SUFFIXES
        and not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts)
    )
    return files or None


def plan_pieces(files: list[Path], *, rows_per_piece: int = DEFAULT_PIECE_ROWS) -> list[Piece]:
    """Split Parquet files into pieces of at most ``rows_per_piece`` rows, by row group (footers only are read).

    Raises:
        InputError: A file that is not readable Parquet, or a dataset without rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows_per_piece < 1:
        raise InputError(f"rows per partition must be >= 1, got {rows_per_piece}")
    pieces: list[Piece] = []
    offset = 0
    for path in files:
        try:
            meta = pq.ParquetFile(path).metadata
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        groups: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if groups and rows + n > rows_per_piece:
                offset = _add(pieces, str(path), groups, rows, offset, rows_per_piece)
                groups, rows = [], 0
            groups.append(g)
            rows += n
        if groups:
            offset = _add(pieces, str(path), groups, rows, offset, rows_per_piece)
    if offset == 0:
        raise InputError(f"{files[0].parent if files else 'dataset'}: the Parquet dataset has no rows")
    return pieces


def _add(pieces: list[Piece], path: str, groups: list[int], rows: int, offset: int, size: int) -> int:
    for start in range(0, rows, size):  # a row group larger than a piece is sliced
        stop = min(rows, start + size)
        pieces.append(Piece(len(pieces), path, tuple(groups), start, stop, offset))
        offset += stop - start
    return offset


def read_piece(piece: Piece, *, formula_column: str = "formula", columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of a piece as :func:`screening.table_io.read_candidates` returns a table (RangeIndex).

    Raises:
        InputError: No formula column.
    """
    import pyarrow.parquet as pq

    table = pq.ParquetFile(piece.path).read_row_groups(list(piece.row_groups), columns=columns)
    frame = table.slice(piece.start, piece.n_rows).to_pandas().reset_index(drop=True)
    return normalise_candidates(frame, Path(piece.path), formula_column=formula_column)


def part_path(folder: str | Path, index: int) -> Path:
    return Path(folder) / f"part-{index:05d}.parquet"


def write_part(table: pd.DataFrame, folder: str | Path, index: int, *, schema=None) -> Path:
    """Write one part atomically (temporary name, then rename), cast to ``schema`` when given."""
    import pyarrow.parquet as pq

    path = part_path(folder, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(to_arrow(table, schema), temporary)
    os.replace(temporary, path)
    return path


def read_part(folder: str | Path, index: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(part_path(folder, index)).to_pandas()


def prepare_output(folder: str | Path) -> Path:
    """Create the output folder; remove the parts of an earlier run (only ``part-*.parquet`` and the staging).

    Raises:
        InputError: ``folder`` is a file, or its parent folder does not exist.
    """
    import shutil

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is a file; the output dataset is a folder")
    if not folder.parent.exists():
        raise InputError(f"{folder}: folder {folder.parent} does not exist")
    folder.mkdir(exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    shutil.rmtree(folder / STAGING, ignore_errors=True)
    return folder


def unify_schemas(schemas: list):
    """One schema for all parts: a column's type where it has values (null elsewhere); numbers that differ
    (int/float) become float64, anything else that differs becomes string."""
    import pyarrow as pa

    names: list[str] = []
    types: dict[str, list] = {}
    for schema in schemas:
        for field in schema:
            if field.name not in types:
                names.append(field.name)
                types[field.name] = []
            if not pa.types.is_null(field.type) and field.type not in types[field.name]:
                types[field.name].append(field.type)
    fields = []
    for name in names:
        found = types[name]
        if not found:
            kind = pa.null()
        elif len(found) == 1:
            kind = found[0]
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in found):
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def to_arrow(table: pd.DataFrame, schema=None):
    """A pandas table as an Arrow table; with ``schema``, its columns cast to the schema's types.

    A float column that is all missing where the schema has text holds "" (:func:`screening.predict.blank` writes
    NaN into a text column of a batch where nothing was predicted, "" where some rows were).
    """
    import pyarrow as pa

    if schema is None:
        return pa.Table.from_pandas(table, preserve_index=False)
    table = table.copy()
    for field in schema:
        if field.name not in table.columns:
            table[field.name] = None
            continue
        column = table[field.name]
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            if pd.api.types.is_float_dtype(column) and column.isna().all():
                table[field.name] = ""
            elif not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
                table[field.name] = (
                    column.astype(object).where(column.notna(), None).map(lambda v: v if v is None else str(v))
                )
    arrow = pa.Table.from_pandas(table[schema.names], preserve_index=False)
    columns = [
        pa.nulls(len(arrow)) if pa.types.is_null(f.type) else arrow[n].cast(f.type)  # no value in any part
        for n, f in zip(schema.names, schema, strict=True)
    ]
    return pa.table(columns, schema=schema.with_metadata(arrow.schema.metadata))  # pandas dtypes (Int64) kept


def part_schema(table: pd.DataFrame):
    """The Arrow schema of a part, with columns that hold no value at all typed null (they take any type)."""
    import pyarrow as pa

    arrow = to_arrow(table)
    fields = [pa.field(f.name, pa.null()) if arrow[f.name].null_count == len(arrow) else f for f in arrow.schema]
    return pa.schema(fields)


def piece_row_counts(pieces: list[Piece]) -> np.ndarray:
    return np.array([p.n_rows for p in pieces], dtype=np.int64)
