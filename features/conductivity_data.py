"""Room-temperature Li-ion conductivity data of two sources, merged without leakage: OBELiX and McHaffie et al. 2025.

* :func:`load_mchaffie` reads ``data/mchaffie/ionic_conductivity_database.csv`` (CC0; 571 rows, see its
  ``PROVENANCE.md``) into a typed table with the same conductivity columns as :func:`features.datasets.load_obelix`.
  135 of its values were *extrapolated* to room temperature from Arrhenius data measured at 313-882 K
  (``extrapolated=True``); they reach physically absurd values (1e-31 S/cm) and are much less certain.
* :func:`conductivity_table` joins OBELiX (every row that parses) and the McHaffie rows whose canonical composition
  (:mod:`features.canonical`) is not in OBELiX: OBELiX's measurement of a composition is kept, McHaffie's copy is
  dropped. Repeat measurements of one McHaffie composition stay as separate rows; every grouping used for
  cross-validation (:func:`chemical_systems`) keeps them together. With ``exclude_test=True`` (fits scored on the
  OBELiX official test) McHaffie rows whose composition is in OBELiX's ``test.csv`` are dropped too, which the
  deduplication already guarantees; the option makes the guarantee explicit and tested.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from sse_screen.features.datasets import _file, _read, _to_float, _warn_unparsed, _with_formulas, load_obelix
from sse_screen.features.formula import ELEMENT_SYMBOLS, parse_batch

#: Source labels of :func:`conductivity_table`'s ``source`` column.
SOURCES = ("obelix", "mchaffie")
#: Spelling variants of OBELiX's ``family`` column, merged.
FAMILY_SPELLING = {"argyrodites": "argyrodite", "cholorides": "chlorides", "halide": "halides"}
#: Family given to McHaffie rows whose chemical system has no OBELiX row (they have no family column).
OTHER_FAMILY = "other (McHaffie)"
#: Largest atomic-fraction distance at which a McHaffie row takes the family of its nearest OBELiX composition.
FAMILY_DISTANCE = 0.2

CITATION = (
    "@article{mchaffie_2025, title={Classification of (dis)ordered structures as superionic lithium conductors with an "
    "experimental structure-conductivity database}, journal={Digital Discovery}, year={2025}, "
    "DOI={10.1039/D5DD00052A}, author={McHaffie, D. B. and others}}"
)


@functools.cache
def _mchaffie_table(path: Path) -> pd.DataFrame:
    raw = _read(path)
    sigma = _to_float(raw["conductivity_siemens_per_cm"], "conductivity_siemens_per_cm")
    if (sigma <= 0).any():
        raise ValueError("Column 'conductivity_siemens_per_cm': non-positive conductivity")
    temperature = raw["lowest_extrapolation_temperature_K"].str.strip()
    extrapolated = temperature != "na"
    log_sigma = np.log10(sigma)
    rest = pd.DataFrame(
        {
            "id": ("icsd-" + raw["icsd_collectioncode"].str.strip()).astype("string"),
            "doi": raw["conductivity_doi"].str.strip().astype("string"),
            "sigma_s_per_cm": sigma,
            "log10_sigma_s_per_cm": log_sigma,
            "censored": np.zeros(len(raw), dtype=bool),
            "log10_sigma_lower": log_sigma,
            "log10_sigma_upper": log_sigma,
            "extrapolated": extrapolated.to_numpy(),
            "lowest_measured_temperature_k": _to_float(
                temperature.mask(~extrapolated, ""), "temperature", allow_empty=True
            ),
        }
    )
    table = _with_formulas(raw["compound"].str.strip(), rest)
    table.attrs.update(target="log10_sigma_s_per_cm", source=str(path))
    return table


def load_mchaffie() -> pd.DataFrame:
    """McHaffie et al. 2025 room-temperature Li-ion conductivities (CC0, Caltech Data Repository via OBELiX).

    Returns:
        Columns ``formula`` (the ``compound`` as reported), ``reduced_formula``, ``composition_key``, ``error``,
        ``id`` (``icsd-<collection code>``), ``doi``, ``sigma_s_per_cm`` (S/cm), ``log10_sigma_s_per_cm``,
        ``censored`` (always False: the file has no bounds), ``log10_sigma_lower`` = ``log10_sigma_upper`` (log10
        S/cm), ``extrapolated`` (bool: extrapolated to room temperature from Arrhenius data) and
        ``lowest_measured_temperature_k`` (K; NaN when measured at room temperature).
    """
    return _warn_unparsed(_mchaffie_table(_file("mchaffie", "ionic_conductivity_database.csv")), "mchaffie")


def chemical_systems(formulas: list[object]) -> np.ndarray:
    """The chemical system (elements present, ``"Li-P-S"`` in Z order) of each formula; ``""`` for an error row."""
    batch = parse_batch(formulas)
    symbols = np.asarray(ELEMENT_SYMBOLS, dtype=object)
    index = np.where(batch.mask, batch.index, 10_000)
    order = np.sort(index, axis=1)
    out = np.array(["-".join(symbols[i] for i in row if i < 10_000) for row in order], dtype=object)
    out[~batch.ok] = ""
    return out


def nearest_family(table: pd.DataFrame, *, max_distance: float = FAMILY_DISTANCE) -> np.ndarray:
    """OBELiX rows keep their family; a McHaffie row takes the family of the nearest OBELiX composition (Euclidean
    distance between atomic-fraction vectors) when it is within ``max_distance``, else :data:`OTHER_FAMILY`."""
    family = table["family_group"].to_numpy(dtype=object).copy()
    fractions = parse_batch(table["formula"].tolist()).dense()
    ref = (table["source"] == "obelix").to_numpy()
    rows = np.flatnonzero(~ref)
    a, b = fractions[rows], fractions[ref]
    squared = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * a @ b.T
    nearest = squared.argmin(axis=1)
    close = np.sqrt(np.maximum(squared[np.arange(len(rows)), nearest], 0)) <= max_distance
    family[rows] = np.where(close, family[ref][nearest], OTHER_FAMILY)
    return family


def conductivity_table(*, exclude_test: bool = False, extrapolated: bool = True) -> pd.DataFrame:
    """OBELiX (all rows that parse) plus the McHaffie rows whose composition OBELiX does not have.

    Args:
        exclude_test: Also guarantee that no McHaffie row has an OBELiX test composition (for fits scored on
            OBELiX's official test split; implied by the deduplication, checked here).
        extrapolated: Keep McHaffie's values extrapolated from higher-temperature Arrhenius data.

    Returns:
        Columns ``source`` (``"obelix"``/``"mchaffie"``), ``id``, ``split`` (OBELiX ``"train"``/``"test"``;
        ``"extra"`` for McHaffie), ``formula``, ``composition_key``, ``chemsys``, ``family_group`` (OBELiX's
        structure family, spelling merged; McHaffie rows: :func:`nearest_family`), ``log10_sigma_lower`` and
        ``log10_sigma_upper`` (log10 S/cm; censored rows have lower = -inf), ``censored``, ``extrapolated`` and,
        for OBELiX rows, the lattice columns and ``cif_path`` (None for McHaffie: ICSD structures are not
        redistributable).
    """
    obelix = load_obelix("all")
    obelix = obelix[obelix["error"].isna()].reset_index(drop=True)
    obelix["source"] = "obelix"
    obelix["extrapolated"] = False
    family = obelix["family"].fillna("unknown").str.strip().str.lower()
    obelix["family_group"] = family.replace(FAMILY_SPELLING).astype(object)
    extra = load_mchaffie()
    extra = extra[extra["error"].isna()]
    extra = extra[~extra["composition_key"].isin(set(obelix["composition_key"]))]
    if exclude_test:
        test_keys = set(obelix.loc[obelix["split"] == "test", "composition_key"])
        extra = extra[~extra["composition_key"].isin(test_keys)]
    if not extrapolated:
        extra = extra[~extra["extrapolated"]]
    extra = extra.reset_index(drop=True).assign(source="mchaffie", split="extra", cif_path=None)
    table = pd.concat([obelix, extra], ignore_index=True)
    table["chemsys"] = chemical_systems(table["formula"].tolist())
    table["family_group"] = nearest_family(table)
    table.attrs.update(target="log10_sigma_s_per_cm")
    return table
