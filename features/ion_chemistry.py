"""Chemistry-aware, scale-invariant descriptors of what moves Li ions, over the atomic-fraction matrix.

Every block is numpy over a :class:`~features.formula.ParsedBatch` (no per-row Python loops) and depends only on
the atomic fractions, so a formula written at another scale gives the same values. Labels, descriptions and units
are in :data:`FEATURES`. The conductivity model (:mod:`models.conductivity`) computes this block itself from the
formulas, beside the shared composition feature table.

* **anions**: O, S, Se, Te, N, F, Cl, Br, I, and H when the composition has no O or N (hydride; otherwise H is
  taken as part of OH/NH groups). Identity = each anion's share of the anions; anion-share-weighted polarisability,
  radius and electronegativity; the number of anion species and a mixed-anion flag.
* **mobile ion**: Li per anion and Li per framework cation.
* **polyanions**: flags (PO4, PS4, SiO4, BO3, BH4, SO4, tetrel-S: Si/Ge/Sn with S) set when the central atom
  and its ligand are both present with ligand/centre >= 2; the centre's share of the anions.
* **framework cations** (every element but Li and the anions): share-weighted mean and maximum oxidation state,
  mean radius (Å) and field strength (charge / radius^2, e/Å^2) from a fixed oxidation-state table
  (``features/data/cation_oxidation.csv``, from pymatgen); the charge-balance residual of that assignment.
* **electronegativity**: anion minus framework-cation and anion minus Li (Pauling).
* **element embeddings**: atomic-fraction-weighted mean of the MEGNet 16-dimensional element embedding (Chen et al.
  2019), read offline from the ``elementembeddings`` package's data (Onwuli et al. 2023).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from sse_screen.features.elements import SYMBOL_INDEX, pymatgen_column, weighted_sum
from sse_screen.features.formula import N_ELEMENTS, ParsedBatch, parse_batch

ANIONS: Final[tuple[str, ...]] = ("O", "S", "Se", "Te", "N", "F", "Cl", "Br", "I", "H")
#: Anion polarisability (Å^3; Tessman, Kahn & Shockley, Phys. Rev. 92, 890 (1953), in-crystal values; N3- and H-
#: rough estimates), Shannon radius (Å, CN 6; N3- CN 4; H- from LiH) and formal charge.
_ANION_DATA: Final[dict[str, tuple[float, float, float]]] = {
    "O": (3.88, 1.40, -2), "S": (10.2, 1.84, -2), "Se": (10.5, 1.98, -2), "Te": (14.0, 2.21, -2),
    "N": (4.1, 1.46, -3), "F": (1.04, 1.33, -1), "Cl": (3.66, 1.81, -1), "Br": (4.77, 1.96, -1),
    "I": (7.10, 2.20, -1), "H": (3.0, 1.40, -1),
}  # fmt: skip
POLYANIONS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "PO4": (("P",), "O"), "PS4": (("P",), "S"), "SiO4": (("Si",), "O"), "BO3": (("B",), "O"),
    "BH4": (("B",), "H"), "SO4": (("S",), "O"), "tetrel-S4": (("Si", "Ge", "Sn"), "S"),
}  # fmt: skip
EMBEDDING: Final[str] = "megnet16"
EMBEDDING_DIM: Final[int] = 16


def _names() -> dict[str, tuple[str, str]]:
    info = {
        "Li per anion": ("Li atomic fraction / anion atomic fraction", "1"),
        "Li per framework cation": ("Li atomic fraction / framework-cation atomic fraction (NaN without one)", "1"),
    }
    for a in ANIONS:
        info[f"anion share {a}"] = (f"{a} share of the anions (0 without anions)", "1")
    info |= {
        "anion polarisability": ("anion-share-weighted polarisability (Tessman et al. 1953)", "Å^3"),
        "anion radius": ("anion-share-weighted Shannon radius", "Å"),
        "anion electronegativity": ("anion-share-weighted Pauling electronegativity", "Pauling"),
        "n anion species": ("number of distinct anions", "count"),
        "mixed anion": ("1 if more than one anion species, else 0", "1"),
    }
    for p in POLYANIONS:
        info[f"polyanion {p}"] = (f"1 if the {p} centre and ligand are present with ligand/centre >= 2", "1")
    info |= {
        "polyanion centre per anion": ("atomic fraction of flagged polyanion centres / anion fraction", "1"),
        "framework cation fraction": ("atomic fraction of cations other than Li", "1"),
        "framework charge mean": ("framework-share-weighted cation oxidation state (fixed table)", "e"),
        "framework charge max": ("largest framework cation oxidation state", "e"),
        "framework radius mean": ("framework-share-weighted cation radius (pymatgen ionic radii)", "Å"),
        "framework field strength": ("framework-share-weighted charge / radius^2", "e/Å^2"),
        "charge balance residual": ("sum over elements of fraction x assigned charge (0: balanced)", "e/atom"),
        "electronegativity anion - framework": (
            "anion minus framework-cation mean Pauling electronegativity",
            "Pauling",
        ),
        "electronegativity anion - Li": ("anion mean minus Li Pauling electronegativity (NaN without Li)", "Pauling"),
    }
    for i in range(EMBEDDING_DIM):
        info[f"{EMBEDDING} mean {i}"] = (f"atomic-fraction-weighted mean of {EMBEDDING} element embedding dim {i}", "1")
    return info


FEATURES: Final[dict[str, tuple[str, str]]] = _names()


@functools.cache
def _tables() -> dict[str, np.ndarray]:
    """Per-element (118,) tables: cation charge/radius, anion data, Pauling X, embeddings."""
    cations = pd.read_csv(Path(__file__).with_name("data") / "cation_oxidation.csv")
    t = {
        "charge": cations["cation_oxidation_state"].to_numpy(float),
        "radius": cations["cation_radius_angstrom"].to_numpy(float),
        "x": pymatgen_column("pauling_electronegativity"),
    }
    for k, col in (("polar", 0), ("anion_radius", 1), ("anion_charge", 2)):
        t[k] = np.zeros(N_ELEMENTS)
        for a, values in _ANION_DATA.items():
            t[k][SYMBOL_INDEX[a]] = values[col]
    spec = importlib.util.find_spec("elementembeddings")
    if spec is None or spec.origin is None:
        raise ImportError("the elementembeddings package is needed for the element-embedding features")
    path = Path(spec.origin).parent / "data" / "element_representations" / f"{EMBEDDING}.json"
    vectors = json.loads(path.read_text())
    t["embedding"] = np.full((N_ELEMENTS, EMBEDDING_DIM), np.nan)
    for symbol, vector in vectors.items():
        if symbol in SYMBOL_INDEX:
            t["embedding"][SYMBOL_INDEX[symbol]] = vector
    return t


def _cols(*symbols: str) -> np.ndarray:
    return np.array([SYMBOL_INDEX[s] for s in symbols])


def ion_chemistry_block(batch: ParsedBatch) -> np.ndarray:
    """All :data:`FEATURES` for a parsed batch, ``(n, len(FEATURES))`` float64 (NaN rows for errors)."""
    t = _tables()
    x = batch.dense()  # (n, 118) atomic fractions
    n = len(x)
    anion = np.zeros(N_ELEMENTS, dtype=bool)
    anion[_cols(*ANIONS)] = True
    is_anion = np.broadcast_to(anion, x.shape).copy()
    has_o_or_n = (x[:, _cols("O", "N")] > 0).any(axis=1)
    is_anion[has_o_or_n, SYMBOL_INDEX["H"]] = False
    xa = np.where(is_anion, x, 0.0)
    total_anion = xa.sum(axis=1)
    li = x[:, SYMBOL_INDEX["Li"]]
    framework = np.where(is_anion, 0.0, x)
    framework[:, SYMBOL_INDEX["Li"]] = 0.0
    total_framework = framework.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.nan_to_num(xa / total_anion[:, None])
        fw_share = framework / total_framework[:, None]
        polar, radius_a = weighted_sum(share, t["polar"]), weighted_sum(share, t["anion_radius"])
        x_anion = weighted_sum(share, np.nan_to_num(t["x"]))
        n_anion = (xa > 0).sum(axis=1).astype(float)
        flags, centres = [], np.zeros(n)
        for centre_symbols, ligand in POLYANIONS.values():
            centre = x[:, _cols(*centre_symbols)].sum(axis=1)
            on = (centre > 0) & (x[:, SYMBOL_INDEX[ligand]] >= 2 * centre) & is_anion[:, SYMBOL_INDEX[ligand]]
            flags.append(on.astype(float))
            centres = centres + np.where(on, centre, 0.0)
        fw_charge = weighted_sum(fw_share, t["charge"])
        fw_charge_max = np.where(framework > 0, t["charge"], -np.inf).max(axis=1)
        fw_charge_max[~np.isfinite(fw_charge_max)] = np.nan
        fw_radius = weighted_sum(fw_share, np.nan_to_num(t["radius"], nan=np.nanmean(t["radius"])))
        field = weighted_sum(fw_share, np.nan_to_num(t["charge"] / t["radius"] ** 2))
        cation_charge = weighted_sum(np.where(is_anion, 0.0, x), t["charge"])
        residual = cation_charge + weighted_sum(xa, t["anion_charge"])
        x_fw = weighted_sum(fw_share, np.nan_to_num(t["x"], nan=np.nanmean(t["x"])))
        emb = weighted_sum(x, np.nan_to_num(t["embedding"]))
        cols = [
            li / total_anion, li / total_framework, *share[:, _cols(*ANIONS)].T, polar, radius_a, x_anion, n_anion,
            (n_anion > 1).astype(float), *flags, centres / total_anion, total_framework, fw_charge, fw_charge_max,
            fw_radius, field, residual, x_anion - x_fw, np.where(li > 0, x_anion - t["x"][SYMBOL_INDEX["Li"]], np.nan),
            *emb.T,
        ]  # fmt: skip
    out = np.column_stack(cols)
    out[~np.isfinite(out)] = np.nan
    out[~batch.ok] = np.nan
    return out


def ion_chemistry_features(formulas: object) -> pd.DataFrame:
    """:data:`FEATURES` of each formula (one row per formula, NaN rows where it does not parse)."""
    return pd.DataFrame(ion_chemistry_block(parse_batch(formulas)), columns=list(FEATURES))
