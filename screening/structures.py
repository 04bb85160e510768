"""Candidates given as crystal structures: a folder or zip of CIFs, or a ``cif_path`` column in a table."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from sse_screen.features.structure import StructureError, read_cif

#: Largest total size of CIFs extracted from one zip (bytes): a zip bomb gets an error, not the disk.
MAX_ZIP_BYTES = 500 * 1024 * 1024


class StructureInputError(ValueError):
    """A folder or zip that holds no usable CIF list (the message names it and the problem)."""


def cif_candidates(path: str | Path) -> pd.DataFrame:
    """A candidate table for a folder or zip of ``.cif`` files: one row per CIF, sorted by name.

    Returns:
        Columns ``formula`` (empty: taken from each structure when it is read) and ``cif_path`` (absolute). Files
        from a zip are extracted to a private temporary folder removed at exit.

    Raises:
        StructureInputError: No CIF inside, an unreadable zip, unsafe member names, or too much data.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".cif" and p.is_file())
    elif zipfile.is_zipfile(path):
        files = _extract_zip(path)
    else:
        raise StructureInputError(f"{path}: neither a folder nor a zip of CIF files")
    if not files:
        raise StructureInputError(f"{path}: holds no .cif files")
    return pd.DataFrame({"formula": [""] * len(files), "cif_path": [str(p.resolve()) for p in files]})


def _extract_zip(path: Path) -> list[Path]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".cif")]
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise StructureInputError(f"{path}: the CIFs inside are larger than {MAX_ZIP_BYTES >> 20} MB")
            target = Path(tempfile.mkdtemp(prefix="sse-screen-cifs-"))
            atexit.register(shutil.rmtree, target, ignore_errors=True)
            files = []
            for member in sorted(members, key=lambda m: m.filename):
                name = PurePosixPath(member.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise StructureInputError(f"{path}: unsafe member name {member.filename!r}")
                out = target.joinpath(*name.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(archive.read(member))
                files.append(out)
            return files
    except zipfile.BadZipFile as exc:
        raise StructureInputError(f"{path}: not a readable zip ({exc})") from None


def read_structures(table: pd.DataFrame) -> tuple[list[Any] | None, list[str | None], list[str]]:
    """Read the ``cif_path`` column of a candidate table, if any.

    Returns:
        Per row: the structure (or None: no CIF given, or unreadable), the error reason (None when fine; a CIF that
        cannot be read makes the row an error), and the formula to use (the table's, or the structure's reduced
        composition when the formula cell is empty). ``structures`` is None when the table has no ``cif_path``.
    """
    formulas = table["formula"].astype(str).tolist()
    if "cif_path" not in table.columns:
        return None, [None] * len(table), formulas
    structures: list[Any] = []
    errors: list[str | None] = []
    for cif in table["cif_path"].fillna("").astype(str):
        if not cif.strip():
            structures.append(None)
            errors.append(None)
            continue
        try:
            structure = read_cif(cif.strip())
        except StructureError as exc:
            structures.append(None)
            errors.append(f"CIF: {exc}")
            continue
        structures.append(structure)
        errors.append(None)
    formulas = [
        s.composition.reduced_formula if s is not None and not f.strip() else f
        for f, s in zip(formulas, structures, strict=True)
    ]
    return structures, errors, formulas
