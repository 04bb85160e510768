"""Salts of polyatomic anions of one element: peroxides, superoxides, ozonides, azides, polysulfides, triiodides.

In these salts the anion element carries a charge per atom that is not one of its integer oxidation states
(``LiO3``: O3 -, -1/3 e per O) or is a state above its usual one (``Li2O2``: O -1). They are real compounds, but
only as salts of s-block cations (alkali and alkaline-earth metals): with any other cation (P, Ge, La, Zr, In, ...)
a composition that balances only through such an anion state is an excess-anion error (``LiPO4``, ``Li6PS5Cl2``),
not a peroxide. :func:`polyanion_salts` recognises the salts explicitly, so that the charge-balance check
(:mod:`screening.charge_balance`) accepts them without a flag and rejects the rest.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from sse_screen.features.elements import N_ELEMENTS, SYMBOL_INDEX
from sse_screen.features.formula import ParsedBatch

__all__ = ["POLYANIONS", "S_BLOCK_CATIONS", "polyanion_salts", "s_block_only", "thioborates"]

#: Element -> (charge per atom of the element, e; name) of its polyatomic anions.
POLYANIONS: Final[dict[str, tuple[tuple[float, str], ...]]] = {
    "O": ((-1.0, "peroxide O2 2-"), (-1 / 2, "superoxide O2 -"), (-1 / 3, "ozonide O3 -")),
    "N": ((-1 / 3, "azide N3 -"),),
    "S": tuple((-2 / n, f"polysulfide S{n} 2-") for n in range(2, 9)),
    "I": ((-1 / 3, "triiodide I3 -"),),
}
#: s-block cations (hydrogen excluded) -> their one oxidation state.
S_BLOCK_CATIONS: Final[dict[str, int]] = {
    **{s: 1 for s in ("Li", "Na", "K", "Rb", "Cs", "Fr")},
    **{s: 2 for s in ("Be", "Mg", "Ca", "Sr", "Ba", "Ra")},
}


def polyanion_salts(batch: ParsedBatch, *, charge_tolerance: float = 0.01) -> np.ndarray:
    """Which rows are salts of s-block cations with one polyatomic anion of :data:`POLYANIONS`.

    A row qualifies when every element but one is an s-block cation, the remaining element has polyatomic anions,
    and the charge the cations leave per atom of it equals one of them within ``charge_tolerance`` e per atom of
    the composition (``Li2S4``: -1/2 e per S, the S4 2- polysulfide).

    Args:
        batch: Parsed compositions.
        charge_tolerance: Allowed residual charge, e per atom.

    Returns:
        ``(n,)`` object array: the anion's name (``"peroxide O2 2-"``) or ``""``.
    """
    charge = np.zeros(N_ELEMENTS)
    for symbol, state in S_BLOCK_CATIONS.items():
        charge[SYMBOL_INDEX[symbol]] = state
    idx, amount, mask = batch.index, batch.amount, batch.mask
    cation = (charge[idx] > 0) & mask
    other = mask & ~cation
    single = (other.sum(axis=1) == 1) & cation.any(axis=1) & batch.ok
    anion_col = np.where(other, idx, -1).max(axis=1, initial=-1)
    anion_amount = np.where(other, amount, 0.0).sum(axis=1)
    positive = np.where(cation, amount * charge[idx], 0.0).sum(axis=1)
    tolerance = charge_tolerance * np.where(mask, amount, 0.0).sum(axis=1)
    out = np.full(len(batch.errors), "", dtype=object)
    for symbol, anions in POLYANIONS.items():
        rows = single & (anion_col == SYMBOL_INDEX[symbol])
        for per_atom, name in anions:
            hit = rows & (out == "") & (np.abs(positive + per_atom * anion_amount) <= tolerance)
            out[hit] = name
    return out


def thioborates(batch: ParsedBatch) -> np.ndarray:
    """(n,) bool: s-block thio(halo)borates, whose B-S frameworks hold S-S bridges (Li2B2S5, Li4.4B10S18Cl1.8)."""
    allowed = np.zeros(N_ELEMENTS, dtype=bool)
    allowed[[SYMBOL_INDEX[s] for s in (*S_BLOCK_CATIONS, "B", "S", "Se", "F", "Cl", "Br", "I")]] = True
    inside = (allowed[batch.index] | ~batch.mask).all(axis=1)
    present = np.where(batch.mask, batch.index, -1)
    return inside & (present == SYMBOL_INDEX["B"]).any(axis=1) & (present == SYMBOL_INDEX["S"]).any(axis=1)


def s_block_only(batch: ParsedBatch, anions: tuple[str, ...]) -> np.ndarray:
    """(n,) bool: every element is an s-block cation or one of ``anions`` (NaN, Li3N2: not judged as excess)."""
    allowed = np.zeros(N_ELEMENTS, dtype=bool)
    allowed[[SYMBOL_INDEX[s] for s in (*S_BLOCK_CATIONS, *anions)]] = True
    return (allowed[batch.index] | ~batch.mask).all(axis=1)
