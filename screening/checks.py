"""Chemistry checks over a table of candidate formulas: pure, vectorised, one evaluation per distinct formula.

Every check answers per row with a pass/fail and a reason a chemist can act on. :func:`run_checks` combines them
into ``status`` (``ok`` / ``rejected`` / ``invalid``), ``reason`` (all failing checks, ``"; "``-joined) and ``warnings``
(soft flags that do not reject).

Checks, in order:

1. **Parseable formula, known elements** (``invalid``): the reasons of :func:`features.formula.parse_batch`.
2. **Mobile ion** (``rejected``): the composition contains the mobile ion (``Li`` by default, ``Na`` configurable).
3. **Element exclusions** (``rejected``): by default :data:`DEFAULT_EXCLUSIONS`, i.e. radioactive (Tc, Pm and
   every element from Po, Z = 84, on; Bi is kept: its half-life is 2e19 years), toxic (Cd, Hg, Pb: restricted by
   the EU RoHS directive; Tl, As, Be: acutely toxic or carcinogenic), and the noble gases (He, Ne, Ar, Kr, Xe; Rn
   and Og are radioactive anyway). Pass any mapping symbol -> category (``{}`` excludes nothing).
4. **Charge neutrality** (``rejected`` when impossible with any ICSD oxidation state; soft flags when it needs the
   wrong electronegativity order or rare states).
5. **Limits** on predictions (``rejected``, :func:`check_limits`): max E_hull, min band gap, max cost, applied only
   when the column exists and the limit is set.

Charge balance: the rule for doped and mixed-valence compositions, and its measured effect on OBELiX, are documented
in :mod:`screening.charge_balance`.

Every check sees the canonical composition (:mod:`features.canonical`), not the formula as written, so its verdict
and reason do not depend on the scale of the formula: ``Li2O6`` and ``LiO3`` are both rejected with a residual
"per LiO3 formula unit"; compositions without an integer formula of at most
:data:`features.canonical.READABLE_FORMULA_ATOMS` atoms get residuals "per atom". Rows are the same composition (same
``composition_id``) exactly when their canonical keys are equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pandas as pd

from sse_screen.features.canonical import READABLE_FORMULA_ATOMS, CanonicalBatch, canonical_compositions
from sse_screen.features.elements import ELEMENT_SYMBOLS, N_ELEMENTS, SYMBOL_INDEX, pymatgen_column
from sse_screen.features.formula import ParsedBatch, formula_hint, parse_batch
from sse_screen.screening.charge_balance import charge_balance_verdicts

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "CheckConfig",
    "CheckResult",
    "check_charge_balance",
    "check_exclusions",
    "check_limits",
    "check_mobile_ion",
    "check_parse",
    "cost_usd_per_kg",
    "objective_value",
    "run_checks",
]

Mode = Literal["mean", "optimistic", "pessimistic"]
RADIOACTIVE: Final[tuple[str, ...]] = ("Tc", "Pm", *ELEMENT_SYMBOLS[83:])
TOXIC: Final[tuple[str, ...]] = ("Be", "Cd", "Hg", "Tl", "Pb", "As")
NOBLE_GASES: Final[tuple[str, ...]] = ("He", "Ne", "Ar", "Kr", "Xe")
#: Default exclusions, symbol -> category shown in the reason ("contains Pb (toxic, excluded)").
DEFAULT_EXCLUSIONS: Final[Mapping[str, str]] = {
    **{s: "noble gas" for s in NOBLE_GASES},
    **{s: "toxic" for s in TOXIC},
    **{s: "radioactive" for s in RADIOACTIVE},
}


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """Configuration of :func:`run_checks` (all keyword-only; ``None`` limits are not applied).

    Attributes:
        mobile_ion: Element that must be present (``"Li"`` or ``"Na"``, any symbol accepted).
        exclusions: Excluded element symbol -> category shown in the reason.
        charge_tolerance: Allowed residual charge, e per atom.
        max_e_hull_ev_per_atom: Reject rows whose (mode-adjusted) predicted E_hull exceeds this, eV/atom.
        min_band_gap_ev: Reject rows whose (mode-adjusted) predicted band gap is below this, eV.
        max_cost_usd_per_kg: Reject rows whose element cost exceeds this, USD/kg.
    """

    mobile_ion: str = "Li"
    exclusions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_EXCLUSIONS))
    charge_tolerance: float = 0.01
    max_e_hull_ev_per_atom: float | None = None
    min_band_gap_ev: float | None = None
    max_cost_usd_per_kg: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: ``passed`` (n,) bool and ``reason`` (n,) object array ("" where passed)."""

    passed: np.ndarray
    reason: np.ndarray


def _result(passed: np.ndarray, reasons: Mapping[int, str]) -> CheckResult:
    out = np.full(len(passed), "", dtype=object)
    for i, text in reasons.items():
        out[i] = text
    return CheckResult(passed=passed, reason=out)


def check_parse(batch: ParsedBatch) -> CheckResult:
    """Formula parses and every symbol is one of the 118 elements (reasons from the parser)."""
    ok = batch.ok
    return _result(ok, {i: e for i, e in enumerate(batch.errors) if e is not None})


def _present(batch: ParsedBatch, symbols: Iterable[str]) -> np.ndarray:
    """(n, k) bool: slot holds one of ``symbols``."""
    flags = np.zeros(N_ELEMENTS, dtype=bool)
    flags[[SYMBOL_INDEX[s] for s in symbols]] = True
    return flags[batch.index] & batch.mask


def check_mobile_ion(batch: ParsedBatch, *, ion: str = "Li") -> CheckResult:
    """The composition contains the mobile ion (rows that did not parse pass: they are reported as invalid)."""
    if ion not in SYMBOL_INDEX:
        raise ValueError(f"Unknown mobile {ion=}")
    passed = _present(batch, [ion]).any(axis=1) | ~batch.ok
    return _result(passed, {int(i): f"contains no {ion} (mobile ion)" for i in np.flatnonzero(~passed)})


def check_exclusions(batch: ParsedBatch, *, exclusions: Mapping[str, str] = DEFAULT_EXCLUSIONS) -> CheckResult:
    """No element of the composition is excluded; reason e.g. ``"contains Pu (radioactive, excluded)"``."""
    unknown = sorted(set(exclusions) - set(SYMBOL_INDEX))
    if unknown:
        raise ValueError(f"Unknown element symbols in exclusions: {unknown}")
    hit = _present(batch, exclusions) if exclusions else np.zeros(batch.mask.shape, dtype=bool)
    passed = ~hit.any(axis=1)
    reasons = {}
    for i in np.flatnonzero(~passed):
        by_category: dict[str, list[str]] = {}
        for col in batch.index[i, hit[i]]:
            sym = ELEMENT_SYMBOLS[col]
            by_category.setdefault(exclusions[sym], []).append(sym)
        reasons[int(i)] = "; ".join(f"contains {', '.join(s)} ({c}, excluded)" for c, s in by_category.items())
    return _result(passed, reasons)


def check_charge_balance(
    batch: ParsedBatch, *, charge_tolerance: float = 0.01, units: list[tuple[str, float]] | None = None
) -> tuple[CheckResult, np.ndarray]:
    """Charge neutrality (rejection) and the electronegativity order and common states (soft flags).

    The rule is documented in :mod:`screening.charge_balance`. ``units`` names each row's formula unit in the
    residuals of the reasons (default ``"formula unit"``; see :func:`screening.charge_balance.charge_balance_verdicts`).

    Returns:
        The check (rows that did not parse pass: they are invalid already) and an (n,) object array of soft flags:
        "" or why the balance is chemically unusual (against the Pauling order, or uncommon states only).
    """
    passed, reasons, flags = charge_balance_verdicts(batch, charge_tolerance=charge_tolerance, units=units)
    return _result(passed, reasons), flags


def cost_usd_per_kg(batch: ParsedBatch) -> np.ndarray:
    """Mass-fraction-weighted element price (pymatgen costdb), USD/kg; NaN if an element has no price or no parse.

    The same definition as the ``cost_usd_per_kg`` feature of the ``electrolyte`` preset.
    """
    mass = pymatgen_column("atomic_mass_amu")[batch.index] * batch.amount
    price = np.where(batch.mask, pymatgen_column("cost_usd_per_kg")[batch.index], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (mass * price).sum(axis=1) / mass.sum(axis=1)
    return np.where(batch.ok, out, np.nan)


def objective_value(
    table: pd.DataFrame, column: str, *, maximize: bool, mode: Mode = "mean", k: float | None = None
) -> np.ndarray:
    """Point value of a predicted quantity under an uncertainty mode.

    ``mean`` is the prediction itself. ``optimistic`` takes the favourable end of the interval (the lower bound of
    a quantity to minimise, the upper bound of one to maximise), ``pessimistic`` the unfavourable end. The interval
    is ``mean -/+ k * std`` when ``k`` is given, else the ``<stem>_lower``/``<stem>_upper`` columns when present, else
    ``mean -/+ 1 * std``; a quantity without any uncertainty column keeps its mean. Columns are found by name:
    ``e_hull_ev_per_atom`` -> ``e_hull_std_ev_per_atom``, ``e_hull_lower_ev_per_atom``, ...;
    ``log10_sigma_s_per_cm`` -> ``log10_sigma_std``.

    Args:
        table: Predictions table.
        column: The mean's column.
        maximize: True if larger is better.
        mode: ``"mean"``, ``"optimistic"`` or ``"pessimistic"``.
        k: Number of standard deviations; None to prefer the table's interval bounds.

    Returns:
        (n,) float64 values in the column's unit.
    """
    if mode not in ("mean", "optimistic", "pessimistic"):
        raise ValueError(f"Unknown {mode=}; expected 'mean', 'optimistic' or 'pessimistic'")
    mean = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    if mode == "mean":
        return mean
    upper = (mode == "optimistic") == maximize
    names = uncertainty_columns(column)
    bound = names["upper" if upper else "lower"]
    if k is None and bound in table.columns:
        return pd.to_numeric(table[bound], errors="coerce").to_numpy(dtype=np.float64)
    if names["std"] not in table.columns:
        return mean
    std = pd.to_numeric(table[names["std"]], errors="coerce").to_numpy(dtype=np.float64)
    return mean + (1.0 if upper else -1.0) * (1.0 if k is None else k) * std


def uncertainty_columns(column: str) -> dict[str, str]:
    """Names of the std/lower/upper columns of a prediction column (``band_gap_ev`` -> ``band_gap_std_ev``)."""
    for unit in ("_ev_per_atom", "_ev", "_s_per_cm"):
        if column.endswith(unit):
            stem = column[: -len(unit)]
            std_unit = "" if unit == "_s_per_cm" else unit
            return {
                "std": f"{stem}_std{std_unit}",
                "lower": f"{stem}_lower{std_unit}",
                "upper": f"{stem}_upper{std_unit}",
            }
    return {"std": f"{column}_std", "lower": f"{column}_lower", "upper": f"{column}_upper"}


#: Limit name -> (column, maximize, comparison word, unit).
_LIMITS: Final[dict[str, tuple[str, bool, str, str]]] = {
    "max_e_hull_ev_per_atom": ("e_hull_ev_per_atom", False, "above", "eV/atom"),
    "min_band_gap_ev": ("band_gap_ev", True, "below", "eV"),
    "max_cost_usd_per_kg": ("cost_usd_per_kg", False, "above", "USD/kg"),
}
_LIMIT_LABEL: Final[dict[str, str]] = {
    "max_e_hull_ev_per_atom": "predicted energy above hull",
    "min_band_gap_ev": "predicted band gap",
    "max_cost_usd_per_kg": "element cost",
}


def check_limits(
    table: pd.DataFrame, *, config: CheckConfig, mode: Mode = "mean", k: float | None = None
) -> CheckResult:
    """Reject rows beyond the configured limits (only limits that are set and whose column exists).

    Values are taken with :func:`objective_value` under ``mode`` (so an optimistic screen keeps a row whose
    interval reaches the limit). Missing values (NaN) pass: such rows are invalid or flagged elsewhere.
    """
    n = len(table)
    passed = np.ones(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)
    for name, (column, maximize, word, unit) in _LIMITS.items():
        limit = getattr(config, name)
        if limit is None or column not in table.columns:
            continue
        value = objective_value(table, column, maximize=maximize, mode=mode, k=k)
        with np.errstate(invalid="ignore"):
            bad = value < limit if maximize else value > limit
        extra = "" if mode == "mean" else f" ({mode} bound)"
        for i in np.flatnonzero(bad):
            text = f"{_LIMIT_LABEL[name]} {value[i]:.3g} {unit}{extra} {word} the limit {limit:g} {unit}"
            reasons[i] = f"{reasons[i]}; {text}" if reasons[i] else text
        passed &= ~bad
    return CheckResult(passed=passed, reason=reasons)


def run_checks(formulas: Iterable[object], *, config: CheckConfig | None = None) -> pd.DataFrame:
    """Run the composition checks (parse, mobile ion, exclusions, charge balance) once per distinct formula.

    The checks run on each row's canonical composition (module docstring), so rows with the same canonical key get
    the same verdicts, reasons and cost.

    Args:
        formulas: Formula strings (any 1-D sequence or Series); rows are kept in order.
        config: Check configuration; defaults to :class:`CheckConfig()` (Li, default exclusions).

    Returns:
        One row per input row (RangeIndex): ``status`` (``ok``, ``rejected`` or ``invalid``), ``reason`` (every
        failing check, ``"; "``-joined; "" when ok), ``warnings`` (soft flags that do not reject, and the typo hint
        of :func:`features.formula.formula_hint` for a formula that parses, e.g. ``Li7La3Zr2012``; "" if none),
        ``composition_id`` (int, equal exactly for rows with the same canonical key,
        :func:`features.canonical.canonical_key`; -1 for invalid rows), ``composition_key`` (the key, None for
        invalid rows) and ``cost_usd_per_kg`` (USD/kg, :func:`cost_usd_per_kg`).
    """
    config = config or CheckConfig()
    items = pd.Series(list(formulas), dtype=object)
    codes, uniques = pd.factorize(items, use_na_sentinel=False)
    canon = canonical_compositions(parse_batch(list(uniques)))
    batch = canonical_batch(canon, list(uniques))
    parse = check_parse(batch)
    checks = [
        check_mobile_ion(batch, ion=config.mobile_ion),
        check_exclusions(batch, exclusions=config.exclusions),
    ]
    readable = (canon.atoms > 0) & (canon.atoms <= READABLE_FORMULA_ATOMS)
    units = [
        (f"{f} formula unit", 1.0) if named else ("atom", float(n) if n else 1.0)
        for f, n, named in zip(canon.formulas, canon.atoms, readable, strict=True)
    ]
    charge, flags = check_charge_balance(batch, charge_tolerance=config.charge_tolerance, units=units)
    checks.append(charge)
    reason = parse.reason.copy()
    for check in checks:
        for i in np.flatnonzero(~check.passed):
            reason[i] = f"{reason[i]}; {check.reason[i]}" if reason[i] else check.reason[i]
    ok = np.logical_and.reduce([c.passed for c in checks])
    status = np.where(~parse.passed, "invalid", np.where(ok, "ok", "rejected")).astype(object)
    for i in np.flatnonzero(parse.passed):  # a formula that parses may still hold a likely typo (Zr2012)
        hint = formula_hint(uniques[i])
        if hint:
            flags[i] = f"{flags[i]}; {hint}" if flags[i] else hint
    ids, _ = pd.factorize(pd.Series(canon.keys, dtype=object), use_na_sentinel=True)
    return pd.DataFrame(
        {
            "status": status[codes],
            "reason": reason[codes],
            "warnings": flags[codes],
            "composition_id": np.asarray(ids, dtype=np.int64)[codes],
            "composition_key": canon.keys[codes],
            "cost_usd_per_kg": cost_usd_per_kg(batch)[codes],
        }
    )


def canonical_batch(canon: CanonicalBatch, formulas: list[object]) -> ParsedBatch:
    """The parsed canonical formulas of a batch; rows that did not parse are parsed as written (their reasons)."""
    return parse_batch([c if c is not None else f for c, f in zip(canon.formulas, formulas, strict=True)])
