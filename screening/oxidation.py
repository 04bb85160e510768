"""One oxidation state per element of a composition: the assignment candidate generation starts from.

The charge-balance check (:mod:`screening.charge_balance`) answers "is there *some* neutral assignment"; generating
doped variants needs *the* assignment of the parent, to know the charge a dopant adds or removes. We take it from the
same solver, at the strictest tier that balances the parent in the Pauling order, anion states normal (O-2, S-2,
Cl-1): the common states (at least 10 % of the element's ICSD entries, hydride H-1 next to s-block elements), then
the usual ones (1 %), then every ICSD state. Within that tier the cation/anion split is the solver's best one, and an
element allowed several states (mixed valence, ``Li4Ti5O12`` with Ti +3/+4 in the usual tier) gets the same
position in its interval as every other such element: the one value that makes the total charge zero.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sse_screen.features.elements import ELEMENT_SYMBOLS
from sse_screen.features.formula import parse_batch
from sse_screen.screening.charge_balance import (
    COMMON_COMMONALITY,
    HYDRIDE_PARTNERS,
    USUAL_COMMONALITY,
    _states,
    charge_balance,
)

__all__ = ["OxidationError", "assign_oxidation_states"]

#: Tiers tried in order: (commonality, hydride H-1 allowed next to s-block elements).
_TIERS = ((COMMON_COMMONALITY, True), (USUAL_COMMONALITY, True), ("low", True))


class OxidationError(ValueError):
    """The composition has no neutral assignment in the Pauling order with normal anion states."""


def assign_oxidation_states(amounts: Mapping[str, float], *, charge_tolerance: float = 0.01) -> dict[str, float]:
    """Oxidation state of every element of a composition (module docstring), e per atom.

    Args:
        amounts: Element symbol -> amount (any scale).
        charge_tolerance: Allowed residual charge, e per atom.

    Returns:
        Element symbol -> oxidation state (a float: mixed valence gives a fractional average), in ``amounts`` order.

    Raises:
        OxidationError: No tier balances the composition (say which, in one line).
    """
    formula = "".join(f"{el}{amount:g}" for el, amount in amounts.items())
    batch = parse_batch([formula])
    if not batch.ok[0]:
        raise OxidationError(f"cannot read the composition {formula}: {batch.errors[0]}")
    hydride = any(el in HYDRIDE_PARTNERS for el in amounts)
    for commonality, with_hydride in _TIERS:
        cb = charge_balance(
            batch,
            commonality=commonality,
            charge_tolerance=charge_tolerance,
            normal_anions=True,
            hydride=with_hydride and hydride,
            pauling_only=True,
        )
        if cb.balanced[0]:
            st = _states(commonality, normal_anions=True, hydride=with_hydride and hydride)
            slots = np.flatnonzero(batch.mask[0])
            idx, a, cation = batch.index[0, slots], batch.amount[0, slots], cb.cation[0, slots]
            lo = np.where(cation, st.pos_min[idx], st.neg_min[idx])
            hi = np.where(cation, st.pos_max[idx], st.neg_max[idx])
            total_lo, total_hi = float((a * lo).sum()), float((a * hi).sum())
            t = min(max(-total_lo / (total_hi - total_lo), 0.0), 1.0) if total_hi > total_lo else 0.0
            states = {ELEMENT_SYMBOLS[i]: float(s) for i, s in zip(idx, lo + t * (hi - lo), strict=True)}
            return {el: states[el] for el in amounts}
    raise OxidationError(
        "no neutral assignment of oxidation states with the common anion states (O-2, S-2, N-3, halide -1)"
    )
