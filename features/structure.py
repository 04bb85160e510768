"""Structure featurizer: crystal structures (CIF / pymatgen ``Structure``) or lattice parameters in, features out.

Two entry points give the same columns:

* :meth:`StructureFeaturizer.featurize` takes pymatgen ``Structure`` objects (or CIF paths, read with
  :func:`read_cif`). Partial occupancies count by occupancy (a site 50% Li is half a Li atom).
* :meth:`StructureFeaturizer.featurize_lattice` takes a table of formula, ``Z``, space group number and lattice
  parameters (what OBELiX gives for every row, CIF or not). Site-level features (Li-Li distance, Li-anion distance,
  Li site occupancy) need atomic positions and are NaN there.

Cell-level features are vectorised over rows: one ``(n x 118)`` element-fraction matrix times element tables, divided
by the cell volume. Site-level features need one neighbour search per structure (pymatgen's
``Structure.get_neighbor_list``, a C implementation), which is the only per-row work.

Example:
    >>> from features.structure import StructureFeaturizer, read_cif
    >>> feat = StructureFeaturizer().fit()
    >>> matrix, errors = feat.featurize([read_cif("data/obelix/randomized_cifs/dth.cif")])
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sse_screen.features.elements import SYMBOL_INDEX, pymatgen_column, weighted_sum
from sse_screen.features.formula import parse_batch

__all__ = ["FEATURES", "LATTICE_COLUMNS", "StructureError", "StructureFeaturizer", "read_cif"]

ErrorMode = Literal["raise", "nan"]
MOBILE_ION = "Li"
#: Shannon (1976) ionic radii (Å, six-fold coordination) of the anions counted in the packing features.
ANION_RADII_A: dict[str, float] = {
    "O": 1.40, "S": 1.84, "Se": 1.98, "Te": 2.21, "N": 1.46, "F": 1.33, "Cl": 1.81, "Br": 1.96, "I": 2.20,
}  # fmt: skip
#: Li sites closer than this are alternative (split) positions of one ion, not two neighbouring ions (Å).
SPLIT_SITE_A = 1.5
#: Neighbour search radius (Å); distances beyond it are reported as this value.
MAX_DISTANCE_A = 6.0
AMU_PER_A3_TO_G_PER_CM3 = 1.6605390666
#: Columns :meth:`StructureFeaturizer.featurize_lattice` reads (OBELiX names; lengths Å, angles degrees).
LATTICE_COLUMNS = (
    "formula", "Z", "space_group_number", "a_angstrom", "b_angstrom", "c_angstrom", "alpha_deg", "beta_deg",
    "gamma_deg",
)  # fmt: skip

#: Label -> (description, unit), in column order. The last three need atomic positions (NaN from lattice data).
FEATURES: dict[str, tuple[str, str]] = {
    "space_group_number": ("international space group number (from the CIF's tag, else spglib, symprec 0.1 Å)", "1"),
    "crystal_system": ("crystal system: 1 triclinic, 2 monoclinic, 3 orthorhombic, 4 tetragonal, 5 trigonal, "
                       "6 hexagonal, 7 cubic", "1"),
    "volume_per_atom_a3": ("cell volume / atoms in the cell (occupancy-weighted)", "Å^3/atom"),
    "density_g_per_cm3": ("mass density (occupancy-weighted)", "g/cm^3"),
    "li_density_per_a3": ("Li atoms per cell volume: the mobile-ion sublattice density", "Li/Å^3"),
    "volume_per_anion_a3": ("cell volume / anions (O, S, Se, Te, N, F, Cl, Br, I) in the cell; NaN without anions",
                            "Å^3/anion"),
    "anion_packing_fraction": ("volume of the anions as Shannon (CN 6) spheres / cell volume", "1"),
    "atoms_per_cell": ("atoms in the cell (occupancy-weighted; Z x atoms per formula unit from lattice data)", "atoms"),
    "li_li_min_distance_a": (f"shortest distance between Li-bearing sites, ignoring pairs closer than {SPLIT_SITE_A} Å "
                             f"(split positions of one ion); capped at {MAX_DISTANCE_A} Å", "Å"),
    "li_anion_distance_a": (f"mean over Li-bearing sites of the distance to the nearest anion site; capped at "
                            f"{MAX_DISTANCE_A} Å", "Å"),
    "li_site_occupancy": ("mean Li occupancy of the Li-bearing sites (1: fully ordered Li sublattice)", "1"),
}  # fmt: skip
SITE_FEATURES = ("li_li_min_distance_a", "li_anion_distance_a", "li_site_occupancy")
CITATIONS = [
    "@article{shannon1976, title={Revised effective ionic radii and systematic studies of interatomic distances in "
    "halides and chalcogenides}, author={Shannon, R. D.}, journal={Acta Crystallographica A}, volume={32}, "
    "pages={751--767}, year={1976}}",
    "@article{ong2013pymatgen, title={Python Materials Genomics (pymatgen): A robust, open-source python library for "
    "materials analysis}, author={Ong, Shyue Ping and others}, journal={Computational Materials Science}, "
    "volume={68}, pages={314--319}, year={2013}}",
]
_UNCERTAINTY = re.compile(r"\(\d+\)$")


class StructureError(ValueError):
    """A structure that cannot be featurized (unreadable CIF, bad occupancy, no mobile ion), with the reason."""


def _occupancy_problem(parser: Any) -> str | None:
    """The first ``_atom_site_occupancy`` value that is not a number in [0, 1] (CIF uncertainties allowed)."""
    for block in parser.as_dict().values():
        values = block.get("_atom_site_occupancy")
        labels = block.get("_atom_site_label") or [""] * len(values or [])
        for label, text in zip(labels, [values] if isinstance(values, str) else values or [], strict=False):
            try:
                value = float(_UNCERTAINTY.sub("", text.strip()))
            except ValueError:
                return f"unreadable occupancy {text!r} on site {label!r}"
            if not 0 < value <= 1.0 + 1e-3:
                return f"occupancy {text} on site {label!r} is outside (0, 1]"
    return None


def read_cif(path: str | Path) -> Any:
    """Read the first structure of a CIF file, with occupancies checked (pymatgen silently reads bad ones as 1).

    Args:
        path: CIF file.

    Returns:
        A pymatgen ``Structure`` (conventional cell as written, possibly disordered); its
        ``properties["space_group_number"]`` holds the CIF's space-group tag when present.

    Raises:
        StructureError: The file is missing, not a CIF, has an unreadable occupancy, or holds no structure.
    """
    from pymatgen.io.cif import CifParser

    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path.name}: file not found")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise StructureError(f"{path.name}: cannot read file: {exc.strerror}") from None
    if "_cell_length_a" not in text or ("_atom_site_fract_x" not in text and "_atom_site_Cartn_x" not in text):
        raise StructureError(f"{path.name}: not a CIF (no cell lengths or atom sites)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser(path)
            problem = _occupancy_problem(parser)
            if problem:
                raise StructureError(f"{path.name}: {problem}")
            structure = parser.parse_structures(primitive=False)[0]
        except StructureError:
            raise
        except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError ... on malformed CIFs
            hint = "; ".join(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))[:300]
            detail = f" ({hint})" if hint else ""
            raise StructureError(f"{path.name}: pymatgen cannot read this CIF: {exc}{detail}") from None
    for block in parser.as_dict().values():
        for tag in ("_symmetry_Int_Tables_number", "_space_group_IT_number"):
            if str(block.get(tag, "")).strip().isdigit():
                structure.properties["space_group_number"] = int(block[tag])
                break
    return structure


def _crystal_system(sg: np.ndarray) -> np.ndarray:
    edges = np.array([2, 15, 74, 142, 167, 194, 230])  # last space group number of each system
    out = np.searchsorted(edges, sg, side="left") + 1.0
    return np.where((sg >= 1) & (sg <= 230), out, np.nan)


def _cell_block(
    formulas: list[object], atoms_per_cell: np.ndarray, volume: np.ndarray, space_group: np.ndarray
) -> tuple[np.ndarray, list[str | None]]:
    """The cell-level features (all but :data:`SITE_FEATURES`), vectorised over rows."""
    batch = parse_batch(formulas)
    frac = batch.dense()  # (n, 118), rows sum to 1
    errors = list(batch.errors)
    li = frac[:, SYMBOL_INDEX[MOBILE_ION]]
    anion_cols = np.array([SYMBOL_INDEX[s] for s in ANION_RADII_A])
    radii = np.array(list(ANION_RADII_A.values()))
    anion_frac = frac[:, anion_cols].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_atom = volume / atoms_per_cell
        density = weighted_sum(frac, pymatgen_column("atomic_mass_amu")) / per_atom * AMU_PER_A3_TO_G_PER_CM3
        anion_volume = weighted_sum(frac[:, anion_cols], 4.0 / 3.0 * math.pi * radii**3)
        block = np.column_stack(
            [
                space_group,
                _crystal_system(space_group),
                per_atom,
                density,
                li / per_atom,
                np.where(anion_frac > 0, per_atom / anion_frac, np.nan),
                anion_volume / per_atom,
                atoms_per_cell,
            ]
        )
    for i, error in enumerate(errors):
        if error is None and not (np.isfinite(volume[i]) and volume[i] > 0 and atoms_per_cell[i] > 0):
            errors[i] = "cell volume or atom count is not positive"
        elif error is None and li[i] == 0:
            errors[i] = f"no {MOBILE_ION} (the mobile ion) in the composition"
    block[[e is not None for e in errors]] = np.nan
    return block, errors


def _site_features(structure: Any) -> list[float]:
    """Li-Li distance, Li-anion distance and Li occupancy of one (possibly disordered) structure."""
    li_occ = np.array([site.species.get_el_amt_dict().get(MOBILE_ION, 0.0) for site in structure])
    anion = np.array(
        [max(site.species.get_el_amt_dict().items(), key=lambda kv: kv[1])[0] in ANION_RADII_A for site in structure]
    )
    li_sites = np.flatnonzero(li_occ > 0)
    centers, points, _, distances = structure.get_neighbor_list(MAX_DISTANCE_A, sites=[structure[i] for i in li_sites])
    points = np.asarray(points, dtype=int)
    li_pair = (li_occ[points] > 0) & (distances >= SPLIT_SITE_A)
    li_li = float(distances[li_pair].min()) if li_pair.any() else MAX_DISTANCE_A
    nearest = np.full(len(li_sites), MAX_DISTANCE_A)
    to_anion = anion[points]
    np.minimum.at(nearest, np.asarray(centers, dtype=int)[to_anion], distances[to_anion])
    return [li_li, float(nearest.mean()), float(li_occ[li_sites].mean())]


def _space_group(structure: Any) -> float:
    if "space_group_number" in structure.properties:
        return float(structure.properties["space_group_number"])
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return float(SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number())
    except Exception:  # spglib fails on some disordered cells: the feature is then missing, not an error
        return math.nan


class StructureFeaturizer(TransformerMixin, BaseEstimator):
    """Featurize crystal structures (or OBELiX-style lattice parameters) into mobile-ion and packing descriptors.

    Labels, descriptions and units: :data:`FEATURES` (also :meth:`feature_units`).

    Args:
        errors: ``"raise"`` (default): :meth:`transform` raises :class:`StructureError` naming the first bad row;
            ``"nan"``: NaN rows, reasons in ``errors_``. :meth:`featurize` always returns the reasons.
    """

    def __init__(self, *, errors: ErrorMode = "raise") -> None:
        self.errors = errors

    def fit(self, X: object = None, y: object = None) -> StructureFeaturizer:
        """Validate the parameters and fix the output columns (nothing is learned)."""
        if self.errors not in ("raise", "nan"):
            raise ValueError(f"Unknown errors={self.errors!r}; expected 'raise' or 'nan'")
        self.feature_names_out_ = np.asarray(list(FEATURES), dtype=object)
        self.n_features_in_ = 1
        return self

    def featurize(self, structures: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        """Featurize structures; per-row reasons for rows that cannot be featurized.

        Args:
            structures: pymatgen ``Structure`` objects, CIF paths (str or Path, read with :func:`read_cif`), or
                None (a row without a structure: error ``"no structure given"``).

        Returns:
            ``(n, len(FEATURES))`` float64 matrix (NaN rows for errors; units in :data:`FEATURES`) and ``n``
            reasons (None for good rows).
        """
        check_is_fitted(self, "feature_names_out_")
        n = len(structures)
        errors: list[str | None] = [None] * n
        loaded: list[Any] = [None] * n
        for i, item in enumerate(structures):
            try:
                loaded[i] = read_cif(item) if isinstance(item, str | Path) else item
            except StructureError as exc:
                errors[i] = str(exc)
            if loaded[i] is None and errors[i] is None:
                errors[i] = "no structure given"
        good = [i for i in range(n) if errors[i] is None]
        out = np.full((n, len(FEATURES)), np.nan)
        if not good:
            return out, errors
        comps = [loaded[i].composition.element_composition for i in good]
        block, cell_errors = _cell_block(
            comps,
            np.array([c.num_atoms for c in comps]),
            np.array([loaded[i].volume for i in good], dtype=float),
            np.array([_space_group(loaded[i]) for i in good]),
        )
        for row, i in enumerate(good):
            if cell_errors[row] is not None:
                errors[i] = f"structure: {cell_errors[row]}"
                continue
            out[i, : block.shape[1]] = block[row]
            out[i, block.shape[1] :] = _site_features(loaded[i])
        return out, errors

    def featurize_lattice(self, table: pd.DataFrame) -> tuple[np.ndarray, list[str | None]]:
        """Featurize from formula, ``Z``, space group and lattice parameters (no atomic positions).

        Args:
            table: Columns :data:`LATTICE_COLUMNS` (``Z`` = formula units of ``formula`` per cell; Å, degrees).

        Returns:
            Same layout as :meth:`featurize`; the :data:`SITE_FEATURES` columns are NaN.
        """
        check_is_fitted(self, "feature_names_out_")
        missing = [c for c in LATTICE_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"lattice table lacks column(s): {', '.join(missing)}")
        lengths = table[["a_angstrom", "b_angstrom", "c_angstrom"]].to_numpy(dtype=float)
        cos = np.cos(np.radians(table[["alpha_deg", "beta_deg", "gamma_deg"]].to_numpy(dtype=float)))
        with np.errstate(invalid="ignore"):
            shape = 1 - (cos**2).sum(axis=1) + 2 * cos.prod(axis=1)
            volume = lengths.prod(axis=1) * np.sqrt(shape)
        formulas = table["formula"].tolist()
        atoms_per_fu = parse_batch(formulas).amount.sum(axis=1)
        atoms = table["Z"].to_numpy(dtype=float) * atoms_per_fu
        block, errors = _cell_block(formulas, atoms, volume, table["space_group_number"].to_numpy(dtype=float))
        out = np.full((len(table), len(FEATURES)), np.nan)
        out[:, : block.shape[1]] = block
        return out, errors

    def transform(self, X: Sequence[Any]) -> np.ndarray:
        """Featurize structures; with ``errors="raise"`` a bad row raises :class:`StructureError`."""
        out, reasons = self.featurize(X)
        bad = next((i for i, r in enumerate(reasons) if r is not None), None)
        if self.errors == "raise" and bad is not None:
            raise StructureError(f"row {bad}: {reasons[bad]}")
        self.errors_ = reasons
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Feature labels in column order."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def feature_units(self) -> dict[str, tuple[str, str]]:
        """Label -> (description, unit) for every output column, in column order."""
        return dict(FEATURES)

    def citations(self) -> list[str]:
        """BibTeX entries for the ionic radii and the structure library."""
        return list(CITATIONS)
