"""Charge neutrality of doped, fractional and mixed-valence compositions: a vectorised, continuous test.

Doped and solid-solution electrolytes (``Li6.4La3Zr1.4Ta0.6O12``, ``Li0.33La0.557TiO3``) have fractional amounts,
and a site may hold one element in two oxidation states (mixed valence). smact's ``smact_validity`` enumerates one
integer oxidation state per element for integer amounts (it truncates fractional amounts), and pymatgen's
``oxi_state_guesses`` fails on every fractional composition. We instead ask a continuous question, which is exact
for fractional amounts and mixed valence:

    Is there an assignment of each element to cation (its positive states) or anion (its negative states), and of
    oxidation states in which each element's amount may be shared among any of its allowed states of that sign,
    such that the total charge is zero?

For one assignment, the amount ``a`` of an element shared among its states ``s_min..s_max`` can carry any charge in
``[a * s_min, a * s_max]``, so the achievable total charge is the interval ``[sum a * s_min, sum a * s_max]`` and the
question is whether 0 lies in it (an exact linear-programming feasibility test, solved in closed form). The allowed
states are smact's ICSD 2024 set: every non-zero state seen in at least 3 ICSD entries
(:data:`OXIDATION_STATES_SOURCE`; smact's ``smact_validity`` default). A tolerance of ``charge_tolerance`` e per atom
(default 0.01) absorbs compositions rounded in the literature (``Li1.005Cl`` passes, ``Li1.05Cl`` does not); no
OBELiX composition needs it.

Two tiers, vectorised over all rows:

1. **Pauling assignments** (smact's electronegativity test: every cation less electronegative than every anion).
   These are the cut points of the elements sorted by Pauling electronegativity (``k - 1`` for ``k`` elements, none
   between equal values): ``k - 1`` array passes.
2. For the rows that fail tier 1, **every assignment** (2^k array passes over those rows only; skipped above
   :data:`MAX_SIGN_ELEMENTS` elements).

Verdicts:

- **Rejected** when no assignment balances, with one of these reasons: ``X: no oxidation state known in the ICSD``
  (noble gases, superheavy elements); ``no element can be an anion`` (an alloy or intermetallic such as NaLi5);
  ``cannot be charge balanced with any oxidation state seen in the ICSD, even mixing states on a site: the best
  assignment (Li +1; O -2/-1) leaves -2 e per LiO3 formula unit`` (LiO3, and Li2O6 alike).
- **Accepted without a flag**: salts of s-block cations with one polyatomic anion (peroxide O2 2-, superoxide O2 -,
  ozonide O3 -, azide N3 -, polysulfides S(n) 2-, triiodide I3 -; :mod:`screening.polyanions`): Li2O2, LiO3, LiN3,
  Li2S4, LiI3, NaO2 and KO2 are real compounds although O, N, S or I carry a charge that is not their usual state.
- **Rejected** when it balances (in the Pauling order) only with an anion state above the normal one
  (:data:`NORMAL_ANION_STATES`: O-1, S-1, N-1, ...) next to any cation that is not s-block, and the normal states
  leave more than :data:`EXCESS_ANION_TOLERANCE` e per atom: ``balances only with an anion state below the common one
  (O above -2, as in peroxides or polysulfides), which exists only in salts of s-block cations, not next to P: with
  the common anion states the best assignment (Li +1; P +1/+2/+3/+4/+5; O -2) leaves -2 e per LiPO4 formula unit``
  (LiPO4, LiLaO3, Li3PS5, Li6PS5Cl2, Li7PS6Cl, Li4P2S9). Within the tolerance it is a nominal composition off by
  vacancies and only flagged. Thioborates (s-block, B, S, halogens) are exempt: their B-S frameworks hold S-S bridges
  (Li2B2S5); so are compositions of s-block cations and anions only (NaN, Li3N2: flagged, as before).
- **Flagged** (kept and ranked) when only tier 2 balances: ``neutral only with B as anion and Li, H as cation ...,
  against the Pauling electronegativity order`` (closo-borates such as Li2B12H12 are real superionic conductors).
- **Flagged** when it balances only with rare states: not with the states that make at least 1 % of the element's
  ICSD entries (:data:`USUAL_COMMONALITY`; drops e.g. O-1 peroxide, La+1, Y+1/+4, Si-4):
  ``not charge balanced with the usual oxidation states (1 % or more of ICSD entries; best: Li +1; La +3; Zr
  +2/+3/+4; O -2): -4 e per Li7La3Zr2O14 formula unit`` (Li7La3Zr2O14). Not a rejection, because published
  electrolytes carry nominal compositions that are off by vacancies or protons (11 OBELiX garnets and perovskites, e.g.
  Li5.74La3Zr1.5Ta0.5O12 at -0.76 e per formula unit as written, reported as -0.0334 e per atom).
- **Flagged** (mildly) when it balances with the usual states but not with the common ones (at least 10 % of the
  element's ICSD entries, :data:`COMMON_COMMONALITY`): ``balanced only with less common oxidation states`` (P+4 in
  Li4P2S6, Zr+2 in Li7La3Zr2O10). Hydride H-1 is common next to s-block elements and Al
  (:data:`HYDRIDE_PARTNERS`: LiBH4, LiAlH4), and H may be hydridic and protic in one compound when a hydride carrier
  (B, Al) and N or O are present (Li4(BH4)(NH2)3, LiNH2BH3).

Measured on the 599 OBELiX and 571 McHaffie electrolytes (``python benchmarks/known_electrolyte_checks.py``): 6
of 1170 rows (0.5 %) are rejected by charge balance (``Li10GePS12`` and ``LiBaP2O7`` as written, the organic
``LiClC3H7NO``, two In/Zr chlorides off by 0.08 e per atom), 11 rows (0.9 %) counting the toxic-element policy
(Pb, Cd, As); flags on OBELiX: 11 not balanced with the usual states, 21 with less common states only, 0 against the
Pauling order. The table of right and wrong compositions is in ``tests/test_charge_balance.py``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from sse_screen.features.elements import ELEMENT_SYMBOLS, N_ELEMENTS, SYMBOL_INDEX, pymatgen_column
from sse_screen.features.formula import ParsedBatch
from sse_screen.screening.polyanions import S_BLOCK_CATIONS, polyanion_salts, s_block_only, thioborates

__all__ = [
    "MAX_SIGN_ELEMENTS",
    "OXIDATION_STATES_SOURCE",
    "USUAL_COMMONALITY",
    "ChargeBalance",
    "charge_balance",
    "charge_balance_verdicts",
]

OXIDATION_STATES_SOURCE: Final[str] = "smact ICSD24 oxidation states (consensus >= 3 entries)"
#: Share of an element's ICSD entries (%) above which an oxidation state counts as usual (the soft-flag tier).
USUAL_COMMONALITY: Final[float] = 1.0
#: Share (%) above which a state counts as common (the mild soft-flag tier; smact's ``commonality="medium"``).
COMMON_COMMONALITY: Final[float] = 10.0


@dataclass(frozen=True)
class _States:
    """Per element (118,): extreme positive and negative oxidation states (NaN where none) and the state lists."""

    pos_min: np.ndarray
    pos_max: np.ndarray
    neg_min: np.ndarray
    neg_max: np.ndarray
    lists: dict[str, tuple[int, ...]]


#: The usual negative state of the elements that form simple anions. A less negative state of one of these
#: (O-1, S-1, N-1, I with -1/3 on average) is a polyatomic anion (O2 2-, S2 2-, N3 -, I3 -) or a hole.
NORMAL_ANION_STATES: Final[dict[str, int]] = {
    "O": -2, "S": -2, "Se": -2, "Te": -2, "N": -3, "F": -1, "Cl": -1, "Br": -1, "I": -1,
}  # fmt: skip
#: Largest residual charge (e per atom) with the normal anion states that a composition needing O-1, S-1, ... may
#: have and still only be flagged: published nominal compositions are off by vacancies up to 0.033 e per atom
#: (Li5.74La3Zr1.5Ta0.5O12, Li6.6SiPO8); excess-anion errors are off by more (Li7PS6Cl: 0.067, LiPO4: 0.33).
EXCESS_ANION_TOLERANCE: Final[float] = 0.05
#: Hydride H-1 counts as a common state next to these electropositive elements (LiBH4, LiNH2-LiBH4, MgH2).
HYDRIDE_PARTNERS: Final[tuple[str, ...]] = ("Li", "Na", "K", "Rb", "Cs", "Be", "Mg", "Ca", "Sr", "Ba", "Al")


@functools.cache
def _icsd_lists(commonality: str | float) -> dict[str, tuple[int, ...]]:
    from smact.utils.oxidation import ICSD24OxStatesFilter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = ICSD24OxStatesFilter().filter(consensus=3, include_zero=False, commonality=commonality)
    return {
        str(el): tuple(sorted(int(x) for x in str(ox).split()))
        for el, ox in zip(table["element"], table["oxidation_state"], strict=True)
        if str(el) in SYMBOL_INDEX and str(ox).strip()
    }


@functools.cache
def _states(
    commonality: str | float, *, normal_anions: bool = False, hydride: bool = False, mixed_hydrogen: bool = False
) -> _States:
    """Allowed states of each element: smact's ICSD24 list at ``commonality``, optionally with the negative states
    of the simple-anion elements restricted to :data:`NORMAL_ANION_STATES`, with hydride H-1 added, and with H
    shared between H+1 and H-1 whatever its role (``mixed_hydrogen``: the amide-borohydrides)."""
    lists = dict(_icsd_lists(commonality))
    if normal_anions:
        for el, state in NORMAL_ANION_STATES.items():
            lists[el] = tuple(sorted({state, *(x for x in lists.get(el, ()) if x > 0)}))
    if hydride:
        lists["H"] = tuple(sorted({-1, *lists.get("H", ())}))
    arrays = {name: np.full(N_ELEMENTS, np.nan) for name in ("pos_min", "pos_max", "neg_min", "neg_max")}
    for el, states in lists.items():
        pos = [s for s in states if s > 0]
        neg = [s for s in states if s < 0]
        z = SYMBOL_INDEX[el]
        if pos:
            arrays["pos_min"][z], arrays["pos_max"][z] = min(pos), max(pos)
        if neg:
            arrays["neg_min"][z], arrays["neg_max"][z] = min(neg), max(neg)
    if mixed_hydrogen:
        h = SYMBOL_INDEX["H"]
        arrays["pos_min"][h], arrays["pos_max"][h], arrays["neg_min"][h], arrays["neg_max"][h] = -1, 1, -1, 1
    return _States(**arrays, lists=lists)


def _mixed_hydrogen_rows(batch: ParsedBatch) -> np.ndarray:
    """(n,) bool: H may be hydridic and protic at once: an electropositive partner (:data:`HYDRIDE_PARTNERS`), a
    hydride carrier (B, Al) and a protic partner (N, O), as in Li4(BH4)(NH2)3 or LiNH2BH3."""

    def has(symbols: Iterable[str]) -> np.ndarray:
        flags = np.zeros(N_ELEMENTS, dtype=bool)
        flags[[SYMBOL_INDEX[s] for s in symbols]] = True
        return (flags[batch.index] & batch.mask).any(axis=1)

    return has(["H"]) & has(HYDRIDE_PARTNERS) & has(["B", "Al"]) & has(["N", "O"])


#: Above this many elements in one formula the sign enumeration (2^k assignments) is skipped (Pauling splits only).
MAX_SIGN_ELEMENTS: Final[int] = 12


@dataclass(frozen=True)
class ChargeBalance:
    """Result of :func:`charge_balance` per row (rows that did not parse: False / NaN).

    Attributes:
        balanced: (n,) bool, some assignment of each element to cation or anion balances the charge within the
            tolerance (rejection test).
        pauling: (n,) bool, balances with every cation less electronegative than every anion.
        residual_e: (n,) smallest distance of 0 from the achievable charge interval over all assignments tried,
            e per formula unit of ``batch`` (inf where no assignment has states for every element).
        cation: (n, k) bool, the best assignment: True for slots acting as cations (slot order of the batch).
    """

    balanced: np.ndarray
    pauling: np.ndarray
    residual_e: np.ndarray
    cation: np.ndarray


def _interval_distance(batch: ParsedBatch, st: _States, cation: np.ndarray) -> np.ndarray:
    """Distance of 0 from the charge interval when ``cation`` slots take positive states and the rest negative."""
    idx, a, m = batch.index, batch.amount, batch.mask
    lo = np.where(cation, st.pos_min[idx], st.neg_min[idx])
    hi = np.where(cation, st.pos_max[idx], st.neg_max[idx])
    lo = np.where(m, a * lo, 0.0).sum(axis=1)
    hi = np.where(m, a * hi, 0.0).sum(axis=1)
    dist = np.maximum(np.maximum(lo, -hi), 0.0)
    return np.where(np.isnan(dist), np.inf, dist)


def _pauling_splits(batch: ParsedBatch, st: _States) -> tuple[np.ndarray, np.ndarray]:
    """Best split at an electronegativity cut: (residual (n,), cation mask (n, k))."""
    idx, mask = batch.index, batch.mask
    en = np.where(mask, pymatgen_column("pauling_electronegativity")[idx], np.inf)
    en = np.where(np.isnan(en), -np.inf, en)  # no electronegativity (He, Ne, Ar): has no states either
    order = np.argsort(en, axis=1, kind="stable")
    en_s = np.take_along_axis(en, order, axis=1)
    m_s = np.take_along_axis(mask, order, axis=1)
    n, k = mask.shape
    best = np.full(n, np.inf)
    cation = np.zeros((n, k), dtype=bool)
    for j in range(1, k):  # cations = the j least electronegative elements
        cut = np.zeros((n, k), dtype=bool)
        np.put_along_axis(cut, order[:, :j], True, axis=1)
        dist = _interval_distance(batch, st, cut)
        with np.errstate(invalid="ignore"):
            dist[~(m_s[:, j] & (en_s[:, j - 1] < en_s[:, j]))] = np.inf
        better = dist < best
        best[better] = dist[better]
        cation[better] = cut[better]
    return best, cation


def _sign_enumeration(batch: ParsedBatch, st: _States) -> tuple[np.ndarray, np.ndarray]:
    """Best of all 2^k cation/anion assignments: (residual (n,), cation mask (n, k))."""
    n, k = batch.mask.shape
    best = np.full(n, np.inf)
    cation = np.zeros((n, k), dtype=bool)
    bits = 1 << np.arange(k)
    for code in range(1, 1 << k):
        cut = np.broadcast_to((code & bits) > 0, (n, k))
        dist = _interval_distance(batch, st, cut)
        better = dist < best
        best[better] = dist[better]
        cation[better] = cut[better]
    return best, cation


def _rows(batch: ParsedBatch, rows: np.ndarray) -> ParsedBatch:
    width = max(int(batch.mask[rows].sum(axis=1).max(initial=1)), 1)
    return ParsedBatch(
        index=batch.index[rows, :width],
        amount=batch.amount[rows, :width],
        mask=batch.mask[rows, :width],
        reduction_factor=batch.reduction_factor[rows],
        errors=[batch.errors[i] for i in rows],
    )


def charge_balance(
    batch: ParsedBatch,
    *,
    commonality: str | float = "low",
    charge_tolerance: float = 0.01,
    normal_anions: bool = False,
    hydride: bool = False,
    pauling_only: bool = False,
) -> ChargeBalance:
    """Vectorised charge-balance test with mixed valence and the Pauling order (rule in the module docstring).

    Args:
        batch: Parsed compositions.
        commonality: smact ICSD24 commonality filter: ``"low"`` (every state seen in >= 3 ICSD entries), or a
            percentage (states making at least that share of the element's ICSD entries, e.g.
            :data:`USUAL_COMMONALITY`), or smact's ``"medium"`` (10 %), ``"high"`` (50 %), ``"main"``.
        charge_tolerance: Allowed residual charge, e per atom.
        normal_anions: Restrict the negative states of O, S, Se, Te, N and the halogens to their usual one
            (:data:`NORMAL_ANION_STATES`): no peroxide O-1 or disulfide S-1.
        hydride: Add hydride H-1 to H's states (the common tier next to electropositive elements).
        pauling_only: Only the Pauling assignments (tier 1), not every cation/anion assignment.

    Returns:
        ChargeBalance arrays over the rows of ``batch``.
    """
    mixed = _mixed_hydrogen_rows(batch)
    if not mixed.any():
        st = _states(commonality, normal_anions=normal_anions, hydride=hydride)
        return _solve(batch, st, charge_tolerance, pauling_only)
    n, k = batch.mask.shape
    out = ChargeBalance(
        balanced=np.zeros(n, dtype=bool),
        pauling=np.zeros(n, dtype=bool),
        residual_e=np.full(n, np.nan),
        cation=np.zeros((n, k), dtype=bool),
    )
    for flag in (False, True):
        rows = np.flatnonzero(mixed == flag)
        if len(rows):
            st = _states(commonality, normal_anions=normal_anions, hydride=hydride, mixed_hydrogen=flag)
            part = _solve(_rows(batch, rows), st, charge_tolerance, pauling_only)
            out.balanced[rows], out.pauling[rows], out.residual_e[rows] = part.balanced, part.pauling, part.residual_e
            out.cation[rows, : part.cation.shape[1]] = part.cation
    return out


def _solve(batch: ParsedBatch, st: _States, charge_tolerance: float, pauling_only: bool) -> ChargeBalance:
    tol = charge_tolerance * batch.amount.sum(axis=1)
    residual, cation = _pauling_splits(batch, st)
    pauling = batch.ok & (residual <= tol)
    balanced = pauling.copy()
    retry = np.flatnonzero(batch.ok & ~pauling) if not pauling_only else np.zeros(0, dtype=np.int64)
    if len(retry):
        sub = _rows(batch, retry)
        if sub.mask.shape[1] <= MAX_SIGN_ELEMENTS:
            res_any, cat_any = _sign_enumeration(sub, st)
            better = res_any < residual[retry]
            residual[retry[better]] = res_any[better]
            cation[retry[better], : cat_any.shape[1]] = cat_any[better]
            cation[retry[better], cat_any.shape[1] :] = False
            balanced[retry] = res_any <= tol[retry]
    residual = np.where(batch.ok, residual, np.nan)
    return ChargeBalance(balanced=balanced, pauling=pauling, residual_e=residual, cation=cation)


def _signed(states: Iterable[int]) -> str:
    return "/".join(f"{s:+d}" for s in states)


@functools.cache
def _states_text(symbol: str, cation: bool, commonality: str | float, normal_anions: bool = False) -> str:
    """``"O -2/-1"``: the states of one sign of an element (cached: reasons are built per failing row)."""
    states = _states(commonality, normal_anions=normal_anions).lists.get(symbol, ())
    return f"{symbol} {_signed(x for x in states if (x > 0) == cation)}"


def _assignment(
    batch: ParsedBatch, cb: ChargeBalance, i: int, commonality: str | float, normal_anions: bool = False
) -> tuple[list[str], list[str], str]:
    """Cations, anions and the states they may take (``"Li +1; O -2/-1"``) in the best assignment of row i."""
    slots = np.flatnonzero(batch.mask[i])
    cations = [ELEMENT_SYMBOLS[batch.index[i, j]] for j in slots if cb.cation[i, j]]
    anions = [ELEMENT_SYMBOLS[batch.index[i, j]] for j in slots if not cb.cation[i, j]]
    states = [_states_text(s, True, commonality, normal_anions) for s in cations]
    states += [_states_text(s, False, commonality, normal_anions) for s in anions]
    return cations, anions, "; ".join(states)


def _charge_reason(batch: ParsedBatch, cb: ChargeBalance, i: int, unit: tuple[str, float]) -> str:
    st = _states("low")
    syms = [ELEMENT_SYMBOLS[c] for c in batch.index[i, batch.mask[i]]]
    missing = [s for s in syms if s not in st.lists]
    if missing:
        return f"{', '.join(missing)}: no oxidation state known in the ICSD, so not an ionic compound"
    if not any(x < 0 for s in syms for x in st.lists[s]):
        return f"no element can be an anion ({', '.join(syms)}: no negative oxidation state): not an ionic compound"
    if not np.isfinite(cb.residual_e[i]):
        return f"no assignment of cations and anions is possible with ICSD oxidation states ({', '.join(syms)})"
    _, _, states = _assignment(batch, cb, i, "low")
    signed = _signed_residual(batch, cb, i, st)
    return (
        "cannot be charge balanced with any oxidation state seen in the ICSD, even mixing states on a site: the best "
        f"assignment ({states}) leaves {signed / unit[1]:+.3g} e per {unit[0]}"
    )


def _excess_anion_reason(
    sub: ParsedBatch, strict: ChargeBalance, j: int, unit: tuple[str, float], low_anions: list[str]
) -> str:
    """Why a composition that balances only through O-1, S-1, ... with a non-s-block cation is rejected."""
    cations, _, states = _assignment(sub, strict, j, "low", normal_anions=True)
    low = _states("low").lists
    anions = [s for s in low_anions if max((x for x in low.get(s, ()) if x < 0), default=0) > _normal(s)]
    anions = anions or low_anions
    above = ", ".join(f"{s} above {NORMAL_ANION_STATES.get(s, 0):+d}" for s in anions)
    others = [s for s in cations if s not in S_BLOCK_CATIONS] or cations
    signed = _signed_residual(sub, strict, j, _states("low", normal_anions=True))
    return (
        f"balances only with an anion state below the common one ({above}, as in peroxides or polysulfides), which "
        f"exists only in salts of s-block cations, not next to {', '.join(others)}: with the common anion states the "
        f"best assignment ({states}) leaves {signed / unit[1]:+.3g} e per {unit[0]}"
    )


def _normal(symbol: str) -> int:
    return NORMAL_ANION_STATES.get(symbol, 0)


def _signed_residual(batch: ParsedBatch, cb: ChargeBalance, i: int, st: _States) -> float:
    idx, a, m, c = batch.index[i], batch.amount[i], batch.mask[i], cb.cation[i]
    lo = float(np.where(m, a * np.where(c, st.pos_min[idx], st.neg_min[idx]), 0.0).sum())
    return lo if lo > 0 else -float(cb.residual_e[i])


def _excess_anion_rejections(
    batch: ParsedBatch, cb: ChargeBalance, rows: np.ndarray, charge_tolerance: float, units: list[tuple[str, float]]
) -> dict[int, str]:
    """Rows of ``rows`` (balanced) that need an anion above its normal state by more than the vacancy tolerance."""
    if not len(rows):
        return {}
    exempt = thioborates(batch) | s_block_only(batch, tuple(NORMAL_ANION_STATES))  # only other cations are judged
    rows = rows[~exempt[rows]]
    sub = _rows(batch, rows)
    strict = charge_balance(sub, charge_tolerance=charge_tolerance, normal_anions=True, pauling_only=True)
    atoms = np.where(sub.mask, sub.amount, 0.0).sum(axis=1)
    reasons = {}
    for j in np.flatnonzero(~strict.balanced & (strict.residual_e > EXCESS_ANION_TOLERANCE * atoms)):
        i = int(rows[j])
        _, low_anions, _ = _assignment(batch, cb, i, "low")
        reasons[i] = _excess_anion_reason(sub, strict, int(j), units[i], low_anions)
    return reasons


def charge_balance_verdicts(
    batch: ParsedBatch, *, charge_tolerance: float = 0.01, units: Sequence[tuple[str, float]] | None = None
) -> tuple[np.ndarray, dict[int, str], np.ndarray]:
    """Charge neutrality (rejection) and the electronegativity order and common states (soft flags).

    Residuals are in e per formula unit of ``batch`` as parsed. Give it the canonical formulas
    (:mod:`features.canonical`) so that they do not depend on how a formula was written, and ``units`` to name each
    row's unit in the text and the number of formula units of ``batch`` in it: ``("LiO3 formula unit", 1)``, or
    ``("atom", 1112)`` to give the residual of ``Li287La150Zr75Ta25O600`` per atom; default ``("formula unit", 1)``.

    Args:
        batch: Parsed compositions.
        charge_tolerance: Allowed residual charge, e per atom.
        units: Per row, what the residual is counted per: (name, atoms of ``batch``'s formula unit in one).

    Returns:
        ``passed`` (n,) bool (rows that did not parse pass: they are invalid already), the rejection reason of each
        failing row by position, and an (n,) object array of soft flags: "" or why the balance is chemically
        unusual (against the Pauling order, or uncommon states only). Salts of polyatomic anions
        (:mod:`screening.polyanions`) pass without a flag.
    """
    cb = charge_balance(batch, charge_tolerance=charge_tolerance)
    units = list(units) if units is not None else [("formula unit", 1.0)] * len(batch.errors)
    salt = polyanion_salts(batch, charge_tolerance=charge_tolerance) != ""
    excess = _excess_anion_rejections(batch, cb, np.flatnonzero(cb.pauling & ~salt), charge_tolerance, units)
    balanced = cb.balanced.copy()
    balanced[list(excess)] = False
    passed = balanced | salt | ~batch.ok
    reasons = {int(i): _charge_reason(batch, cb, int(i), units[i]) for i in np.flatnonzero(~passed & ~cb.balanced)}
    reasons |= excess
    flags = np.full(len(passed), "", dtype=object)
    judged = balanced & ~salt
    for i in np.flatnonzero(judged & ~cb.pauling):
        cations, anions, states = _assignment(batch, cb, int(i), "low")
        flags[i] = (
            f"neutral only with {', '.join(anions)} as anion and {', '.join(cations)} as cation ({states}), "
            "against the Pauling electronegativity order"
        )
    rows = np.flatnonzero(judged & cb.pauling)
    if len(rows):
        sub = _rows(batch, rows)
        usual = charge_balance(sub, commonality=USUAL_COMMONALITY, charge_tolerance=charge_tolerance)
        st = _states(USUAL_COMMONALITY)
        for j in np.flatnonzero(~usual.balanced):
            text = (
                f"not charge balanced with the usual oxidation states ({USUAL_COMMONALITY:g} % or more of ICSD entries"
            )
            if np.isfinite(usual.residual_e[j]):
                _, _, states = _assignment(sub, usual, int(j), USUAL_COMMONALITY)
                name, size = units[rows[j]]
                text += f"; best: {states}): {_signed_residual(sub, usual, int(j), st) / size:+.3g} e per {name}"
            else:
                text += ")"
            flags[rows[j]] = text
        rows = rows[usual.balanced]
    for i in rows[~_common_balance(batch, rows, charge_tolerance)] if len(rows) else ():
        syms = [ELEMENT_SYMBOLS[c] for c in batch.index[i, batch.mask[i]]]
        st = _states(COMMON_COMMONALITY, hydride=_has_hydride_partner(syms))
        usual_states = ", ".join(f"{s} {_signed(st.lists.get(s, ()))}" for s in syms)
        flags[i] = (
            f"balanced only with less common oxidation states (under {COMMON_COMMONALITY:g} % of ICSD entries; "
            f"the common ones: {usual_states})"
        )
    return passed, reasons, flags


def _has_hydride_partner(symbols: Iterable[str]) -> bool:
    return any(s in HYDRIDE_PARTNERS for s in symbols)


def _common_balance(batch: ParsedBatch, rows: np.ndarray, charge_tolerance: float) -> np.ndarray:
    """(len(rows),) bool: balanced with the common states (H-1 common next to :data:`HYDRIDE_PARTNERS`)."""
    partner = np.zeros(N_ELEMENTS, dtype=bool)
    partner[[SYMBOL_INDEX[s] for s in HYDRIDE_PARTNERS]] = True
    hydride = (partner[batch.index[rows]] & batch.mask[rows]).any(axis=1)
    out = np.zeros(len(rows), dtype=bool)
    for flag in (False, True):
        part = np.flatnonzero(hydride == flag)
        if len(part):
            sub = _rows(batch, rows[part])
            out[part] = charge_balance(
                sub, commonality=COMMON_COMMONALITY, charge_tolerance=charge_tolerance, hydride=flag
            ).balanced
    return out
