"""Structures for candidates generated from a CIF parent: the parent's cell with partial occupancies, as CIF.

A variant of a CIF parent (:func:`screening.generate.generate_candidates` with ``cif_dir``) keeps the parent's
lattice and atom positions. On every site of the substituted element, the dopant takes ``dopant_fraction`` of the
occupancy (Ta on Zr at 0.25: ``Zr0.75Ta0.25`` on each Zr site; an analogue replaces the element fully). The mobile
ion's occupancies are scaled by the compensated content over the parent's (Li 6.5 / 7 on every Li site of LLZO with
Ta at x = 0.5), so the structure has exactly the candidate's composition (checked by canonical key). A candidate
whose compensation would fill a mobile-ion site beyond 1 (interstitials in a parent whose Li sites are full) gets
no structure: its ``cif_path`` stays empty and it is ranked by composition, as a formula would be.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["read_parent_cif", "variant_structure", "write_variant_cifs"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def read_parent_cif(path: str) -> tuple[str, Any]:
    """The formula (per formula unit) and the structure of a CIF parent.

    Raises:
        features.structure.StructureError: The file cannot be read as a structure.
    """
    from sse_screen.features.structure import read_cif
    from sse_screen.screening.structures import structure_formula

    structure = read_cif(path)
    structure.remove_oxidation_states()
    return structure_formula(structure), structure


def variant_structure(
    parent: Any, *, parts: list[tuple[str, str, float]], mobile_ion: str, mobile_ratio: float
) -> Any | None:
    """The parent's structure with each dopant on its fraction of its site element and the mobile ion scaled.

    Args:
        parent: The parent's pymatgen ``Structure``.
        parts: (element replaced, the dopant that takes its place, its share of each such site), one per move (two
            for a co-doped candidate).
        mobile_ion: The compensating element; mobile_ratio: its new content over the parent's.

    Returns:
        The disordered structure, or None when an occupancy would exceed 1.
    """
    structure = parent.copy()
    for i, entry in enumerate(structure):
        occupancy: dict[str, float] = {}
        for element, amount in entry.species.items():
            symbol, amount = element.symbol, float(amount)
            mine = [(dopant, fraction) for site, dopant, fraction in parts if site == symbol]
            if mine:
                kept = amount * (1.0 - sum(f for _, f in mine))
                if symbol == mobile_ion:
                    kept = amount * mobile_ratio
                if kept > 1e-9:
                    occupancy[symbol] = occupancy.get(symbol, 0.0) + kept
                for dopant, fraction in mine:
                    occupancy[dopant] = occupancy.get(dopant, 0.0) + amount * fraction
            elif symbol == mobile_ion:
                occupancy[symbol] = occupancy.get(symbol, 0.0) + amount * mobile_ratio
            else:
                occupancy[symbol] = occupancy.get(symbol, 0.0) + amount
        if sum(occupancy.values()) > 1.0 + 1e-6:
            return None
        structure.replace(i, occupancy, coords=entry.frac_coords)
    return structure


def write_variant_cifs(
    table: pd.DataFrame, parents: Mapping[str, tuple[str, Any]], folder: Path, *, mobile_ion: str
) -> list[str]:
    """Write the structure of every row generated from a CIF parent; return each row's ``cif_path`` ("" if none).

    Args:
        table: Generated rows (``formula``, ``parent``, ``move``, ``site``, ``dopant``, ``dopant_fraction``, the
            ``codopant`` columns).
        parents: Parent as given (its CIF path) -> (formula, structure).
        folder: Where the CIFs go (created); files are named ``<row>_<formula>.cif``.
        mobile_ion: The compensating element.

    Returns:
        Absolute CIF paths per row: the parent's own file for its ``parent`` row, "" for formula parents and for
        variants without a structure (module docstring).
    """
    from pymatgen.io.cif import CifWriter

    from sse_screen.features.canonical import canonical_key
    from sse_screen.features.formula import parse_formula

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, row in enumerate(table.itertuples(index=False)):
        given = parents.get(row.parent) if isinstance(row.parent, str) else None
        if given is None or row.parent_error:
            out.append("")
            continue
        formula, structure = given
        if row.move == "parent":
            out.append(str(Path(row.parent).resolve()))
            continue
        amounts, before = parse_formula(row.formula), parse_formula(formula)
        ratio = amounts.get(mobile_ion, 0.0) / before[mobile_ion]
        parts = [(row.site, row.dopant, float(row.dopant_fraction))]
        if getattr(row, "codopant", ""):
            parts.append((row.codopant_site, row.codopant, float(row.codopant_fraction)))
        variant = variant_structure(structure, parts=parts, mobile_ion=mobile_ion, mobile_ratio=ratio)
        if variant is None or canonical_key(variant.composition.get_el_amt_dict()) != canonical_key(amounts):
            out.append("")
            continue
        path = folder / f"{i:05d}_{_UNSAFE.sub('', row.formula)}.cif"
        CifWriter(variant).write_file(str(path))
        out.append(str(path.resolve()))
    return out
