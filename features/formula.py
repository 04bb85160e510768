"""Fast, cached parsing of chemical formulas into element amounts.

The fast path is a regex tokenizer for the grammar that candidate lists use: element symbols, decimal amounts,
and nested ``(...)``/``[...]`` groups with multipliers (``Li6.4La3Zr1.4Ta0.6O12``, ``Li3Fe2(PO4)3``,
``Li7La3Zr2O12``, ``Na3[Sc2(PO4)3]``). It reproduces the algorithm of ``pymatgen.core.Composition`` (same amounts,
bit for bit, including its float arithmetic). Anything outside that grammar (whitespace inside the formula,
exponents such as ``1e-3``, ``{}``, ``@``, isotopes ``D``/``T``, unknown symbols) falls back to pymatgen itself,
so every formula pymatgen accepts parses to the same amounts.

Every string is first normalised by :func:`features.formula_text.normalize_formula`: Unicode subscripts and
full-width characters become ASCII, hydrate/adduct dots (``Li3PS4·H2O``, ``CuSO4·5H2O``) and numbered glass notation
(``0.75Li2S-0.25P2S5``) become sums of parts. Plain formulas pass through it unchanged.

Deliberate differences from pymatgen, because a chemist would rather be told:
- a zero amount (``Li0O``, or ``Li1e-12O``, below pymatgen's 1e-8) is an error (pymatgen silently drops the
  element), and so are negative amounts and an empty formula;
- absurd amounts are errors: any element amount or number written above :data:`MAX_ATOMS_PER_FORMULA` (1e6) or
  not finite (``Li1e308Cl``, ``Li999999999999999999999Cl``), and any element below :data:`MIN_ATOMIC_FRACTION`
  (1e-6) of the atoms, which the canonical composition key (6 decimals) and the features could not see. Inside
  these bounds no feature computation can overflow;
- a symbol that is not one of the 118 elements (``Xx2O``) is an error (pymatgen makes a dummy species);
- an error reason ends with a hint when a typo is likely (``li3ps4``: "did you mean Li3PS4?"); :func:`formula_hint`
  gives the same hints for formulas that parse (``Li7La3Zr2012``: "did you mean O12? a digit 0 follows Zr").

Like pymatgen, a plain ASCII dot is a decimal point: ``CuSO4.5H2O`` is Cu S O5.5 H2 (and gets a hint). Write
hydrates as ``CuSO4·5H2O`` or ``CuSO4(H2O)5``. ``*`` is not accepted (pymatgen rejects it too).

Parsing is cached per distinct string (candidate lists repeat), so the cost of a batch scales with its number of
distinct formulas.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sse_screen.features.elements import ELEMENT_SYMBOLS, N_ELEMENTS, SYMBOL_INDEX
from sse_screen.features.formula_text import NotationError, hints, normalize_formula

__all__ = [
    "ELEMENT_SYMBOLS",
    "MAX_ATOMS_PER_FORMULA",
    "MIN_ATOMIC_FRACTION",
    "FormulaError",
    "ParsedBatch",
    "as_formula_list",
    "formula_hint",
    "fraction_matrix",
    "parse_batch",
    "parse_formula",
]

# Tokens of the fast grammar; any other character lands in the last group and sends the formula to pymatgen.
_TOKEN = re.compile(r"([A-Z][a-z]*)([\d.]*)|([(\[])|[)\]]([\d.]*)|([\s\S])")
_AMOUNT_TOLERANCE = 1e-8  # pymatgen's Composition.amount_tolerance
#: Largest amount of an element, and largest number written in a formula (amount, group multiplier or coefficient).
MAX_ATOMS_PER_FORMULA = 1e6
#: Smallest atomic fraction of an element: the canonical key (6 decimals) would drop anything smaller.
MIN_ATOMIC_FRACTION = 1e-6
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")
#: pymatgen's "do not fully reduce" formulas (Composition.special_formulas): reduced amounts -> factor halves.
SPECIAL_REDUCED_FORMULAS = frozenset(
    frozenset(d.items())
    for d in (
        {"Li": 1, "O": 1},
        {"Na": 1, "O": 1},
        {"K": 1, "O": 1},
        {"H": 1, "O": 1},
        {"Cs": 1, "O": 1},
        {"Rb": 1, "O": 1},
        {"O": 1},
        {"N": 1},
        {"F": 1},
        {"Cl": 1},
        {"H": 1},
    )
)


class FormulaError(ValueError):
    """A formula that cannot be featurized, with the row it came from and a reason a chemist can act on.

    Attributes:
        reason: Why the formula was rejected, e.g. ``"unknown element symbol 'Xx'"``.
        formula: The offending input (as given).
        row: Position of the row in the batch (0-based), or None for a single formula.
    """

    def __init__(self, reason: str, *, formula: object = None, row: int | None = None) -> None:
        self.reason = reason
        self.formula = formula
        self.row = row
        where = f"row {row}: " if row is not None else ""
        shown = repr(formula)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"{where}{reason} (input: {shown})")


class _Fallback(Exception):
    """Internal: the fast path does not handle this string; ask pymatgen."""


def _fast_parse(formula: str) -> dict[str, float]:
    """Parse with pymatgen's semantics, for strings in the fast grammar; raise _Fallback otherwise."""
    stack: list[list[tuple[str, float]]] = [[]]
    try:
        for sym, amt, open_, mult, stray in _TOKEN.findall(formula):
            if stray:
                raise _Fallback
            if sym:
                if sym not in SYMBOL_INDEX:
                    raise _Fallback
                value = float(amt) if amt else 1.0
                if value > MAX_ATOMS_PER_FORMULA:
                    raise _Fallback  # let _validate or _check_numbers word it
                stack[-1].append((sym, value))
            elif open_:
                stack.append([])
            else:
                if len(stack) == 1 or not stack[-1]:
                    raise _Fallback  # unbalanced or empty group: let pymatgen word the error
                factor = float(mult) if mult else 1.0
                if factor > MAX_ATOMS_PER_FORMULA:
                    raise _Fallback
                group: dict[str, float] = {}
                for s, a in stack.pop():
                    group[s] = group.get(s, 0.0) + a * factor
                stack[-1].extend(group.items())
    except ValueError as exc:  # float("."), "2.5.3"
        raise _Fallback from exc
    if len(stack) != 1:
        raise _Fallback
    out: dict[str, float] = {}
    for s, a in stack[0]:
        out[s] = out.get(s, 0.0) + a
    return out


def _pymatgen_parse(formula: str) -> dict[str, float]:
    """Parse with pymatgen (slow path); raise FormulaError with a readable reason."""
    from pymatgen.core import Composition, DummySpecies

    try:
        comp = Composition(formula)
    except ValueError as exc:
        unknown = [s for s in re.findall(r"[A-Z][a-z]*", formula) if s not in SYMBOL_INDEX and s not in "DT"]
        if unknown:
            raise FormulaError(f"unknown element symbol {unknown[0]!r}", formula=formula) from exc
        if "negative" in str(exc):
            raise FormulaError("negative amount", formula=formula) from exc
        raise FormulaError(f"cannot parse formula ({_parse_problem(formula, exc)})", formula=formula) from exc
    amounts = _amounts_from_composition(comp, formula, DummySpecies)
    for symbol in re.findall(r"[A-Z][a-z]*", formula):  # pymatgen drops amounts below 1e-8 (Li1e-12O)
        if symbol not in amounts and not (symbol in "DT" and "H" in amounts):
            raise FormulaError(f"amount of {symbol} is zero (below {_shown(_AMOUNT_TOLERANCE)})", formula=formula)
    return amounts


def _parse_problem(formula: str, exc: Exception) -> str:
    """Say what is wrong with a formula in a chemist's words where we can tell, else pymatgen's words."""
    depth = 0
    for char in formula:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            return "a closing bracket has no opening one"
    if depth > 0:
        return "an opening bracket is never closed"
    if "*" in formula:
        return f"{exc}; write hydrates as CuSO4·5H2O or CuSO4(H2O)5"
    return str(exc)


def _amounts_from_composition(comp: Any, formula: object, dummy_type: type) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, amt in comp.element_composition.items():
        if isinstance(key, dummy_type) or key.symbol not in SYMBOL_INDEX:
            raise FormulaError(f"unknown element symbol {key.symbol!r}", formula=formula)
        out[key.symbol] = out.get(key.symbol, 0.0) + float(amt)
    return out


def _shown(value: float) -> str:
    """A number as a chemist writes it: 2012, 1e308, 1e-7, 1e6."""
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{value:.6g}")


def _validate(amounts: dict[str, float], formula: object) -> dict[str, float]:
    """Reject empty, zero, negative and absurd amounts (see the module docstring for the bounds)."""
    if not amounts:
        raise FormulaError("formula has no atoms", formula=formula)
    low, high, total = min(amounts.values()), max(amounts.values()), sum(amounts.values())
    if low >= _AMOUNT_TOLERANCE and high <= MAX_ATOMS_PER_FORMULA and low >= MIN_ATOMIC_FRACTION * total:
        return amounts  # the common case, decided without a loop (NaN fails every comparison)
    bound = f"at most {_shown(MAX_ATOMS_PER_FORMULA)} atoms per formula"
    for sym, amt in amounts.items():
        if not math.isfinite(amt):
            raise FormulaError(f"amount of {sym} is not finite ({bound})", formula=formula)
        if amt < 0:
            raise FormulaError(f"amount of {sym} is negative", formula=formula)
        if amt < _AMOUNT_TOLERANCE:
            raise FormulaError(f"amount of {sym} is zero", formula=formula)
        if amt > MAX_ATOMS_PER_FORMULA:
            raise FormulaError(f"amount {_shown(amt)} of {sym} is out of range ({bound})", formula=formula)
    sym = min(amounts, key=amounts.__getitem__)
    raise FormulaError(
        f"{sym} is {_shown(amounts[sym] / total)} of the atoms, below {_shown(MIN_ATOMIC_FRACTION)} "
        "(the composition key and the features cannot resolve less)",
        formula=formula,
    )


def _check_numbers(text: str, formula: object) -> None:
    """Every number written (amount, group multiplier, coefficient) must be finite and at most the bound."""
    for token in _NUMBER.findall(text):
        try:
            value = float(token)
        except ValueError:  # "2.5.3": the parser has already rejected it
            continue
        if not value <= MAX_ATOMS_PER_FORMULA:
            raise FormulaError(
                f"number {token} is out of range (at most {_shown(MAX_ATOMS_PER_FORMULA)} atoms per formula)",
                formula=formula,
            )


def _parse_str_uncached(formula: str) -> dict[str, float]:
    try:
        text = normalize_formula(formula)
        if not text:
            raise FormulaError("empty formula", formula=formula)
        try:
            amounts = _validate(_fast_parse(text), formula)
        except _Fallback:
            amounts = _validate(_pymatgen_parse(text), formula)
            _check_numbers(text, formula)  # the fast path sends large multipliers here
    except (FormulaError, NotationError) as exc:
        reason = "; ".join([exc.reason, *hints(formula)])
        raise FormulaError(reason, formula=formula) from exc
    return amounts


@functools.lru_cache(maxsize=1 << 20)
def _hint_cached(formula: str) -> str | None:
    return "; ".join(hints(formula, parses=not isinstance(_parse_cached(formula), str))) or None


def formula_hint(formula: object) -> str | None:
    """A hint naming a likely typo in a formula, for formulas that parse as well as for those that do not.

    Cheap (text only, cached per distinct string) and never raises. For a formula that does not parse, the same
    hint already ends the error reason of :func:`parse_formula` / :func:`parse_batch`; for one that parses (it is
    syntactically valid, e.g. ``Li7La3Zr2012`` is Zr2012), callers such as the screening checks can show it as a
    warning.

    Args:
        formula: The formula as given (anything; non-strings get no hint).

    Returns:
        ``"; "``-joined hints, e.g. ``"did you mean O12? a digit 0 follows Zr (Li7La3Zr2O12)"``,
        ``"did you mean Li3PS4?"``, or None when nothing looks wrong.
    """
    return _hint_cached(formula) if isinstance(formula, str) else None


_Parsed = tuple[tuple[int, ...], tuple[float, ...], float]  # element columns, amounts, reduction factor


def _to_parsed(amounts: dict[str, float]) -> _Parsed:
    return tuple(SYMBOL_INDEX[s] for s in amounts), tuple(amounts.values()), _reduction_factor(amounts)


@functools.lru_cache(maxsize=1 << 20)  # ~1M distinct formulas: a 1M-candidate enumeration parses once
def _parse_cached(formula: str) -> _Parsed | str:
    """Parsed formula string, or the reason it was rejected (both cached, both immutable)."""
    try:
        return _to_parsed(_parse_str_uncached(formula))
    except FormulaError as exc:
        return exc.reason


def _parse_str(formula: str) -> dict[str, float]:
    result = _parse_cached(formula)
    if isinstance(result, str):
        raise FormulaError(result, formula=formula)
    return {ELEMENT_SYMBOLS[i]: a for i, a in zip(result[0], result[1], strict=True)}


def parse_formula(formula: object) -> dict[str, float]:
    """Parse one formula (string or ``pymatgen.core.Composition``) into ``{symbol: amount}``.

    Args:
        formula: A formula string such as ``"Li6.4La3Zr1.4Ta0.6O12"`` or a pymatgen Composition (species are merged
            into their elements, as ``Composition.element_composition`` does).

    Returns:
        Element amounts (atoms per formula as written), equal to ``dict(Composition(formula))`` keyed by symbol.
        The returned dict is a copy and may be modified.

    Raises:
        FormulaError: Unparseable formula, unknown element, zero/negative/non-finite amount, empty or non-string
            input.
    """
    if isinstance(formula, str):
        return _parse_str(formula)
    from pymatgen.core import Composition, DummySpecies

    if isinstance(formula, Composition):
        return _validate(_amounts_from_composition(formula, formula, DummySpecies), formula)
    if formula is None or (isinstance(formula, float) and math.isnan(formula)):
        raise FormulaError(
            "missing formula (None/NaN); if the data came from pandas.read_csv, read it with "
            "keep_default_na=False so that the formula 'NaN' (sodium nitride) stays a string",
            formula=formula,
        )
    raise FormulaError(
        f"expected a formula string or pymatgen Composition, got {type(formula).__name__}", formula=formula
    )


def _reduction_factor(amounts: dict[str, float]) -> float:
    """pymatgen's ``get_reduced_formula_and_factor()[1]``: the gcd of integer amounts (halved for Li2O2 etc.)."""
    if not all(abs(a - round(a)) < _AMOUNT_TOLERANCE for a in amounts.values()):
        return 1.0
    ints = {s: round(a) for s, a in amounts.items()}
    factor = math.gcd(*ints.values())
    if frozenset((s, n // factor) for s, n in ints.items()) in SPECIAL_REDUCED_FORMULAS:
        return factor / 2
    return float(factor)


@dataclass(frozen=True)
class ParsedBatch:
    """Element amounts of a batch in a padded sparse layout: row ``i`` has elements ``index[i, mask[i]]``.

    Attributes:
        index: ``(n, k)`` int array of element columns (``Z - 1``); padding slots hold 0 (hydrogen) and are masked.
        amount: ``(n, k)`` float64 atoms per formula as written; 0.0 in padding slots and in rows with an error.
        mask: ``(n, k)`` bool, True where a slot holds an element of the row.
        reduction_factor: ``(n,)`` float64, pymatgen's reduced-formula factor (``Li4P2S8`` -> 2); NaN for errors.
        errors: Per-row reason the row was rejected, or None when the row parsed.
    """

    index: np.ndarray
    amount: np.ndarray
    mask: np.ndarray
    reduction_factor: np.ndarray
    errors: list[str | None]

    @property
    def ok(self) -> np.ndarray:
        """``(n,)`` bool, True for rows that parsed."""
        return np.fromiter((e is None for e in self.errors), dtype=bool, count=len(self.errors))

    def fractions(self) -> np.ndarray:
        """``(n, k)`` atomic fractions (rows sum to 1; all-zero rows for errors)."""
        total = self.amount.sum(axis=1, keepdims=True)
        return np.divide(self.amount, total, out=np.zeros_like(self.amount), where=total > 0)

    def dense(self) -> np.ndarray:
        """``(n, 118)`` atomic-fraction matrix, columns in ``ELEMENT_SYMBOLS`` (Z) order."""
        out = np.zeros((len(self.errors), N_ELEMENTS))
        rows = np.broadcast_to(np.arange(len(self.errors))[:, None], self.index.shape)
        out[rows[self.mask], self.index[self.mask]] = self.fractions()[self.mask]
        return out


def as_formula_list(formulas: Iterable[object]) -> list[object]:
    """Coerce a list/tuple/array/Series/Index/one-column DataFrame of formulas to a list (rows in order)."""
    if isinstance(formulas, pd.DataFrame):
        if formulas.shape[1] != 1:
            raise ValueError(f"Expected one formula column, got a DataFrame with columns {list(formulas.columns)}")
        return formulas.iloc[:, 0].tolist()
    if isinstance(formulas, pd.Series | pd.Index):
        return formulas.tolist()
    if isinstance(formulas, np.ndarray):
        if formulas.ndim == 2 and formulas.shape[1] == 1:
            formulas = formulas[:, 0]
        if formulas.ndim != 1:
            raise ValueError(f"Expected a 1-D array of formulas, got shape {formulas.shape}")
        return formulas.tolist()
    if isinstance(formulas, str):
        raise TypeError("Expected a sequence of formulas, got a single string; wrap it in a list")
    return list(formulas)


def parse_batch(formulas: Iterable[object]) -> ParsedBatch:
    """Parse a batch of formulas (strings and/or pymatgen Compositions), once per distinct value.

    Args:
        formulas: List, tuple, numpy array, pandas Series/Index or one-column DataFrame of formulas.

    Returns:
        ParsedBatch with element indices, amounts and per-row errors (rows keep their input order).
    """
    items = as_formula_list(formulas)
    codes, uniques = pd.factorize(pd.Series(items, dtype=object), use_na_sentinel=False)
    parsed: list[_Parsed] = []
    errs: list[str | None] = []
    empty: _Parsed = ((), (), math.nan)
    for value in uniques:
        if isinstance(value, str):
            result: _Parsed | str = _parse_cached(value)
        else:
            try:
                result = _to_parsed(parse_formula(value))
            except FormulaError as exc:
                result = exc.reason
        if isinstance(result, str):
            parsed.append(empty)
            errs.append(result)
        else:
            parsed.append(result)
            errs.append(None)
    u = len(parsed)
    lens = np.fromiter((len(p[0]) for p in parsed), dtype=np.intp, count=u)
    k = max(int(lens.max(initial=0)), 1)
    rows = np.repeat(np.arange(u), lens)
    cols = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    u_index = np.zeros((u, k), dtype=np.intp)
    u_amount = np.zeros((u, k))
    u_mask = np.zeros((u, k), dtype=bool)
    u_index[rows, cols] = list(itertools.chain.from_iterable(p[0] for p in parsed))
    u_amount[rows, cols] = list(itertools.chain.from_iterable(p[1] for p in parsed))
    u_mask[rows, cols] = True
    u_factor = np.fromiter((p[2] for p in parsed), dtype=np.float64, count=u)
    return ParsedBatch(
        index=u_index[codes],
        amount=u_amount[codes],
        mask=u_mask[codes],
        reduction_factor=u_factor[codes],
        errors=[errs[c] for c in codes],
    )


def fraction_matrix(formulas: Iterable[object]) -> tuple[np.ndarray, list[str | None]]:
    """Atomic-fraction matrix of a batch of formulas.

    Args:
        formulas: Formula strings and/or pymatgen Compositions (any 1-D sequence, Series or 1-column DataFrame).

    Returns:
        ``(n, 118)`` float64 atomic fractions with columns in ``ELEMENT_SYMBOLS`` order (H..Og, Z order; rows sum
        to 1, all-zero rows for rejected formulas), and per-row error reasons (None when the row parsed).
    """
    batch = parse_batch(formulas)
    return batch.dense(), batch.errors
