"""Element property tables (Z = 1..118), loaded lazily once per process from package data.

The tables are plain ``(118, n_properties)`` float64 arrays in atomic-number order, so a row of element indices
(``Z - 1``) picks the properties of a composition's elements with one fancy-indexing operation. See
``features/data/README.md`` for the sources, units and licences.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

import numpy as np
import pandas as pd

#: Element symbols in atomic-number order, H (Z=1) .. Og (Z=118); column ``j`` of every matrix is Z = j + 1.
_SYMBOL_ROWS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y",
    "Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re",
    "Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg",
    "Cn Nh Fl Mc Lv Ts Og",
)
ELEMENT_SYMBOLS: Final[tuple[str, ...]] = tuple(sym for row in _SYMBOL_ROWS for sym in row.split(" "))
N_ELEMENTS: Final[int] = len(ELEMENT_SYMBOLS)
#: Symbol -> column index (``Z - 1``).
SYMBOL_INDEX: Final[dict[str, int]] = {s: i for i, s in enumerate(ELEMENT_SYMBOLS)}

#: The 22 Magpie properties of matminer's ``ElementProperty.from_preset("magpie")``, in matminer's order.
MAGPIE_PROPERTIES: Final[tuple[str, ...]] = (
    "Number",
    "MendeleevNumber",
    "AtomicWeight",
    "MeltingT",
    "Column",
    "Row",
    "CovalentRadius",
    "Electronegativity",
    "NsValence",
    "NpValence",
    "NdValence",
    "NfValence",
    "NValence",
    "NsUnfilled",
    "NpUnfilled",
    "NdUnfilled",
    "NfUnfilled",
    "NUnfilled",
    "GSvolume_pa",
    "GSbandgap",
    "GSmagmom",
    "SpaceGroupNumber",
)

#: Property -> (description, unit) for the Magpie properties.
MAGPIE_PROPERTY_INFO: Final[dict[str, tuple[str, str]]] = {
    "Number": ("atomic number", "dimensionless"),
    "MendeleevNumber": ("Mendeleev number (Pettifor-like chemical scale)", "dimensionless"),
    "AtomicWeight": ("atomic weight", "amu"),
    "MeltingT": ("melting temperature of the element", "K"),
    "Column": ("periodic-table column (rare earths listed as 3)", "dimensionless"),
    "Row": ("periodic-table row", "dimensionless"),
    "CovalentRadius": ("covalent radius", "pm"),
    "Electronegativity": ("Pauling electronegativity", "Pauling units"),
    "NsValence": ("filled s valence orbitals", "electrons"),
    "NpValence": ("filled p valence orbitals", "electrons"),
    "NdValence": ("filled d valence orbitals", "electrons"),
    "NfValence": ("filled f valence orbitals", "electrons"),
    "NValence": ("total valence electrons", "electrons"),
    "NsUnfilled": ("unfilled s valence states", "electrons"),
    "NpUnfilled": ("unfilled p valence states", "electrons"),
    "NdUnfilled": ("unfilled d valence states", "electrons"),
    "NfUnfilled": ("unfilled f valence states", "electrons"),
    "NUnfilled": ("total unfilled valence states", "electrons"),
    "GSvolume_pa": ("DFT ground-state volume of the elemental solid", "Å^3/atom"),
    "GSbandgap": ("DFT ground-state band gap of the elemental solid", "eV"),
    "GSmagmom": ("DFT ground-state magnetic moment of the elemental solid", "μB/atom"),
    "SpaceGroupNumber": ("space group number of the elemental solid", "dimensionless"),
}

#: Columns of the pymatgen-derived table, with (description, unit).
PYMATGEN_PROPERTY_INFO: Final[dict[str, tuple[str, str]]] = {
    "atomic_mass_amu": ("atomic mass (pymatgen Element.atomic_mass)", "amu"),
    "pauling_electronegativity": ("Pauling electronegativity (pymatgen Element.X)", "Pauling units"),
    "cost_usd_per_kg": ("price of the pure element (pymatgen costdb_elements.csv)", "USD/kg"),
    "hhi_production": ("Herfindahl-Hirschman index of production (pymatgen hhi_data.csv)", "dimensionless"),
    "hhi_reserve": ("Herfindahl-Hirschman index of reserves (pymatgen hhi_data.csv)", "dimensionless"),
}


def _read_table(name: str) -> pd.DataFrame:
    """Read one packaged element table and check its element column against ``ELEMENT_SYMBOLS``."""
    with resources.files("sse_screen.features").joinpath("data", name).open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, keep_default_na=False, na_values=[""])
    if tuple(df["symbol"]) != ELEMENT_SYMBOLS:
        raise RuntimeError(f"Packaged table {name} is not in Z order H..Og; reinstall sse-screen.")
    return df.drop(columns=["Z", "symbol"]).astype(np.float64)


@functools.cache
def _raw_magpie() -> pd.DataFrame:
    return _read_table("magpie_elements.csv")


@functools.cache
def magpie_table(*, impute_nan: bool = True) -> np.ndarray:
    """The 22 Magpie element properties as a read-only ``(118, 22)`` float64 array.

    Args:
        impute_nan: Replace missing values by the property's mean over the elements that have it, exactly as
            matminer's ``MagpieData(impute_nan=True)`` (its default) does. With ``False`` gaps stay NaN.

    Returns:
        Array indexed ``[Z - 1, property]`` with columns in ``MAGPIE_PROPERTIES`` order; units in
        ``MAGPIE_PROPERTY_INFO``.
    """
    values = _raw_magpie()[list(MAGPIE_PROPERTIES)].to_numpy(dtype=np.float64, copy=True)
    if impute_nan:
        means = np.nanmean(values, axis=0)
        values = np.where(np.isnan(values), means[None, :], values)
    values.setflags(write=False)
    return values


@functools.cache
def pymatgen_table() -> pd.DataFrame:
    """Pymatgen-derived element data, indexed by symbol in Z order (NaN where pymatgen has no value).

    Returns:
        DataFrame with the columns of ``PYMATGEN_PROPERTY_INFO`` (atomic mass in amu, Pauling electronegativity,
        cost in USD/kg, HHI production and reserve, dimensionless 0-10000).
    """
    df = _read_table("pymatgen_elements.csv")
    df.index = pd.Index(ELEMENT_SYMBOLS, name="symbol")
    return df


def pymatgen_column(name: str) -> np.ndarray:
    """One column of :func:`pymatgen_table` as a ``(118,)`` float64 array (see ``PYMATGEN_PROPERTY_INFO``)."""
    if name not in PYMATGEN_PROPERTY_INFO:
        raise ValueError(f"Unknown {name=}; expected one of {sorted(PYMATGEN_PROPERTY_INFO)}")
    return pymatgen_table()[name].to_numpy(dtype=np.float64)


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``weights @ values`` row by row, summed in an order that does not depend on the number of rows.

    A BLAS matrix product blocks its sums by the shape of the whole batch, so the same composition can get a feature
    one unit in the last place apart in two batches; a tree split at a training value (xgboost's cut points are
    training values) then sends it different ways. Here each row is summed on its own, as numpy sums a row.

    Args:
        weights: ``(n, m)`` per-element weights, e.g. atomic fractions (``m`` element columns).
        values: ``(m,)`` per-element values, or ``(m, d)`` for ``d`` values per element.

    Returns:
        ``(n,)`` or ``(n, d)`` float64.
    """
    if values.ndim == 1:
        return (weights * values).sum(axis=1)
    return np.column_stack([(weights * values[:, k]).sum(axis=1) for k in range(values.shape[1])])
