"""Feature presets of the composition featurizer: labels, units and vectorised computation.

Every function takes a :class:`~features.formula.ParsedBatch` (padded ``(n, k)`` element indices, amounts and mask)
and returns an ``(n, m)`` float64 block; nothing loops over rows or properties in Python. Rows with a parse error
come out as NaN rows.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np

from sse_screen.features.elements import (
    MAGPIE_PROPERTIES,
    MAGPIE_PROPERTY_INFO,
    SYMBOL_INDEX,
    magpie_table,
    pymatgen_column,
)
from sse_screen.features.formula import SPECIAL_REDUCED_FORMULAS, ParsedBatch

Preset = Literal["magpie", "electrolyte"]
PRESETS: Final[tuple[str, ...]] = ("magpie", "electrolyte")

MAGPIE_STATS: Final[tuple[str, ...]] = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")
_STAT_INFO: Final[dict[str, str]] = {
    "minimum": "minimum over the elements present of",
    "maximum": "maximum over the elements present of",
    "range": "maximum minus minimum over the elements present of",
    "mean": "atomic-fraction-weighted mean of",
    "avg_dev": "atomic-fraction-weighted mean absolute deviation of",
    "mode": "value, for the most abundant element (lowest value on ties), of",
}
P_NORMS: Final[tuple[int, ...]] = (2, 3, 5, 7, 10)
ORBITALS: Final[tuple[str, ...]] = ("s", "p", "d", "f")
MOBILE_IONS: Final[tuple[str, ...]] = ("Li", "Na")
ANIONS: Final[tuple[str, ...]] = ("O", "S", "Se", "F", "Cl", "Br", "I", "N")
HALIDES: Final[tuple[str, ...]] = ("F", "Cl", "Br", "I")

MAGPIE_CITATION: Final[str] = (
    "@article{ward_agrawal_choudary_wolverton_2016, title={A general-purpose machine learning framework for "
    "predicting properties of inorganic materials}, volume={2}, DOI={10.1038/npjcompumats.2017.28}, number={1}, "
    "journal={npj Computational Materials}, author={Ward, Logan and Agrawal, Ankit and Choudhary, Alok and "
    "Wolverton, Christopher}, year={2016}}"
)
MATMINER_CITATION: Final[str] = (
    "@article{ward_matminer_2018, title={Matminer: An open source toolkit for materials data mining}, "
    "volume={152}, DOI={10.1016/j.commatsci.2018.05.018}, journal={Computational Materials Science}, "
    "author={Ward, Logan and Dunn, Alexander and Faghaninia, Alireza and Zimmermann, Nils E. R. and Bajaj, Saurabh "
    "and Wang, Qi and Montoya, Joseph and Chen, Jiming and Bystrom, Kyle and Dylla, Maxwell and Chard, Kyle and "
    "Asta, Mark and Persson, Kristin A. and Snyder, G. Jeffrey and Foster, Ian and Jain, Anubhav}, "
    "pages={60--69}, year={2018}}"
)
PYMATGEN_CITATION: Final[str] = (
    "@article{ong_pymatgen_2013, title={Python Materials Genomics (pymatgen): A robust, open-source python library "
    "for materials analysis}, volume={68}, DOI={10.1016/j.commatsci.2012.10.028}, journal={Computational Materials "
    "Science}, author={Ong, Shyue Ping and Richards, William Davidson and Jain, Anubhav and Hautier, Geoffroy and "
    "Kocher, Michael and Cholia, Shreyas and Gunter, Dan and Chevrier, Vincent L. and Persson, Kristin A. and "
    "Ceder, Gerbrand}, pages={314--319}, year={2013}}"
)
HHI_CITATION: Final[str] = (
    "@article{gaultois_hhi_2013, title={Data-driven review of thermoelectric materials: performance and resource "
    "considerations}, volume={25}, DOI={10.1021/cm400893e}, number={15}, journal={Chemistry of Materials}, "
    "author={Gaultois, Michael W. and Sparks, Taylor D. and Borg, Christopher K. H. and Seshadri, Ram and "
    "Bonificio, William D. and Clarke, David R.}, pages={2911--2920}, year={2013}}"
)


def _magpie_info() -> dict[str, tuple[str, str]]:
    info: dict[str, tuple[str, str]] = {}
    for prop in MAGPIE_PROPERTIES:
        desc, unit = MAGPIE_PROPERTY_INFO[prop]
        for stat in MAGPIE_STATS:
            info[f"MagpieData {stat} {prop}"] = (f"{_STAT_INFO[stat]} the {desc} (Magpie)", unit)
    return info


def _electrolyte_extra_info() -> dict[str, tuple[str, str]]:
    info: dict[str, tuple[str, str]] = {"n_elements": ("number of distinct elements (matminer 0-norm)", "count")}
    for p in P_NORMS:
        info[f"{p}-norm"] = (f"stoichiometric {p}-norm of the atomic fractions (matminer Stoichiometry)", "1")
    for orb in ORBITALS:
        info[f"frac {orb} valence electrons"] = (
            f"mean {orb} valence electrons / mean total valence electrons (matminer ValenceOrbital; NaN for a "
            "composition without valence electrons)",
            "1",
        )
    info["max ionic char"] = (
        "maximum over element pairs of 1 - exp(-(X_A - X_B)^2 / 4), Pauling X from pymatgen (matminer IonProperty); "
        "0 for one element, NaN if an element has no Pauling X (He, Ne, Ar, Z >= 104)",
        "1",
    )
    info["avg ionic char"] = (
        "sum over element pairs of x_A x_B (1 - exp(-(X_A - X_B)^2 / 4)), atomic fractions x (matminer "
        "IonProperty); NaN as for max ionic char",
        "1",
    )
    for ion in MOBILE_IONS:
        info[f"{ion} atomic fraction"] = (f"atomic fraction of {ion}", "1")
    info["Li per formula unit"] = (
        "Li atoms per formula unit of the composition's smallest integer formula, whatever scale it is written at "
        "(Li4P2S8 -> LiPS4: 1; Li5Ge0.5PS6 -> Li10GeP2S12: 10; peroxide-like LiO -> Li2O2 as pymatgen reduces it); "
        f"NaN when no multiplier up to {MAX_FORMULA_MULTIPLIER} makes every amount an integer",
        "atoms/f.u.",
    )
    for an in ANIONS:
        info[f"{an} atomic fraction"] = (f"atomic fraction of {an}", "1")
    info["halide atomic fraction"] = ("atomic fraction of F + Cl + Br + I", "1")
    info["cost_usd_per_kg"] = (
        "mass-fraction-weighted price of the elements (pymatgen costdb_elements); NaN if an element has no price "
        "(Pm, Po-Ac, U, Z >= 93)",
        "USD/kg",
    )
    info["hhi_production"] = (
        "mass-fraction-weighted Herfindahl-Hirschman index of production (pymatgen HHIModel); NaN if an element "
        "has none (H, Ne, Ar, Kr, Xe, Tc, Z >= 84)",
        "0-10000",
    )
    info["hhi_reserve"] = (
        "mass-fraction-weighted Herfindahl-Hirschman index of reserves (pymatgen HHIModel); NaN as for production",
        "0-10000",
    )
    return info


def feature_info(preset: str) -> dict[str, tuple[str, str]]:
    """Label -> (description, unit) for every feature of a preset, in output column order.

    Raises:
        ValueError: Unknown preset.
    """
    if preset == "magpie":
        return _magpie_info()
    if preset == "electrolyte":
        return {**_magpie_info(), **_electrolyte_extra_info()}
    raise ValueError(f"Unknown {preset=}; expected one of {PRESETS}")


def citations(preset: str) -> list[str]:
    """BibTeX entries for the data and methods behind a preset."""
    feature_info(preset)  # validates the name
    refs = [MAGPIE_CITATION, MATMINER_CITATION]
    return refs if preset == "magpie" else [*refs, PYMATGEN_CITATION, HHI_CITATION]


def magpie_block(batch: ParsedBatch) -> np.ndarray:
    """The 132 matminer Magpie features (22 properties x 6 statistics, property-major), ``(n, 132)``.

    Matches matminer's ``PropertyStats`` on ``comp.element_composition``: statistics weighted by the amounts as
    written, ``mode`` = minimum value among the elements whose amount is ``np.isclose`` to the largest amount.
    """
    amt, mask = batch.amount, batch.mask
    vals = magpie_table()[batch.index]  # (n, k, P)
    m3 = mask[:, :, None]
    total = amt.sum(axis=1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        vmin = np.where(m3, vals, np.inf).min(axis=1)
        vmax = np.where(m3, vals, -np.inf).max(axis=1)
        v0 = np.where(m3, vals, 0.0)
        w = amt[:, :, None]
        mean = (w * v0).sum(axis=1) / total
        avg_dev = (w * np.abs(v0 - mean[:, None, :])).sum(axis=1) / total
        amax = amt.max(axis=1, keepdims=True)
        tie = mask & (np.abs(amt - amax) <= 1e-8 + 1e-5 * np.abs(amax))  # np.isclose(weights, weights.max())
        mode = np.where(tie[:, :, None], vals, np.inf).min(axis=1)
    out = np.stack([vmin, vmax, vmax - vmin, mean, avg_dev, mode], axis=2)  # (n, P, 6)
    out = out.reshape(len(amt), len(MAGPIE_PROPERTIES) * len(MAGPIE_STATS))
    out[~batch.ok] = np.nan
    return out


def _fraction_of(batch: ParsedBatch, frac: np.ndarray, symbols: tuple[str, ...]) -> np.ndarray:
    cols = np.array([SYMBOL_INDEX[s] for s in symbols])
    hit = (batch.index[:, :, None] == cols[None, None, :]) & batch.mask[:, :, None]
    return (hit * frac[:, :, None]).sum(axis=1)  # (n, len(symbols))


def _mass_weighted(batch: ParsedBatch, column: str) -> np.ndarray:
    """Mass-fraction-weighted element property; NaN if any element present lacks it."""
    mass = pymatgen_column("atomic_mass_amu")[batch.index] * batch.amount
    prop = np.where(batch.mask, pymatgen_column(column)[batch.index], 0.0)
    return (mass * prop).sum(axis=1) / mass.sum(axis=1)


#: Largest multiplier tried to turn a composition's amounts into integers (Li5.5PS4.5Cl1.5 needs 2, x = 0.05 needs 20).
MAX_FORMULA_MULTIPLIER: Final = 200
_INTEGER_TOLERANCE = 1e-8  # relative: far above float error, far below a written decimal


def formula_unit_atoms(batch: ParsedBatch) -> np.ndarray:
    """Atoms in the smallest integer formula unit of each row's composition, independent of the written scale.

    The amounts are divided by the smallest one and multiplied by the smallest integer m <= MAX_FORMULA_MULTIPLIER
    that makes all of them integers (within 1e-8, relative), then divided by their gcd; pymatgen's peroxide-like special
    formulas are doubled (LiO -> Li2O2), so integer formulas get exactly the atoms of pymatgen's reduced formula.

    Returns:
        ``(n,)`` float64 atoms per formula unit; NaN for errors and for compositions no such m makes integer.
    """
    n = len(batch.errors)
    out = np.full(n, np.nan)
    amount = np.where(batch.mask, batch.amount, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = amount / np.nanmin(np.where(batch.mask, amount, np.inf), axis=1, keepdims=True)
    ratio = np.where(batch.mask, ratio, 0.0)
    todo = np.flatnonzero(batch.ok)
    ints = np.zeros(batch.amount.shape, dtype=np.int64)
    for m in range(1, MAX_FORMULA_MULTIPLIER + 1):
        if todo.size == 0:
            break
        scaled = ratio[todo] * m
        near = np.abs(scaled - np.round(scaled)) <= _INTEGER_TOLERANCE * np.maximum(1.0, scaled)
        hit = near.all(axis=1)
        ints[todo[hit]] = np.round(scaled[hit]).astype(np.int64)
        todo = todo[~hit]
    resolved = np.flatnonzero(batch.ok & (ints.sum(axis=1) > 0))
    g = np.gcd.reduce(ints[resolved], axis=1)
    ints[resolved] //= g[:, None]
    out[resolved] = ints[resolved].sum(axis=1)
    special = {frozenset((SYMBOL_INDEX[s], c) for s, c in d) for d in SPECIAL_REDUCED_FORMULAS}  # LiO is written Li2O2
    for i in resolved[batch.mask[resolved].sum(axis=1) <= 2]:
        m = batch.mask[i]
        if frozenset(zip(batch.index[i][m].tolist(), ints[i][m].tolist(), strict=True)) in special:
            out[i] *= 2
    return out


def frac_li_per_formula_unit(batch: ParsedBatch, li_fraction: np.ndarray) -> np.ndarray:
    """Li atoms per smallest integer formula unit: Li atomic fraction x :func:`formula_unit_atoms`."""
    return li_fraction * formula_unit_atoms(batch)


def electrolyte_extra_block(batch: ParsedBatch, magpie: np.ndarray) -> np.ndarray:
    """Electrolyte descriptors after the Magpie block (labels and units in ``feature_info("electrolyte")``).

    Args:
        batch: Parsed compositions.
        magpie: The ``(n, 132)`` output of :func:`magpie_block` for the same batch (its means are reused).
    """
    mask = batch.mask
    frac = batch.fractions()
    n_el = mask.sum(axis=1).astype(np.float64)
    norms = [(frac**p).sum(axis=1) ** (1.0 / p) for p in P_NORMS]

    stats = magpie.reshape(len(frac), len(MAGPIE_PROPERTIES), len(MAGPIE_STATS))
    mean_of = {prop: stats[:, i, MAGPIE_STATS.index("mean")] for i, prop in enumerate(MAGPIE_PROPERTIES)}
    with np.errstate(invalid="ignore", divide="ignore"):
        valence = [mean_of[f"N{o}Valence"] / mean_of["NValence"] for o in ORBITALS]

        x = np.where(mask, pymatgen_column("pauling_electronegativity")[batch.index], 0.0)
        pair = mask[:, :, None] & mask[:, None, :]
        ionic = 1.0 - np.exp(-0.25 * (x[:, :, None] - x[:, None, :]) ** 2)
        ionic = np.where(pair, ionic, 0.0)
        max_ionic = ionic.max(axis=(1, 2))
        # i < j pairs: half the symmetric double sum (the diagonal is 0)
        avg_ionic = 0.5 * (frac[:, :, None] * frac[:, None, :] * ionic).sum(axis=(1, 2))

        mobile = _fraction_of(batch, frac, MOBILE_IONS)
        li_per_fu = frac_li_per_formula_unit(batch, _fraction_of(batch, frac, ("Li",))[:, 0])
        anions = _fraction_of(batch, frac, ANIONS)
        halide = _fraction_of(batch, frac, HALIDES).sum(axis=1)
        cost = _mass_weighted(batch, "cost_usd_per_kg")
        hhi_p = _mass_weighted(batch, "hhi_production")
        hhi_r = _mass_weighted(batch, "hhi_reserve")
    cols = [n_el, *norms, *valence, max_ionic, avg_ionic, *mobile.T, li_per_fu, *anions.T, halide, cost, hhi_p, hhi_r]
    out = np.column_stack(cols)
    out[~batch.ok] = np.nan
    return out


def compute(batch: ParsedBatch, preset: str) -> np.ndarray:
    """All features of ``preset`` for a parsed batch, ``(n, n_features)`` float64 (NaN rows for errors)."""
    magpie = magpie_block(batch)
    if preset == "magpie":
        return magpie
    if preset == "electrolyte":
        return np.hstack([magpie, electrolyte_extra_block(batch, magpie)])
    raise ValueError(f"Unknown {preset=}; expected one of {PRESETS}")
