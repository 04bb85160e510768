"""Loaders for the bundled datasets in ``data/``: clean, typed pandas tables with units in the column names.

Every table keeps the file's original ``formula`` string and adds, from one pymatgen parse per distinct string:

- ``reduced_formula``: pymatgen's ``Composition.reduced_formula`` (``<NA>`` when the formula does not parse);
- ``composition_key``: the canonical key of :mod:`features.canonical` (atomic fractions rounded to 6 decimals,
  elements in Z order: ``"Li0.4P0.08S0.48Ge0.04"``), THE identity of a composition: :func:`find_duplicates`,
  :func:`aggregate_by_composition` and leakage exclusion between data sets group by it. pymatgen does not reduce
  non-integer formulas, so ``Li3.4Ge0.4P0.6S4`` and ``Li10.2Ge1.2P1.8S12`` (OBELiX) get different
  ``reduced_formula`` but one key. On the Materials Project files the key and ``reduced_formula`` coincide (checked
  by the tests);
- ``error``: why the formula did not parse, ``<NA>`` otherwise. Unparseable rows are kept, never dropped, and the
  loader issues a ``UserWarning`` naming how many there are.

Files are read with ``keep_default_na=False`` so that the formula ``NaN`` (sodium nitride) stays a formula. Parsed
tables are cached per file for the life of the process; every call returns a fresh copy. The data folder is
``$SSE_SCREEN_DATA_DIR`` when set, else the repository's ``data/`` folder.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

MpSplit = Literal["train", "val"]
ObelixSplit = Literal["all", "train", "test"]
Aggregation = Literal["min", "median"]

DATA_DIR_ENV = "SSE_SCREEN_DATA_DIR"
_CENSORED = re.compile(r"^<\s*([0-9.eE+-]+)$")

OBELIX_COLUMNS: dict[str, str] = {
    "ID": "id",
    "Reduced Composition": "formula",
    "True Composition": "true_composition",
    "Z": "Z",
    "Family": "family",
    "Space group": "space_group",
    "Space group #": "space_group_number",
    "a": "a_angstrom",
    "b": "b_angstrom",
    "c": "c_angstrom",
    "alpha": "alpha_deg",
    "beta": "beta_deg",
    "gamma": "gamma_deg",
    "IC (Total)": "sigma_total_s_per_cm",
    "IC (Bulk)": "sigma_bulk_s_per_cm",
    "DOI": "doi",
}


def data_dir() -> Path:
    """Return the folder holding the bundled datasets.

    Returns:
        ``$SSE_SCREEN_DATA_DIR`` if set, else ``data/`` at the repository root (next to ``features/``).

    Raises:
        FileNotFoundError: if that folder does not exist.
    """
    env = os.environ.get(DATA_DIR_ENV)
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "data"
    if not path.is_dir():
        source = f"${DATA_DIR_ENV}={env!r}" if env else "the repository's data/ folder"
        raise FileNotFoundError(
            f"Dataset folder {path} not found ({source}). Set {DATA_DIR_ENV} to the folder that holds "
            "mp_e_hull/, mp_e_form/, mp_gap/, mp_li_ehull_gap/ and obelix/."
        )
    return path


def _file(*parts: str) -> Path:
    path = data_dir().joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"Dataset file {path} not found; see {path.parent / 'PROVENANCE.md'}.")
    return path


def _check_split(split: str, allowed: tuple[str, ...], hint: str = "") -> None:
    if split not in allowed:
        raise ValueError(f"Unknown {split=}; expected one of {allowed}{hint}")


def _read(path: Path) -> pd.DataFrame:
    # All columns as text first: numeric columns are converted explicitly, with errors that name the bad values.
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def _to_float(values: pd.Series, name: str, *, allow_empty: bool = False) -> pd.Series:
    text = values.str.strip()
    out = pd.to_numeric(text.mask(text == ""), errors="coerce").astype("float64")
    bad = out.isna() & (text != "" if allow_empty else True)
    if bad.any():
        raise ValueError(f"Column {name!r}: {int(bad.sum())} non-numeric value(s), e.g. {text[bad].iloc[0]!r}")
    return out


def _parse_one(formula: str) -> tuple[str | None, str | None]:
    from pymatgen.core import Composition

    try:
        with warnings.catch_warnings():
            # reduced_formula orders elements by electronegativity: pymatgen warns for He, Ne, Ar (no value).
            warnings.simplefilter("ignore", UserWarning)
            comp = Composition(formula.strip())
            if comp.num_atoms <= 0:
                return None, "empty formula"
            reduced = comp.reduced_formula
    except Exception as exc:  # pymatgen raises ValueError, KeyError, ... on malformed strings
        return None, f"pymatgen cannot parse formula: {type(exc).__name__}: {exc}"
    return reduced, None


def _parse_formulas(formulas: pd.Series) -> pd.DataFrame:
    """Parse each distinct formula string once; return ``reduced_formula``, ``composition_key``, ``error``."""
    from sse_screen.features.canonical import canonical_keys

    unique = formulas.unique()
    keys = canonical_keys([str(f).strip() for f in unique])
    parsed = {
        formula: (reduced, key if reduced is not None else None, error)
        for formula, key, (reduced, error) in zip(unique, keys, map(_parse_one, unique), strict=True)
    }
    columns = list(zip(*(parsed[f] for f in formulas), strict=True)) or [(), (), ()]
    names = ("reduced_formula", "composition_key", "error")
    return pd.DataFrame(
        {name: pd.array(col, dtype="string") for name, col in zip(names, columns, strict=True)},
        index=formulas.index,
    )


def _with_formulas(raw_formula: pd.Series, rest: pd.DataFrame) -> pd.DataFrame:
    formula = raw_formula.astype("string").rename("formula")
    return pd.concat([formula, _parse_formulas(raw_formula), rest], axis=1)


def _warn_unparsed(table: pd.DataFrame, name: str) -> pd.DataFrame:
    n_bad = int(table["error"].notna().sum())
    if n_bad:
        warnings.warn(
            f"{name}: {n_bad} row(s) kept with reduced_formula=<NA> because pymatgen cannot parse their formula "
            f"(e.g. {table.loc[table['error'].notna(), 'formula'].iloc[0]!r}); see the 'error' column.",
            UserWarning,
            stacklevel=3,
        )
    return table.copy()


@functools.cache
def _mp_table(path: Path, target: str) -> pd.DataFrame:
    raw = _read(path)
    table = _with_formulas(raw["formula"], pd.DataFrame({target: _to_float(raw["target"], "target")}))
    table.attrs.update(target=target, source=str(path))
    return table


def _mp(parts: tuple[str, str], target: str, aggregate: Aggregation | None) -> pd.DataFrame:
    table = _warn_unparsed(_mp_table(_file(*parts), target), "/".join(parts))
    return table if aggregate is None else aggregate_by_composition(table, target, how=aggregate)


def load_mp_e_hull(split: MpSplit) -> pd.DataFrame:
    """Materials Project energy above hull by composition (CrabNet benchmark split, legacy MP energies).

    One row per composition; the test split (8,500 compositions) is deliberately not bundled.

    Args:
        split: ``"train"`` (39,663 rows) or ``"val"`` (8,499 rows).

    Returns:
        Columns ``formula``, ``reduced_formula``, ``composition_key``, ``error`` (string) and
        ``e_hull_ev_per_atom`` (float64, eV/atom).

    Raises:
        ValueError: for any other split name.
    """
    _check_split(split, get_args(MpSplit), " (the mp_e_hull test split is deliberately not bundled)")
    return _mp(("mp_e_hull", f"{split}.csv"), "e_hull_ev_per_atom", None)


def load_mp_e_form(*, aggregate: Aggregation | None = None) -> pd.DataFrame:
    """Materials Project formation energies (matbench_mp_e_form formulas, mp_e_hull test compositions removed).

    One row per MP structure, so polymorphs repeat a composition (119,533 rows, 86,692 compositions).

    Args:
        aggregate: ``None`` for all rows, or ``"min"`` / ``"median"`` for one row per composition via
            :func:`aggregate_by_composition` (``"min"`` is the right choice for convex-hull work).

    Returns:
        Columns ``formula``, ``reduced_formula``, ``composition_key``, ``error`` (string) and
        ``e_form_ev_per_atom`` (float64, eV/atom); plus ``n_rows`` when aggregated.
    """
    return _mp(("mp_e_form", "mp_e_form.csv"), "e_form_ev_per_atom", aggregate)


def load_mp_gap(*, aggregate: Aggregation | None = None) -> pd.DataFrame:
    """Materials Project PBE band gaps (matbench_mp_gap formulas; 106,113 rows, polymorphs repeat).

    Note: unlike mp_e_form, this file was not filtered, so it can hold compositions of the unseen mp_e_hull test split.

    Args:
        aggregate: ``None`` for all rows, or ``"min"`` / ``"median"`` for one row per composition via
            :func:`aggregate_by_composition`.

    Returns:
        Columns ``formula``, ``reduced_formula``, ``composition_key``, ``error`` (string) and
        ``band_gap_ev`` (float64, eV); plus ``n_rows`` when aggregated.
    """
    return _mp(("mp_gap", "mp_gap.csv"), "band_gap_ev", aggregate)


@functools.cache
def _li_pool_table(path: Path) -> pd.DataFrame:
    raw = _read(path)
    rest = pd.DataFrame(
        {
            "mp_id": raw["MP ID"].astype("string"),
            # The header says "(eV)" but the values are eV/atom (see PROVENANCE.md).
            "e_hull_ev_per_atom": _to_float(raw["Energy Above Hull (eV)"], "Energy Above Hull (eV)"),
            "band_gap_ev": _to_float(raw["Band Gap (eV)"], "Band Gap (eV)"),
        }
    )
    table = _with_formulas(raw["Formula"], rest)
    table.attrs.update(target="e_hull_ev_per_atom", source=str(path))
    return table[["mp_id", *table.columns.drop("mp_id")]]


def load_li_pool() -> pd.DataFrame:
    """Li-containing compounds of current Materials Project (MP2020 energies), pre-filtered to a candidate pool.

    4,010 rows with e_hull <= 0.1 eV/atom and PBE gap >= 0.5 eV: a biased pool for screening, not a stability
    training set. Do not mix its energies with the legacy-MP ``mp_e_hull`` / ``mp_e_form`` values in one hull.

    Returns:
        Columns ``mp_id``, ``formula``, ``reduced_formula``, ``composition_key``, ``error`` (string),
        ``e_hull_ev_per_atom`` (float64, eV/atom) and ``band_gap_ev`` (float64, eV).
    """
    return _warn_unparsed(_li_pool_table(_file("mp_li_ehull_gap", "Li-MP-final.csv")), "Li-MP-final.csv")


def _conductivity(text: pd.Series) -> pd.DataFrame:
    """Split OBELiX conductivity strings into a point value and a censoring interval (S/cm, log10 S/cm)."""
    text = text.str.strip()
    bound = text.str.extract(_CENSORED, expand=False)
    censored = bound.notna()
    sigma = _to_float(text.mask(censored, "0"), "Ionic conductivity (S cm-1)").mask(censored)
    upper_bound = _to_float(bound.fillna("1"), "Ionic conductivity (S cm-1) bound")
    if (sigma <= 0).any() or (upper_bound <= 0).any():
        raise ValueError("Column 'Ionic conductivity (S cm-1)': non-positive conductivity")
    log_sigma = np.log10(sigma)
    return pd.DataFrame(
        {
            "sigma_s_per_cm": sigma,
            "log10_sigma_s_per_cm": log_sigma,
            "censored": censored.astype(bool),
            "log10_sigma_lower": log_sigma.mask(censored, -np.inf),
            "log10_sigma_upper": log_sigma.mask(censored, np.log10(upper_bound)),
        }
    )


@functools.cache
def _obelix_table(directory: Path, split: ObelixSplit) -> pd.DataFrame:
    raw = _read(directory / f"{split}.csv")
    split_of_id = {i: s for s in ("train", "test") for i in _read(directory / f"{s}.csv")["ID"]}
    text_cols = ["id", "true_composition", "family", "space_group", "doi"]
    float_cols = ["a_angstrom", "b_angstrom", "c_angstrom", "alpha_deg", "beta_deg", "gamma_deg"]
    cols = raw[list(OBELIX_COLUMNS)].rename(columns=OBELIX_COLUMNS)
    rest = pd.DataFrame(index=raw.index)
    rest["id"] = cols["id"].astype("string")
    rest["split"] = cols["id"].map(split_of_id).astype("string")
    for name in ("Z", "space_group_number"):
        values = _to_float(cols[name], name)
        if (values % 1 != 0).any():
            raise ValueError(f"Column {name!r}: non-integer value(s)")
        rest[name] = values.astype("int64")
    for name in text_cols[1:]:
        stripped = cols[name].str.strip()
        rest[name] = stripped.mask(stripped == "").astype("string")
    for name in float_cols:
        rest[name] = _to_float(cols[name], name)
    rest = pd.concat([rest, _conductivity(raw["Ionic conductivity (S cm-1)"])], axis=1)
    for name in ("sigma_total_s_per_cm", "sigma_bulk_s_per_cm"):
        rest[name] = _to_float(cols[name], name, allow_empty=True)
    cifs = directory / "randomized_cifs"
    rest["cif_path"] = [
        str((cifs / f"{i}.cif").resolve()) if (cifs / f"{i}.cif").is_file() else None for i in rest["id"]
    ]
    rest["cif_close_match"] = raw["close match"].str.strip().eq("Yes")
    table = _with_formulas(cols["formula"], rest)
    table = table[["id", "split", *table.columns.drop(["id", "split"])]]
    table.attrs.update(target="log10_sigma_s_per_cm", source=str(directory / f"{split}.csv"))
    return table


def load_obelix(split: ObelixSplit) -> pd.DataFrame:
    """OBELiX experimental room-temperature Li-ion conductivities with lattice data and randomized CIFs.

    Censored measurements (``<1E-10``, ``<1E-8`` in the file) are kept as censored: ``censored=True``,
    ``sigma_s_per_cm`` and ``log10_sigma_s_per_cm`` are NaN (no number is invented), and the interval is
    ``log10_sigma_lower = -inf``, ``log10_sigma_upper = log10(bound)``. For measured rows lower == upper == the
    point value. Repeat measurements of one composition are kept (see :func:`find_duplicates`).

    Args:
        split: ``"all"`` (599 rows), ``"train"`` (478) or ``"test"`` (121; report on it, never tune on it).

    Returns:
        Columns ``id``, ``split`` ("train"/"test"), ``formula`` (the file's ``Reduced Composition``),
        ``reduced_formula``, ``composition_key``, ``error``, ``Z`` (formula units per cell, int64),
        ``space_group_number`` (int64), ``true_composition`` (cell composition), ``family``, ``space_group``,
        ``doi`` (string, surrounding spaces stripped, empty -> <NA>), ``a_angstrom``, ``b_angstrom``,
        ``c_angstrom`` (Å), ``alpha_deg``, ``beta_deg``, ``gamma_deg`` (degrees), ``sigma_s_per_cm`` (S/cm),
        ``log10_sigma_s_per_cm``, ``censored`` (bool), ``log10_sigma_lower``, ``log10_sigma_upper``
        (log10 S/cm), ``sigma_total_s_per_cm``, ``sigma_bulk_s_per_cm`` (S/cm, NaN when not reported),
        ``cif_path`` (absolute path of ``randomized_cifs/<id>.cif`` or None), ``cif_close_match`` (bool: the CIF
        is of a closely matching structure).

    Raises:
        ValueError: for an unknown split name.
    """
    _check_split(split, get_args(ObelixSplit))
    directory = _file("obelix", f"{split}.csv").parent
    for other in ("train", "test"):
        _file("obelix", f"{other}.csv")
    return _warn_unparsed(_obelix_table(directory, split), f"obelix/{split}.csv")


def find_duplicates(table: pd.DataFrame, key: str = "composition_key", *, target: str | None = None) -> pd.DataFrame:
    """List the compositions that occur in more than one row.

    Rows whose key is missing (unparseable formulas) are not compared and do not appear.

    Args:
        table: A table from one of the loaders.
        key: Column that identifies a composition: the canonical ``"composition_key"`` (default), or pymatgen's
            ``"reduced_formula"`` (does not merge non-integer formulas written at different scales).
        target: Column whose values to list; defaults to the loader's target (``table.attrs["target"]``).

    Returns:
        One row per repeated composition, most repeated first: ``key``, ``n_rows``, ``formulas`` (tuple of the
        original strings), ``<target>`` (tuple of values, in the target's units), ``<target>_range`` (max - min
        over the non-missing values); plus ``ids`` and ``n_censored`` when the table has ``id`` / ``censored``.
    """
    target = target or table.attrs.get("target")
    if target is None or target not in table.columns:
        raise ValueError(f"Pass target=...: {target=} is not a column of the table")
    repeated = table[table[key].notna() & table[key].duplicated(keep=False)]
    groups = repeated.groupby(key, sort=False)
    out = pd.DataFrame(
        {
            "n_rows": groups.size(),
            "formulas": groups["formula"].agg(tuple),
            target: groups[target].agg(tuple),
            f"{target}_range": groups[target].max() - groups[target].min(),
        }
    )
    if "id" in table.columns:
        out["ids"] = groups["id"].agg(tuple)
    if "censored" in table.columns:
        out["n_censored"] = groups["censored"].sum().astype("int64")
    out = out.rename_axis(key).reset_index()
    return out.sort_values(["n_rows", key], ascending=[False, True], ignore_index=True)


def aggregate_by_composition(
    table: pd.DataFrame, target: str, *, how: Aggregation = "min", key: str = "composition_key"
) -> pd.DataFrame:
    """Collapse polymorphs to one row per composition.

    ``how="min"`` keeps the lowest-energy polymorph's row: the right choice for convex-hull work with formation
    energies (the hull is built from the ground state of each composition). ``how="median"`` keeps each
    composition's first row with the target replaced by the median: a robust label for property models
    (e.g. band gap).

    Args:
        table: A loader's table (e.g. from :func:`load_mp_e_form`, :func:`load_mp_gap`).
        target: The value column to aggregate (e.g. ``"e_form_ev_per_atom"``, eV/atom).
        how: ``"min"`` or ``"median"``.
        key: The composition column (default the canonical key, :mod:`features.canonical`).

    Returns:
        The table's columns, one row per distinct ``key`` (in order of first appearance), plus ``n_rows`` (the
        number of rows merged).

    Raises:
        ValueError: for an unknown ``how``, or when ``key`` or ``target`` has missing values (drop rows with an
            ``error`` first: they cannot be assigned to a composition).
    """
    if how not in get_args(Aggregation):
        raise ValueError(f"Unknown {how=}; expected one of {get_args(Aggregation)}")
    for column in (key, target):
        if table[column].isna().any():
            raise ValueError(f"{int(table[column].isna().sum())} row(s) have no {column}; filter them out first")
    groups = table.groupby(key, sort=False)[target]
    n_rows = groups.size()
    if how == "min":
        out = table.loc[groups.idxmin()]
    else:
        out = table.drop_duplicates(key).copy()
        out[target] = out[key].map(groups.median())
    out = out.reset_index(drop=True)
    out["n_rows"] = out[key].map(n_rows).astype("int64")
    out.attrs = dict(table.attrs)
    return out
