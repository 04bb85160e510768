"""One canonical composition: what "the same composition" means everywhere in sse-screen.

Two formulas are the same composition when their atomic fractions agree after rounding to
:data:`COMPOSITION_DECIMALS` decimals (1e-6 of an atom per atom). Scale and notation do not matter:
``Li10GeP2S12``, ``Li5Ge0.5PS6`` and ``(Li2S)5(GeS2)0.5(P2S5)0.5`` share one key.

The key is itself a formula (elements in Z order, amounts = rounded atomic fractions), so it parses back to the
composition it names: ``Li10GeP2S12`` -> ``Li0.4P0.08S0.48Ge0.04``. Deduplication, leakage exclusion between data
sets, cross-validation groups, leave-self-out in the reference hull and "is this composition known?" all use this
key and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from sse_screen.features.elements import SYMBOL_INDEX
from sse_screen.features.formula import ParsedBatch, parse_batch

__all__ = ["COMPOSITION_DECIMALS", "canonical_key", "canonical_keys"]

#: Atomic fractions are rounded to this many decimals before two compositions are compared.
COMPOSITION_DECIMALS = 6


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
    total = float(sum(amounts.values()))
    if not total > 0:
        raise ValueError(f"composition {dict(amounts)!r} has no positive amount")
    return _key(amounts.keys(), (a / total for a in amounts.values()))


def canonical_keys(formulas: Iterable[object] | ParsedBatch) -> np.ndarray:
    """Canonical keys of a batch, computed once per distinct parsed composition.

    Args:
        formulas: A :class:`ParsedBatch`, or formulas (strings and/or pymatgen Compositions) to parse.

    Returns:
        ``(n,)`` object array of keys; ``None`` for rows that did not parse.
    """
    from sse_screen.features.elements import ELEMENT_SYMBOLS

    batch = formulas if isinstance(formulas, ParsedBatch) else parse_batch(formulas)
    n = len(batch.errors)
    out = np.full(n, None, dtype=object)
    if n == 0:
        return out
    fractions = np.round(batch.fractions(), COMPOSITION_DECIMALS)
    index = np.where(batch.mask, batch.index, -1)
    ok = batch.ok
    # one key per distinct (elements, rounded fractions) row
    packed = np.concatenate([index, fractions], axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    keys = []
    for row in first:
        m = batch.mask[row]
        keys.append(_key((ELEMENT_SYMBOLS[i] for i in batch.index[row][m]), fractions[row][m]))
    out[:] = np.asarray(keys, dtype=object)[inverse.reshape(-1)]
    out[~ok] = None
    return out
