"""Candidate generation: doped and substituted variants of known electrolytes, charge compensated, ready to rank.

For each parent composition, :func:`generate_candidates` makes the moves a chemist makes, systematically:

1. The parent's oxidation states (:func:`screening.oxidation.assign_oxidation_states`: the charge-balance solver's
   assignment with common states, e.g. Li +1, La +3, Zr +4, O -2).
2. For every site (each element, the mobile ion's included), the ions that may replace it
   (:func:`screening.substitution.replacements`: Hautier et al.'s substitution probabilities, common oxidation
   states, no excluded element, closed-shell ions preferred), isovalent or aliovalent, on cation and anion
   sublattices; mixed-anion solid solutions (Cl/Br/I, O/S/Se) always.
3. Each replacement on a grid of fractions ``f`` of the site (:data:`DEFAULT_FRACTIONS`, up to half the site; the
   mobile-ion site its own finer grid, :data:`DEFAULT_MOBILE_SITE_FRACTIONS`, since a
   dopant there removes several mobile ions; isovalent ions also ``1 - f`` and the whole site, the isostructural
   analogue, Li3ErCl6 from Li3YCl6; aliovalent ones also the whole site, Li5La3Ta2O12 from Li7La3Zr2O12):
   ``x = f * n_site`` dopant atoms per parent formula unit. An aliovalent replacement is compensated by the
   mobile-ion content (vacancies or interstitials): Ta5+ on Zr4+ gives ``Li(7-x)La3Zr(2-x)Ta(x)O12``, Al3+ on Li+ gives
   ``Li(7-3x)Al(x)La3Zr2O12``, Cl- on S2- gives ``Li(6-x)PS(5-x)Cl(1+x)``; a move that would remove or add more than
   :data:`MAX_MOBILE_ION_CHANGE` of the mobile ions, or put a dopant on more than :data:`MAX_MOBILE_SITE_FRACTION` of
   the mobile-ion sites, is not made. Every candidate is therefore neutral with the parent's states and the dopant's
   common state, and passes the charge-balance check by construction (checked again: the count of any that do not
   is in ``attrs["failed_checks"]``, 0 by test; no cation more electronegative than the parent's anions).
4. **Co-doping** (:func:`_pairs`): two moves at once with one joint compensation, ``Al on Li, x=0.07 + Ta on Zr,
   x=0.25, Li compensates`` (``Li(7-3y-x)Al(y)La3Zr(2-x)Ta(x)O12``): a major move (:data:`CODOPING_MAJOR_FRACTIONS`
   of its site, or all of it) and a minor one (:data:`CODOPING_FRACTIONS`; half of a shared site), on two sites or
   sharing one (LAGP from LiTi2(PO4)3: Ge on 3/4 of the Ti sites, Al on the rest), among the
   :data:`DEFAULT_CODOPANTS_PER_SITE` most plausible moves of every site, ranked by the product of the two
   plausibilities. Single moves come first; pairs fill each parent's budget (:data:`DEFAULT_MAX_PER_PARENT`).
5. Candidates are deduplicated by canonical composition (:mod:`features.canonical`) across parents, the first
   (most plausible) move kept; ``known_as`` says where the composition already appears in the bundled data
   (:mod:`screening.known`: OBELiX conductivity, Materials Project entry).

A parent that cannot be used (does not parse, lacks the mobile ion, contains an excluded element, has no neutral
assignment) gives one row with its reason in ``parent_error`` and ``formula`` as written, never an exception (so
``sse-screen rank`` reports it as invalid or rejected with its own reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from sse_screen.screening.substitution import (
    PROBABILITY_SOURCE,
    Replacement,
    electronegativity,
    not_below_electronegativity,
    replacements,
)

__all__ = [
    "CODOPING_FRACTIONS",
    "DEFAULT_CODOPANTS_PER_SITE",
    "DEFAULT_DOPANTS_PER_SITE",
    "DEFAULT_FRACTIONS",
    "DEFAULT_MAX_PER_PARENT",
    "DEFAULT_MOBILE_SITE_FRACTIONS",
    "GENERATED_COLUMNS",
    "MAX_MOBILE_ION_CHANGE",
    "generate_candidates",
]

#: Fractions of a site given to the dopant (0..1). A finer grid (steps of 0.05 and 1/8, and 1/3) adds 2,500
#: candidates over the ten benchmark parents and no recall (measured: benchmarks/generate_recall.py, README).
DEFAULT_FRACTIONS: Final[tuple[float, ...]] = (0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5)
#: Fractions of the mobile-ion site given to a dopant (a dopant there removes several mobile ions: small shares).
DEFAULT_MOBILE_SITE_FRACTIONS: Final[tuple[float, ...]] = (0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2)
#: Fractions of its site given to the minor dopant of a co-doped candidate.
CODOPING_FRACTIONS: Final[tuple[float, ...]] = (0.05, 0.125, 0.25)
#: Fractions of its site given to the major dopant of a co-doped candidate (besides the whole site).
CODOPING_MAJOR_FRACTIONS: Final[tuple[float, ...]] = (0.125, 0.25, 0.5)
#: Moves per site that take part in co-doping (most plausible first).
DEFAULT_CODOPANTS_PER_SITE: Final[int] = 10
#: Candidates kept per parent by default (the most plausible).
DEFAULT_MAX_PER_PARENT: Final[int] = 5000
#: Replacement ions tried per site, most plausible first (None: every ion that passes the filters of
#: :func:`screening.substitution.replacements`; the per-parent budget then keeps the single moves first). Cutting at
#: the 20 most plausible left Cr, Fe, In, La on the Ti site of LiTi2(PO4)3 out (recall measured in the README).
DEFAULT_DOPANTS_PER_SITE: Final[int | None] = None
#: Largest relative change of the mobile-ion content a compensation may make (0.5: at most half removed or added).
MAX_MOBILE_ION_CHANGE: Final[float] = 0.5
#: Largest fraction of the mobile-ion sites a dopant may take (dopants there block the conduction paths).
MAX_MOBILE_SITE_FRACTION: Final[float] = 0.2
#: Output columns, in order.
GENERATED_COLUMNS: Final[tuple[str, ...]] = (
    "formula",
    "parent",
    "move",
    "site",
    "dopant",
    "dopant_state",
    "dopant_fraction",
    "codopant_site",
    "codopant",
    "codopant_state",
    "codopant_fraction",
    "compensation",
    "substitution_probability",
    "plausibility",
    "probability_source",
    "known_as",
    "parent_error",
    "cif_path",
)


def generate_candidates(
    parents: Iterable[object],
    *,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    mobile_site_fractions: Iterable[float] = DEFAULT_MOBILE_SITE_FRACTIONS,
    max_candidates: int | None = None,
    max_per_parent: int | None = DEFAULT_MAX_PER_PARENT,
    codoping: bool = True,
    codopants_per_site: int | None = DEFAULT_CODOPANTS_PER_SITE,
    dopants: Iterable[str] | None = None,
    exclude: Mapping[str, str] | Iterable[str] | None = None,
    mobile_ion: str = "Li",
    dopants_per_site: int | None = DEFAULT_DOPANTS_PER_SITE,
    include_parents: bool = True,
    analogues: bool = True,
    cif_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Doped and substituted variants of ``parents`` (module docstring), one row per distinct composition.

    Args:
        parents: Parent formulas (strings; anything else is reported as an error row).
        fractions: Fractions of a site given to the dopant, each in (0, 1).
        max_candidates: Keep at most this many variants (the most plausible; parent and error rows not counted).
        dopants: Allow-list of dopant elements (all of them are tried on every site they fit); None: any.
        exclude: Excluded elements (symbol -> category, or symbols); None: the ranking's default exclusions
            (:data:`screening.checks.DEFAULT_EXCLUSIONS`: radioactive, toxic, noble gases).
        mobile_ion: The element whose content compensates aliovalent moves (must be in every parent).
        dopants_per_site: Replacement ions tried per site (None: every one that passes the filters).
        include_parents: Start each parent's rows with the parent itself (``move = "parent"``), for comparison.
        cif_dir: Folder for the structures of the variants of CIF parents (a parent given as a path ending in
            ``.cif``; :mod:`screening.generate_structures`); None: their variants get no structure (``cif_path``
            empty), the parent rows keep their own CIF.
        analogues: Also replace a site fully (``dopant_fraction`` 1: Li3ErCl6 from Li3YCl6, Li6PS5Br from Li6PS5Cl,
            Li5La3Ta2O12 from Li7La3Zr2O12) and, by isovalent ions, on ``1 - f`` of it.
        mobile_site_fractions: The grid on the mobile-ion site, each in (0, MAX_MOBILE_SITE_FRACTION].
        max_per_parent: Keep at most this many variants per parent (single moves first, then co-doped ones, each
            by plausibility); None: all.
        codoping: Also make co-doped candidates (two moves at once; module docstring).
        codopants_per_site: Moves per site that take part in co-doping (None: all of them).

    Returns:
        A table with :data:`GENERATED_COLUMNS`: ``formula``, ``parent`` (as given), ``move`` (``"Ta on Zr, x=0.25,
        Li compensates"``), ``site``, ``dopant``, ``dopant_state`` (e), ``dopant_fraction`` (of the site, 0..1),
        ``codopant_site``, ``codopant``, ``codopant_state``, ``codopant_fraction`` (the second move of a co-doped
        candidate; "" and NaN otherwise),
        ``compensation`` (the mobile ion, or ``"none"`` for isovalent moves), ``substitution_probability`` and
        ``plausibility`` (:mod:`screening.substitution`; a co-doped candidate's are the products of its two moves'),
        ``probability_source``, ``known_as`` and ``parent_error``.
        Rows are grouped by parent in input order: single moves by decreasing plausibility, then co-doped ones.
        ``attrs`` hold the probability source and ``failed_checks``.

    Raises:
        ValueError: A fraction outside (0, 1), an unknown element in ``dopants``/``exclude``/``mobile_ion``, or
            ``max_candidates`` < 0.
    """
    from sse_screen.features.elements import SYMBOL_INDEX
    from sse_screen.screening.checks import DEFAULT_EXCLUSIONS

    grid = sorted({round(float(f), 6) for f in fractions})
    if not grid or any(not 0.0 < f < 1.0 for f in grid):
        raise ValueError(f"fractions must lie strictly between 0 and 1, got {list(fractions)}")
    mobile_grid = sorted({round(float(f), 6) for f in mobile_site_fractions})
    if not mobile_grid or any(not 0.0 < f <= MAX_MOBILE_SITE_FRACTION for f in mobile_grid):
        raise ValueError(
            f"mobile-site fractions must lie in (0, {MAX_MOBILE_SITE_FRACTION}], got {list(mobile_site_fractions)}"
        )
    if max_per_parent is not None and max_per_parent < 0:
        raise ValueError(f"max_per_parent must be >= 0, got {max_per_parent}")
    if max_candidates is not None and max_candidates < 0:
        raise ValueError(f"max_candidates must be >= 0, got {max_candidates}")
    excluded = dict(DEFAULT_EXCLUSIONS) if exclude is None else _as_mapping(exclude)
    allowed = None if dopants is None else frozenset(dopants)
    unknown = sorted((set(excluded) | set(allowed or ()) | {mobile_ion}) - set(SYMBOL_INDEX))
    if unknown:
        raise ValueError(f"unknown element symbols: {', '.join(unknown)}")
    rows: list[dict[str, object]] = []
    cif_parents: dict[str, tuple[str, object]] = {}
    for parent in parents:
        formula = parent
        if isinstance(parent, str) and parent.strip().lower().endswith(".cif"):
            from sse_screen.features.structure import StructureError
            from sse_screen.screening.generate_structures import read_parent_cif

            try:
                cif_parents[parent] = read_parent_cif(parent.strip())
            except StructureError as exc:
                rows.append(_error_row(parent, f"cannot use parent {parent!r}: {exc}"))
                continue
            formula = cif_parents[parent][0]
        rows.extend(
            _parent_rows(
                formula,
                label=parent,
                grid=grid,
                mobile_grid=mobile_grid,
                max_per_parent=max_per_parent,
                codoping=codoping,
                codopants_per_site=codopants_per_site,
                excluded=excluded,
                allowed=allowed,
                mobile_ion=mobile_ion,
                per_site=dopants_per_site,
                include_parent=include_parents,
                analogues=analogues,
            )
        )
    table = pd.DataFrame(rows, columns=[c for c in GENERATED_COLUMNS if c not in ("known_as", "cif_path")])
    if table.empty:
        table["parent_error"] = table["parent_error"].astype(object)
    table = _dedupe_and_limit(table, max_candidates)
    failed = _failed_checks(table, excluded, mobile_ion)
    table = table[~failed].reset_index(drop=True)
    table.insert(GENERATED_COLUMNS.index("known_as"), "known_as", _known_as(table))
    table["cif_path"] = ""
    if cif_parents and cif_dir is not None:
        from sse_screen.screening.generate_structures import write_variant_cifs

        table["cif_path"] = write_variant_cifs(table, cif_parents, Path(cif_dir), mobile_ion=mobile_ion)
    table.attrs.update(substitution_probability_source=PROBABILITY_SOURCE, failed_checks=int(failed.sum()))
    return table


def _as_mapping(exclude: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    if isinstance(exclude, Mapping):
        return dict(exclude)
    return {str(s): "excluded by the user" for s in exclude}


def _error_row(parent: object, reason: str) -> dict[str, object]:
    return {"formula": "" if parent is None else str(parent), "parent": parent, "move": "", "parent_error": reason}


def _parent_rows(
    parent: object,
    *,
    label: object,
    grid: list[float],
    mobile_grid: list[float],
    max_per_parent: int | None,
    codoping: bool,
    codopants_per_site: int | None,
    excluded: Mapping[str, str],
    allowed: frozenset[str] | None,
    mobile_ion: str,
    per_site: int | None,
    include_parent: bool,
    analogues: bool,
) -> list[dict[str, object]]:
    """The rows of one parent: itself, then its variants by decreasing plausibility (or one error row)."""
    from sse_screen.features.formula import FormulaError, parse_formula
    from sse_screen.screening.oxidation import OxidationError, assign_oxidation_states

    if not isinstance(parent, str) or not parent.strip():
        return [_error_row(label, "empty parent formula" if isinstance(parent, str) else "parent is not a formula")]
    try:
        amounts = parse_formula(parent.strip())
    except FormulaError as exc:
        return [_error_row(label, f"cannot use parent {label!r}: {exc}")]
    if mobile_ion not in amounts:
        return [_error_row(label, f"parent {label!r} contains no {mobile_ion} (mobile ion)")]
    bad = [f"{s} ({excluded[s]})" for s in amounts if s in excluded]
    if bad:
        return [_error_row(label, f"parent {label!r} contains excluded elements: {', '.join(bad)}")]
    try:
        states = assign_oxidation_states(amounts)
    except OxidationError as exc:
        return [_error_row(label, f"parent {label!r}: {exc}")]
    out = []
    if include_parent:
        out.append({"formula": parent.strip(), "parent": label, "move": "parent", "compensation": "none"})
    moves = []
    anions = {el for el, q in states.items() if q < 0}
    for site, state in states.items():
        if abs(state - round(state)) > 1e-6:
            continue  # a mixed-valence site: no single ion to replace
        # the parent's other anions may take an anion site (Cl on S: Li(6-x)PS(5-x)Cl(1+x)); its cations may not
        forbidden = (set(amounts) - (anions - {site} if state < 0 else set())) | set(excluded) | {mobile_ion}
        if state > 0 and anions:  # Pauling order: no cation more electronegative than an anion (I5+ in a sulfide)
            forbidden |= not_below_electronegativity(min(anions, key=electronegativity))
        for rep in replacements(site, round(state), forbidden=forbidden, allowed=allowed, per_site=per_site):
            moves.append((site, round(state), rep))
    moves.sort(key=lambda m: -m[2].plausibility)
    mobile_state = states[mobile_ion]
    candidates: list[tuple[float, tuple[_Part, ...]]] = []
    for site, state, rep in moves:
        for f in _single_fractions(site, state, rep, grid, mobile_grid, mobile_ion=mobile_ion, full=analogues):
            candidates.append((rep.plausibility, (_Part(site, state, rep, f),)))
    candidates.sort(key=lambda c: -c[0])
    if codoping:  # the single moves first, then the co-doped candidates by the product of plausibilities
        pairs = _pairs(moves, grid, mobile_grid, mobile_ion=mobile_ion, per_site=codopants_per_site)
        candidates.extend(sorted(pairs, key=lambda c: -c[0]))
    made = 0
    for _, parts in candidates:
        if max_per_parent is not None and made >= max_per_parent:
            break
        row = _variant(amounts, parts, mobile_ion, mobile_state)
        if row is not None:
            out.append({**row, "parent": label})
            made += 1
    return out


@dataclass(frozen=True)
class _Part:
    """One substitution of a candidate: ``rep`` on ``fraction`` of the ``site`` element (in ``state``)."""

    site: str
    state: int
    rep: Replacement
    fraction: float


def _single_fractions(
    site: str, state: int, rep: Replacement, grid: list[float], mobile_grid: list[float], *, mobile_ion: str, full: bool
) -> list[float]:
    """The fractions of one single move: the grid (the mobile-ion site's own grid there); an isovalent ion also
    spans the rest of the solid solution (1 - f) and the whole site, an aliovalent one the whole site (when the
    compensation stays within bounds: Li5La3Ta2O12 from Li7La3Zr2O12)."""
    if site == mobile_ion or not full:
        return mobile_grid if site == mobile_ion else grid
    if rep.state == state:
        return sorted({*grid, *(round(1.0 - f, 6) for f in grid), 1.0})
    return [*grid, 1.0]


def _pairs(
    moves: list[tuple[str, int, Replacement]],
    grid: list[float],
    mobile_grid: list[float],
    *,
    mobile_ion: str,
    per_site: int | None,
) -> list[tuple[float, tuple[_Part, ...]]]:
    """Co-doping: two moves at once, a major one and a minor one, on different sites or sharing one (the major then
    holds the larger share, or the rest of the site). The ``per_site`` most plausible moves of every site take part;
    the minor move takes :data:`CODOPING_FRACTIONS` of its site (the mobile-ion site: the lower half of its grid),
    the major one :data:`CODOPING_MAJOR_FRACTIONS` of the grid's range, or the whole site. Plausibility: the
    product of the two."""
    by_site: dict[str, list[tuple[str, int, Replacement]]] = {}
    for move in moves:
        by_site.setdefault(move[0], []).append(move)
    chosen = [m for site_moves in by_site.values() for m in site_moves[:per_site]]
    top = max(grid) + 1e-9
    minor_grid = [f for f in CODOPING_FRACTIONS if f <= top]
    major_grid = sorted({*(f for f in CODOPING_MAJOR_FRACTIONS if f <= top), 1.0})
    mobile_minor = [f for f in mobile_grid if f <= max(mobile_grid) / 2 + 1e-9][::2]
    mobile_major = mobile_grid[1::2]
    out = []
    for site, state, rep in chosen:
        for minor in chosen:
            site2, state2, rep2 = minor
            if rep2.symbol == rep.symbol:
                continue
            score = rep.plausibility * rep2.plausibility
            minors = mobile_minor if site2 == mobile_ion else minor_grid
            majors = mobile_major if site == mobile_ion else major_grid
            shared = site == site2
            if shared and site != mobile_ion:
                minors = [*minors, 0.5]  # two ions sharing a site half and half
            for f2 in minors:
                options = majors
                if shared and site != mobile_ion:
                    options = sorted({*(f for f in majors if f + f2 < 1.0 - 1e-9), round(1.0 - f2, 6)})
                elif shared:
                    options = [f for f in majors if f + f2 <= max(mobile_grid) + 1e-9]
                for f1 in options:
                    if shared and (f1 < f2 or (f1 == f2 and rep.symbol > rep2.symbol)):
                        continue  # the major move holds the larger share (equal shares: made once)
                    out.append((score, (_Part(site, state, rep, f1), _Part(site2, state2, rep2, f2))))
    return out


def _variant(
    amounts: Mapping[str, float], parts: tuple[_Part, ...], mobile_ion: str, mobile_state: float
) -> dict[str, object] | None:
    """One candidate: every part's ion on its fraction of its site, the mobile ion compensating the total charge
    (None when out of bounds)."""
    new: dict[str, float] = {}
    extra_charge = 0.0  # e per parent formula unit
    mobile_site = 0.0
    for element, amount in amounts.items():  # each dopant written right after the element it replaces
        new[element] = new.get(element, 0.0) + amount  # an anion of the parent may take another's site
        for part in parts:
            if part.site == element:
                x = part.fraction * amount
                new[element] -= x
                new[part.rep.symbol] = new.get(part.rep.symbol, 0.0) + x
                extra_charge += (part.rep.state - part.state) * x
                mobile_site += part.fraction if element == mobile_ion else 0.0
    if mobile_site > MAX_MOBILE_SITE_FRACTION + 1e-9:
        return None
    before = amounts[mobile_ion]
    new[mobile_ion] = new[mobile_ion] - extra_charge / mobile_state
    if new[mobile_ion] <= 1e-9 or abs(new[mobile_ion] - before) > MAX_MOBILE_ION_CHANGE * before + 1e-9:
        return None
    new = {el: v for el, v in new.items() if abs(v) > 1e-9 or el == mobile_ion}  # a site fully replaced goes
    if any(v <= 1e-9 for v in new.values()):
        return None
    how = _how(parts, extra_charge, mobile_ion)
    first, second = parts[0], parts[1] if len(parts) > 1 else None
    text = " + ".join(f"{p.rep.symbol} on {p.site}, x={_amount(p.fraction * amounts[p.site]) or 1}" for p in parts)
    return {
        "formula": "".join(f"{el}{_amount(v)}" for el, v in new.items()),
        "move": f"{text}, {how}",
        "site": first.site,
        "dopant": first.rep.symbol,
        "dopant_state": first.rep.state,
        "dopant_fraction": first.fraction,
        "codopant_site": second.site if second else "",
        "codopant": second.rep.symbol if second else "",
        "codopant_state": second.rep.state if second else np.nan,
        "codopant_fraction": second.fraction if second else np.nan,
        "compensation": mobile_ion if abs(extra_charge) > 1e-9 else "none",
        "substitution_probability": float(np.prod([p.rep.substitution_probability for p in parts])),
        "plausibility": float(np.prod([p.rep.plausibility for p in parts])),
        "probability_source": PROBABILITY_SOURCE,
    }


def _how(parts: tuple[_Part, ...], extra_charge: float, mobile_ion: str) -> str:
    """How the candidate stays neutral, in words."""
    if abs(extra_charge) > 1e-9:
        return f"{mobile_ion} compensates"
    if any(p.rep.state != p.state for p in parts):
        return "co-dopants compensate each other"
    if len(parts) == 1 and parts[0].fraction == 1.0:
        return "analogue (site fully replaced)"
    return "solid solution" if all(p.rep.solid_solution for p in parts) else "isovalent"


def _amount(value: float) -> str:
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "" if text == "1" else text


def _dedupe_and_limit(table: pd.DataFrame, max_candidates: int | None) -> pd.DataFrame:
    """Drop later rows of an earlier composition (canonical key), then keep the most plausible variants."""
    from sse_screen.features.canonical import canonical_keys

    if table.empty:
        return table
    ok = table["parent_error"].isna() | (table["parent_error"] == "")
    keys = pd.Series(canonical_keys(table["formula"].where(ok, "")), dtype=object)
    repeat = ok & keys.notna() & keys.duplicated()
    table = table[~repeat.to_numpy()].reset_index(drop=True)
    if max_candidates is not None:
        variant = (table["move"] != "parent") & table["parent_error"].isna()
        codoped = table.loc[variant, "codopant"].fillna("").ne("").to_numpy()
        order = np.lexsort((-table.loc[variant, "plausibility"].to_numpy(), codoped))  # single moves first
        drop = table.index[variant].to_numpy()[order][max_candidates:]
        table = table.drop(index=drop).reset_index(drop=True)
    for column in ("site", "dopant", "codopant_site", "codopant", "compensation", "probability_source", "parent_error"):
        table[column] = table[column].fillna("")
    return table


def _failed_checks(table: pd.DataFrame, excluded: Mapping[str, str], mobile_ion: str) -> np.ndarray:
    """Variants the composition checks reject (none by construction; counted, not kept)."""
    from sse_screen.screening.checks import CheckConfig, run_checks

    variant = ((table["move"] != "parent") & (table["parent_error"] == "")).to_numpy()
    if not variant.any():
        return np.zeros(len(table), dtype=bool)
    checks = run_checks(table["formula"], config=CheckConfig(mobile_ion=mobile_ion, exclusions=dict(excluded)))
    return variant & (checks["status"] != "ok").to_numpy()


def _known_as(table: pd.DataFrame) -> list[str]:
    """Where each composition already appears in the bundled data (:mod:`screening.known`), "" if nowhere."""
    import re

    from sse_screen.screening.known import attach_known

    if table.empty:
        return []
    known = attach_known(table[["formula"]].astype(str).where(table["parent_error"] == "", ""))
    out = []
    for sigma, sigma_source, mp_source in zip(
        known["known_log10_sigma_s_per_cm"], known["known_sigma_source"], known["known_source"], strict=True
    ):
        parts = []
        if sigma_source:
            head = sigma_source.split(";")[0].strip()
            parts.append(f"{head}: log10 sigma {sigma:.2f} S/cm" if np.isfinite(sigma) else head)
        if mp_source:
            match = re.search(r"mp-\d+", mp_source)
            parts.append(f"Materials Project {match.group(0)}" if match else mp_source)
        out.append("; ".join(parts))
    return out
