"""What is already known about a candidate's composition, shown next to the predictions.

A chemist should never wonder whether Li6PS5Cl "is predicted" at -3.3 when it was measured at about -2.7. Every row
of ``sse-screen predict`` / ``rank`` (and the web page) gets, when its canonical composition
(:func:`features.canonical.canonical_key`) is in the bundled data:

=============================  =====================================================================================
column                         meaning
=============================  =====================================================================================
known_log10_sigma_s_per_cm     measured room-temperature ionic conductivity, log10 S/cm (median of the measurements;
                               NaN when every measurement is censored, e.g. ``<1E-10``: the source says so)
known_sigma_source             where it was measured: ``OBELiX (median of 3, ...); doi:...``
known_e_hull_ev_per_atom       Materials Project energy above hull, eV/atom
known_band_gap_ev              Materials Project PBE band gap, eV
known_source                   where the MP values come from (MP ID and energy flavour, or the bundled table)
=============================  =====================================================================================

The values come from ``known/known_compositions.parquet`` in this package, built from ``data/`` by
``python -m sse_screen.experiments.known_compositions`` (source hashes in ``known/known_compositions.json``); nothing
here reads ``data/``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from sse_screen.features.canonical import COMPOSITION_DECIMALS

KNOWN_DIR: Final[Path] = Path(__file__).resolve().parent / "known"
KNOWN_PARQUET: Final[Path] = KNOWN_DIR / "known_compositions.parquet"
#: Columns :func:`attach_known` appends, in order.
KNOWN_COLUMNS: Final[tuple[str, ...]] = (
    "known_log10_sigma_s_per_cm",
    "known_sigma_source",
    "known_e_hull_ev_per_atom",
    "known_band_gap_ev",
    "known_source",
)
_ELEMENT_AMOUNT = re.compile(r"([A-Z][a-z]?)([0-9.]+)")
_FROM_ARTEFACT: Final[dict[str, str]] = {
    "known_log10_sigma_s_per_cm": "log10_sigma_s_per_cm",
    "known_sigma_source": "sigma_source",
    "known_e_hull_ev_per_atom": "e_hull_ev_per_atom",
    "known_band_gap_ev": "band_gap_ev",
    "known_source": "mp_source",
}


#: Odd 64-bit constants of the composition fingerprint (splitmix64's).
#: Up to this many distinct formulas, :func:`attach_known` looks every canonical key up directly.
DIRECT_LOOKUP_FORMULAS: Final = 2000
_K1, _K2, _K3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _fingerprint(index: np.ndarray, quanta: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(n,)`` uint64 order-free fingerprint of compositions: element columns and fractions in 1e-6 units.

    Equal canonical keys give equal fingerprints (the converse is checked with the keys themselves); it lets
    :func:`attach_known` build canonical keys only for rows that may be known.
    """
    with np.errstate(over="ignore"):
        mixed = (index.astype(np.uint64) + np.uint64(1)) * _K1 ^ quanta.astype(np.uint64) * _K2
        mixed = (mixed ^ (mixed >> np.uint64(31))) * _K3
    return np.where(present, mixed, np.uint64(0)).sum(axis=1, dtype=np.uint64)


@functools.cache
def known_table() -> pd.DataFrame:
    """The known-composition table, indexed by canonical key (read once per process).

    Raises:
        FileNotFoundError: The artefact is missing from the installation (a packaging error).
    """
    if not KNOWN_PARQUET.is_file():
        raise FileNotFoundError(
            f"{KNOWN_PARQUET} is missing; rebuild it with `python -m sse_screen.experiments.known_compositions`"
        )
    table = pd.read_parquet(KNOWN_PARQUET)
    return table.set_index("composition_key")


@functools.cache
def _known_fingerprints() -> np.ndarray:
    """Sorted fingerprints of the known keys (a key is a formula of rounded fractions: read it directly)."""
    from sse_screen.features.elements import SYMBOL_INDEX

    keys = known_table().index
    joined = "|".join(keys)
    pairs = _ELEMENT_AMOUNT.findall(joined)  # one (symbol, fraction) per capital letter, in order
    text = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    rows = np.cumsum(text == ord("|"))[np.flatnonzero((text >= ord("A")) & (text <= ord("Z")))]
    starts = np.searchsorted(rows, rows, side="left")
    cols = np.arange(len(rows)) - starts
    shape = (len(keys), int(cols.max()) + 1 if len(cols) else 1)
    index, quanta = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    present = np.zeros(shape, dtype=bool)
    index[rows, cols] = [SYMBOL_INDEX[symbol] for symbol, _ in pairs]
    quanta[rows, cols] = np.rint(np.array([f for _, f in pairs], dtype=float) * 10**COMPOSITION_DECIMALS)
    present[rows, cols] = True
    return np.unique(_fingerprint(index, quanta, present))


def _candidate_fingerprints(formulas: list[str]) -> np.ndarray:
    from sse_screen.features.formula import parse_batch

    batch = parse_batch(formulas)
    quanta = np.rint(batch.fractions() * 10**COMPOSITION_DECIMALS).astype(np.int64)
    out = _fingerprint(batch.index, quanta, batch.mask & (quanta > 0))
    out[~batch.ok] = 0
    return out


def attach_known(table: pd.DataFrame, *, formula_column: str = "formula") -> pd.DataFrame:
    """Append :data:`KNOWN_COLUMNS` to a table with a formula column (NaN / "" where nothing is known).

    Args:
        table: Any table with ``formula_column``; rows that do not parse get nothing known.
        formula_column: Name of the formula column.

    Returns:
        A copy of ``table`` with the known columns appended (float64 values, str sources).

    Raises:
        ValueError: The table already has one of the known columns.
    """
    from sse_screen.features.canonical import canonical_keys

    clashes = sorted(set(KNOWN_COLUMNS) & set(table.columns))
    if clashes:
        raise ValueError(f"input columns clash with known-composition columns: {', '.join(clashes)}")
    codes, uniques = pd.factorize(table[formula_column].astype(str), use_na_sentinel=False)
    formulas = list(uniques)
    keys = np.full(len(formulas), None, dtype=object)
    if len(formulas) > DIRECT_LOOKUP_FORMULAS:  # canonical keys only for formulas whose fingerprint is a known one
        maybe = np.flatnonzero(np.isin(_candidate_fingerprints(formulas), _known_fingerprints()))
    else:  # a short list: its keys cost less than fingerprinting the known table (~0.4 s, once per process)
        maybe = np.arange(len(formulas))
    if len(formulas) and len(maybe):
        keys[maybe] = canonical_keys([formulas[i] for i in maybe])
    found = known_table().reindex(pd.Index(keys, dtype=object))
    out = table.copy()
    for column, source in _FROM_ARTEFACT.items():
        values = found[source].to_numpy()
        if column.endswith("source"):
            values = pd.Series(values, dtype=object).fillna("").to_numpy(dtype=object)
        else:
            values = values.astype(np.float64)
        out[column] = values[codes] if len(codes) else values[:0]
    return out
