"""Candidates given as crystal structures: a folder or zip of CIFs, or a ``cif_path`` column in a table.

A CIF inside a zip is named ``<zip path>:<member path>`` (``cifs.zip:inner/LGPS.cif``): that is what ``cif_path``
shows, and it stays meaningful after the run (nothing is extracted to a temporary folder that the output would point
at). Members are read straight from the archive when their structure is needed.

The formula of a row taken from a CIF is the structure's composition per formula unit, so that it is the same
composition every other row uses (see :func:`structure_formula`).
"""

from __future__ import annotations

import math
import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from sse_screen.features.structure import StructureError, read_cif

#: Largest total size of the CIFs inside one zip (bytes): a zip bomb gets an error, not the memory.
MAX_ZIP_BYTES = 500 * 1024 * 1024
#: ``<archive>.zip:<member>`` as written in ``cif_path`` for a CIF inside a zip.
_ZIP_MEMBER = re.compile(r"\.zip:", re.IGNORECASE)
_TOKEN = re.compile(r"([A-Z][a-z]?)([0-9.]+)")
#: An amount within this of a whole number counts as whole (Z detection, integer formatting).
_WHOLE_TOLERANCE = 1e-6


class StructureInputError(ValueError):
    """A folder or zip that holds no usable CIF list (the message names it and the problem)."""


def cif_candidates(path: str | Path) -> pd.DataFrame:
    """A candidate table for a folder or zip of ``.cif`` files: one row per CIF, sorted by name.

    Args:
        path: Folder (searched recursively) or zip archive.

    Returns:
        Columns ``formula`` (empty: taken from each structure when it is read) and ``cif_path``: the absolute path
        of a file in a folder, or ``<path>:<member>`` for a CIF inside a zip (``path`` as given).

    Raises:
        StructureInputError: No CIF inside, an unreadable zip, unsafe member names, or too much data.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(str(p.resolve()) for p in path.rglob("*") if p.suffix.lower() == ".cif" and p.is_file())
    elif zipfile.is_zipfile(path):
        files = [f"{path}:{member}" for member in _zip_members(path)]
    else:
        raise StructureInputError(f"{path}: neither a folder nor a zip of CIF files")
    if not files:
        raise StructureInputError(f"{path}: holds no .cif files")
    return pd.DataFrame({"formula": [""] * len(files), "cif_path": files})


def _zip_members(path: Path) -> list[str]:
    """Names of the CIFs inside a zip, sorted; checked for unsafe names and total size."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".cif")]
    except zipfile.BadZipFile as exc:
        raise StructureInputError(f"{path}: not a readable zip ({exc})") from None
    if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
        raise StructureInputError(f"{path}: the CIFs inside are larger than {MAX_ZIP_BYTES >> 20} MB")
    for member in members:
        name = PurePosixPath(member.filename)
        if name.is_absolute() or ".." in name.parts or "\\" in member.filename:
            raise StructureInputError(f"{path}: unsafe member name {member.filename!r}")
    return sorted(m.filename for m in members)


def split_zip_member(cif_path: str) -> tuple[str, str] | None:
    """``(archive, member)`` if ``cif_path`` names a CIF inside an existing zip (``a.zip:x.cif``), else None."""
    for match in _ZIP_MEMBER.finditer(cif_path):
        archive, member = cif_path[: match.start() + 4], cif_path[match.end() :]
        if member and Path(archive).is_file():
            return archive, member
    return None


def _read_member(archive: zipfile.ZipFile, member: str, folder: Path, shown: str) -> Any:
    """Parse one CIF inside an open zip (via a short-lived file under ``folder``); errors name ``shown``."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise StructureError(f"{shown}: not in the zip") from None
    if info.file_size > MAX_ZIP_BYTES:
        raise StructureError(f"{shown}: larger than {MAX_ZIP_BYTES >> 20} MB")
    name = PurePosixPath(member).name or "member.cif"
    target = folder / name
    target.write_bytes(archive.read(info))
    try:
        return read_cif(target)
    except StructureError as exc:
        raise StructureError(str(exc).replace(f"{name}:", f"{shown}:", 1)) from None
    finally:
        target.unlink(missing_ok=True)


def _structures(cifs: list[str]) -> Iterator[tuple[Any, str | None]]:
    """(structure or None, error or None) per ``cif_path`` cell; zip members are read from their archive."""
    with ExitStack() as stack:
        folder: Path | None = None
        archives: dict[str, zipfile.ZipFile] = {}
        for cif in cifs:
            if not cif:
                yield None, None
                continue
            try:
                inside = split_zip_member(cif)
                if inside is None:
                    yield read_cif(cif), None
                    continue
                archive_path, member = inside
                if folder is None:
                    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sse-screen-cif-")))
                if archive_path not in archives:
                    archives[archive_path] = stack.enter_context(zipfile.ZipFile(archive_path))
                shown = f"{Path(archive_path).name}:{member}"
                yield _read_member(archives[archive_path], member, folder, shown), None
            except StructureError as exc:
                yield None, f"CIF: {exc}"
            except (OSError, zipfile.BadZipFile) as exc:
                yield None, f"CIF: {Path(cif).name}: cannot read: {exc}"


def read_structures(table: pd.DataFrame) -> tuple[list[Any] | None, list[str | None], list[str]]:
    """Read the ``cif_path`` column of a candidate table, if any.

    Returns:
        Per row: the structure (or None: no CIF given, or unreadable), the error reason (None when fine; a CIF that
        cannot be read makes the row an error), and the formula to use (the table's, or
        :func:`structure_formula` of the structure when the formula cell is empty). ``structures`` is None when the
        table has no ``cif_path``.
    """
    formulas = table["formula"].astype(str).tolist()
    if "cif_path" not in table.columns:
        return None, [None] * len(table), formulas
    cifs = [c.strip() for c in table["cif_path"].fillna("").astype(str)]
    structures: list[Any] = []
    errors: list[str | None] = []
    for structure, error in _structures(cifs):
        structures.append(structure)
        errors.append(error)
    formulas = [
        structure_formula(s) if s is not None and not f.strip() else f
        for f, s in zip(formulas, structures, strict=True)
    ]
    return structures, errors, formulas


def structure_formula(structure: Any) -> str:
    """The formula of a structure per formula unit: the composition every other row of that compound uses.

    Ordered cells (whole amounts) give pymatgen's reduced composition (``Li24P4S20Cl4`` -> ``Li6PS5Cl``), written
    without brackets. A cell with partial occupancies (non-whole amounts) is divided by Z = the greatest common
    divisor of its whole amounts, the fully occupied sites (``Li24.19992Si0.2P3.8S20Br4`` -> Z = 4 ->
    ``Li6.04998Si0.05P0.95S5Br``); with no whole amount Z = 1. Amounts keep enough digits that the formula has
    exactly the structure's canonical composition (:func:`features.canonical.canonical_key`).

    Args:
        structure: A pymatgen ``Structure`` (or anything with a ``composition``).

    Returns:
        The formula, elements in pymatgen's order (electronegativity).
    """
    from sse_screen.features.canonical import canonical_key

    composition = structure.composition
    amounts = _amounts(composition.formula)
    target = canonical_key(dict(amounts))
    whole = [round(a) for _, a in amounts if abs(a - round(a)) < _WHOLE_TOLERANCE and round(a) > 0]
    if len(whole) == len(amounts):  # an ordered cell: pymatgen's reduced composition
        amounts, z = _amounts(composition.reduced_composition.formula), 1
    else:
        z = math.gcd(*whole) if whole else 1
    for decimals in range(4, 13):
        text = "".join(f"{el}{_amount(a / z, decimals)}" for el, a in amounts)
        if canonical_key({el: float(_amount(a / z, decimals) or 1) for el, a in amounts}) == target:
            return text
    return "".join(f"{el}{_amount(a / z, 12)}" for el, a in amounts)


def _amounts(formula: str) -> list[tuple[str, float]]:
    """(element, amount) pairs of pymatgen's ``Composition.formula`` (``"Li24 P4 S20 Cl4"``), in its order."""
    return [(m[1], float(m[2])) for m in _TOKEN.finditer(formula.replace(" ", ""))]


def _amount(value: float, decimals: int) -> str:
    """An amount as written in a formula: "" for 1, digits for whole numbers, else up to ``decimals`` decimals."""
    if abs(value - round(value)) < _WHOLE_TOLERANCE:
        whole = round(value)
        return "" if whole == 1 else str(whole)
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")
