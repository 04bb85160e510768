"""Reading candidate lists and writing result tables, with errors a chemist can act on.

Every reader returns a pandas DataFrame with one row per input row, in input order, and never drops a row: rows
that cannot be used are reported later, per row, by the featurizer or the checks. Problems with the *file itself*
(missing, empty, binary, not UTF-8, no formula column) raise :class:`InputError`, whose message the CLI prints as one
line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq"}
OUTPUT_SUFFIXES = {".csv", ".parquet", ".json", ".html"}
# Cells a spreadsheet would execute as a formula (OWASP "CSV injection").
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class InputError(ValueError):
    """A candidate file that cannot be read as a whole (the message names the file and the problem)."""


def read_candidates(path: str | Path, *, formula_column: str = "formula") -> pd.DataFrame:
    """Read a candidate list into a table with a ``formula`` column of strings.

    Args:
        path: CSV, TSV or Parquet file with a formula column (and/or a ``cif_path`` column, relative to the file),
            a .txt file with one formula per line (blank lines are kept as empty formulas so row numbers stay those
            of the file; a first line that is just ``formula``, or the ``formula_column`` name, is a header, not a
            candidate), or a folder or .zip of CIF files (one row per CIF, sorted by name).
        formula_column: Name of the column holding formulas in CSV/TSV/Parquet input.

    Returns:
        The input table, all columns kept, with the formula column renamed to ``formula`` (as ``str``; a missing
        cell becomes the empty string so that it is reported as an empty formula, not silently dropped).

    Raises:
        InputError: The file is missing, empty, binary, not UTF-8, or has no formula column.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".zip":
        from sse_screen.screening.structures import StructureInputError, cif_candidates

        try:
            return cif_candidates(path)
        except StructureInputError as exc:
            raise InputError(str(exc)) from None
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv, .parquet or .txt")
    if suffix in {".parquet", ".pq"}:
        table = _read_parquet(path)
    else:
        text = _read_text(path)
        if suffix == ".txt":
            lines = text.splitlines()
            while lines and not lines[-1].strip():
                lines.pop()
            if lines and lines[0].strip().casefold() in {"formula", formula_column.casefold()}:
                lines = lines[1:]  # a header line names the column; it is not a candidate
            if not lines:
                raise InputError(f"{path}: the file holds no formulas")
            return pd.DataFrame({"formula": [line.strip() for line in lines]})
        table = _read_delimited(path, text, sep="\t" if suffix == ".tsv" else ",")
    table = normalise_candidates(table, path, formula_column=formula_column)
    if table.empty:
        raise InputError(f"{path}: the file has a header but no rows")
    return table


def normalise_candidates(table: pd.DataFrame, path: Path, *, formula_column: str = "formula") -> pd.DataFrame:
    """A table read from ``path`` (or one part of a Parquet dataset) as :func:`read_candidates` returns it.

    Raises:
        InputError: No formula column (nor ``cif_path`` column).
    """
    if "cif_path" in table.columns:  # relative CIF paths are relative to the candidate file
        cif = table["cif_path"].astype("string").fillna("").str.strip()
        table["cif_path"] = [str((path.parent / c).resolve()) if c else "" for c in cif]
        if formula_column not in table.columns:
            table[formula_column] = ""
    if formula_column not in table.columns:
        found = ", ".join(map(str, table.columns[:8])) or "none"
        raise InputError(
            f"{path}: no {formula_column!r} column (columns found: {found}); name the column with --formula-column"
        )
    formulas = table.pop(formula_column).astype("string").fillna("").astype(str).str.strip()
    table.insert(0, "formula", formulas)
    return table


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: the file is empty")
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: looks like a binary file, not a text candidate list")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}); save the file as UTF-8"
        ) from None


def _read_delimited(path: Path, text: str, *, sep: str) -> pd.DataFrame:
    import io

    try:
        # keep_default_na=False: the formula "NaN" is sodium nitride, not a missing value.
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a readable {'TSV' if sep == chr(9) else 'CSV'} table ({exc})") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None


def neutralise_csv_cells(table: pd.DataFrame) -> pd.DataFrame:
    """Return a copy in which text cells a spreadsheet would execute are prefixed with a quote.

    Cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are written as ``'=...`` so that
    opening the CSV in a spreadsheet shows text instead of running a formula. Numeric columns are untouched, so
    negative numbers stay numbers.
    """
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            values = out[column].astype("string")
            risky = values.str.startswith(_FORMULA_TRIGGERS).fillna(False)
            if risky.any():
                out[column] = out[column].where(~risky, "'" + values)
    return out


def write_table(table: pd.DataFrame, path: str | Path, *, source: str | Path | None = None) -> Path:
    """Write a result table as CSV (spreadsheet-safe), Parquet, JSON (records) or an HTML report, by the suffix.

    Args:
        table: The table to write (for .html, a ranking: the output of ``rank_candidates``).
        path: Output file; its suffix chooses the format.
        source: The input the table was computed from; an HTML report is titled after it.

    Raises:
        InputError: The suffix is not one of .csv, .parquet, .json or .html, or the folder does not exist.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"{path}: unsupported output type {suffix or '(none)'!r}; use .csv, .parquet, .json or .html")
    if not path.parent.exists():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    if suffix == ".csv":
        neutralise_csv_cells(table).to_csv(path, index=False)
    elif suffix == ".parquet":
        table.to_parquet(path, index=False)
    elif suffix == ".html":
        from sse_screen.screening.report import html_report

        path.write_text(html_report(table, source=str(source) if source else ""), encoding="utf-8")
    else:
        table.to_json(path, orient="records", indent=1)
    return path
