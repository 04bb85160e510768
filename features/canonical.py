"""One canonical composition: what "the same composition" means everywhere in sse-screen.

Two formulas are the same composition when their atomic fractions agree after rounding to
:data:`COMPOSITION_DECIMALS` decimals (1e-6 of an atom per atom). Scale and notation do not matter:
``Li10GeP2S12``, ``Li5Ge0.5PS6`` and ``(Li2S)5(GeS2)(P2S5)`` share one key.

The key is itself a formula (elements in Z order, amounts = rounded atomic fractions), so it parses back to the
composition it names: ``Li10GeP2S12`` -> ``Li0.4P0.08S0.48Ge0.04``. Deduplication, leakage exclusion between data
sets, cross-validation groups, leave-self-out in the reference hull and "is this composition known?" all use this
key and nothing else.

The **canonical formula** of a composition is what the models are asked about, so that every prediction is a function
of the key and not of how the formula was written: its smallest integer formula (``Li5Ge0.5PS6`` and
``Li20Ge2P4S24`` -> ``Li10GeP2S12``; elements in Pauling electronegativity order, like pymatgen's reduced formula),
found as the amounts divided by the smallest one times the smallest multiplier up to :data:`MAX_FORMULA_MULTIPLIER`
whose integer formula has the same key (the search of the ``Li per formula unit`` feature, so that feature is the
same for a formula and its canonical formula); else the key itself, whose amounts are atomic fractions. Quantities
"per formula unit" in messages (the charge-balance residual) are per formula unit of the canonical formula when it
has at most :data:`READABLE_FORMULA_ATOMS` atoms, else per atom (``Li5.74La3Zr1.5Ta0.5O12`` is
``Li287La150Zr75Ta25O600``: its residual is given per atom).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from sse_screen.features.elements import ELEMENT_SYMBOLS, SYMBOL_INDEX
from sse_screen.features.formula import ParsedBatch, parse_batch

__all__ = [
    "COMPOSITION_DECIMALS",
    "MAX_FORMULA_MULTIPLIER",
    "READABLE_FORMULA_ATOMS",
    "CanonicalBatch",
    "canonical_compositions",
    "canonical_key",
    "canonical_keys",
]

#: Atomic fractions are rounded to this many decimals before two compositions are compared.
COMPOSITION_DECIMALS = 6
#: Largest multiplier of the amounts over the smallest amount tried to find an integer formula.
MAX_FORMULA_MULTIPLIER = 200
#: Largest integer formula (atoms) named in messages; residuals of larger ones are given per atom.
READABLE_FORMULA_ATOMS = 100


def _key(symbols: Iterable[str], fractions: Iterable[float]) -> str:
    parts = []
    for symbol, fraction in sorted(zip(symbols, fractions, strict=True), key=lambda p: SYMBOL_INDEX[p[0]]):
        value = round(float(fraction), COMPOSITION_DECIMALS)
        if value > 0:
            parts.append(f"{symbol}{value:.{COMPOSITION_DECIMALS}f}".rstrip("0").rstrip("."))
    return "".join(parts)


def canonical_key(amounts: Mapping[str, float]) -> str:
    """Canonical key of one composition.

    Args:
        amounts: Element symbol -> amount (any scale, e.g. from :func:`features.formula.parse_formula`).

    Returns:
        The key: elements in Z order with their atomic fractions rounded to :data:`COMPOSITION_DECIMALS`.

    Raises:
        ValueError: No positive amount.
    """
    values = np.asarray(list(amounts.values()), dtype=np.float64)
    total = values.sum()
    if not total > 0:
        raise ValueError(f"composition {dict(amounts)!r} has no positive amount")
    # the same arithmetic as canonical_keys (numpy division and rounding), so both always agree
    return _key(amounts.keys(), np.round(values / total, COMPOSITION_DECIMALS))


@dataclass(frozen=True)
class CanonicalBatch:
    """Canonical identity of every row of a batch (module docstring).

    Attributes:
        keys: ``(n,)`` object array of canonical keys; None for rows that did not parse.
        formulas: ``(n,)`` object array of canonical formulas (smallest integer formula, else the key); None likewise.
        atoms: ``(n,)`` int, atoms per formula unit of the canonical formula when it is an integer formula, else 0
            (it is the key, written per atom).
    """

    keys: np.ndarray
    formulas: np.ndarray
    atoms: np.ndarray

    @property
    def integer(self) -> np.ndarray:
        """``(n,)`` bool, the canonical formula is an integer formula."""
        return self.atoms > 0


def canonical_keys(formulas: Iterable[object] | ParsedBatch) -> np.ndarray:
    """Canonical keys of a batch, computed once per distinct parsed composition.

    Args:
        formulas: A :class:`ParsedBatch`, or formulas (strings and/or pymatgen Compositions) to parse.

    Returns:
        ``(n,)`` object array of keys; ``None`` for rows that did not parse.
    """
    return canonical_compositions(formulas).keys


def canonical_compositions(formulas: Iterable[object] | ParsedBatch) -> CanonicalBatch:
    """Canonical keys and canonical formulas of a batch, computed once per distinct parsed composition.

    Args:
        formulas: A :class:`ParsedBatch`, or formulas (strings and/or pymatgen Compositions) to parse.

    Returns:
        The keys, canonical formulas and formula-unit sizes of every row (None / 0 for rows that did not parse).
    """
    batch = formulas if isinstance(formulas, ParsedBatch) else parse_batch(formulas)
    n = len(batch.errors)
    keys = np.full(n, None, dtype=object)
    out_formulas = np.full(n, None, dtype=object)
    atoms = np.zeros(n, dtype=np.int64)
    if n == 0:
        return CanonicalBatch(keys=keys, formulas=out_formulas, atoms=atoms)
    fractions = np.round(batch.fractions(), COMPOSITION_DECIMALS)
    index = np.where(batch.mask, batch.index, -1)
    ok = batch.ok
    # one key per distinct (elements, rounded fractions) row
    packed = np.concatenate([index, fractions], axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    u_mask, u_index, u_frac = batch.mask[first], batch.index[first], fractions[first]
    counts = _integer_counts(u_frac, u_mask)
    rank = _electronegativity_rank()
    u_keys, u_formulas = [], []
    for idx, frac, cnt in zip(np.where(u_mask, u_index, -1).tolist(), u_frac.tolist(), counts.tolist(), strict=True):
        elements = [(i, f, c) for i, f, c in zip(idx, frac, cnt, strict=True) if i >= 0]
        key = _format(sorted(elements), 1)
        u_keys.append(key)
        u_formulas.append(_format(sorted(elements, key=lambda e: rank[e[0]]), 2) if cnt[0] > 0 else key)
    keys[:] = np.asarray(u_keys, dtype=object)[inverse]
    out_formulas[:] = np.asarray(u_formulas, dtype=object)[inverse]
    atoms[:] = counts.sum(axis=1)[inverse]
    keys[~ok], out_formulas[~ok], atoms[~ok] = None, None, 0
    return CanonicalBatch(keys=keys, formulas=out_formulas, atoms=atoms)


def _integer_counts(fractions: np.ndarray, mask: np.ndarray, *, block: int = 4096) -> np.ndarray:
    """Smallest integer amounts with the same rounded fractions (module docstring); zero rows where none.

    The ratios to the smallest fraction times each multiplier ``m`` are tested cheaply at once (within their
    rounding error of integers), then exactly (the integer formula's rounded fractions equal the row's) at the
    smallest candidate ``m``, and at the next one where that fails.
    """
    out = np.zeros(fractions.shape, dtype=np.int64)
    multipliers = np.arange(1, MAX_FORMULA_MULTIPLIER + 1, dtype=np.float64)
    half = 0.5 * 10.0**-COMPOSITION_DECIMALS
    rows = np.flatnonzero(mask.any(axis=1))
    for start in range(0, len(rows), block):
        r = rows[start : start + block]
        f, m = fractions[r], mask[r]
        smallest = np.where(m, f, np.inf).min(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(m, f / smallest, 0.0)
            slack = np.where(m, ratio * (half / np.where(m, f, 1.0) + half / smallest), 0.0)
        candidate = np.ones((len(r), len(multipliers)), dtype=bool)
        for j in range(f.shape[1]):
            x = ratio[:, j, None] * multipliers
            candidate &= ~m[:, j, None] | (np.abs(x - np.rint(x)) <= slack[:, j, None] * multipliers + 1e-9)
        live = np.flatnonzero(candidate.any(axis=1))
        while len(live):
            first = candidate[live].argmax(axis=1)
            counts = np.where(m[live], np.rint(ratio[live] * multipliers[first][:, None]), 0.0)
            counts //= np.gcd.reduce(counts.astype(np.int64), axis=1)[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                same = np.round(counts / counts.sum(axis=1, keepdims=True), COMPOSITION_DECIMALS) == f[live]
            hit = np.all(same | ~m[live], axis=1) & np.all((counts >= 1) | ~m[live], axis=1)
            out[r[live[hit]]] = counts[hit].astype(np.int64)
            candidate[live[~hit], first[~hit]] = False
            live = live[~hit]
            live = live[candidate[live].any(axis=1)]
    return out


@functools.cache
def _electronegativity_rank() -> list[int]:
    """Element column -> position in Pauling electronegativity order (then Z; no value, e.g. He, Ne, Ar: last)."""
    from sse_screen.features.elements import pymatgen_column

    x = np.nan_to_num(pymatgen_column("pauling_electronegativity"), nan=np.inf)
    order = np.lexsort((np.arange(len(x)), x))
    rank = np.empty(len(x), dtype=np.int64)
    rank[order] = np.arange(len(x))
    return rank.tolist()


def _format(elements: list[tuple[int, float, int]], field: int) -> str:
    """Formula text of (element column, rounded fraction, integer count) triples, amounts from ``field``."""
    if field == 1:
        digits = COMPOSITION_DECIMALS
        return "".join(f"{ELEMENT_SYMBOLS[i]}{f:.{digits}f}".rstrip("0").rstrip(".") for i, f, _ in elements)
    return "".join(f"{ELEMENT_SYMBOLS[i]}{c if c != 1 else ''}" for i, _, c in elements)
