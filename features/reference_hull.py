"""Reference convex-hull features: where a composition sits relative to the known phases.

For a query composition ``x`` this module evaluates the convex hull of the *known* phases (formation energies per
atom, e.g. ``data/mp_e_form``; elements fixed at 0 eV/atom) of ``x``'s chemical system at ``x``, and reports

* ``e_hull_ref_ev_per_atom``: the hull energy (formation energy per atom of the lowest-energy mixture of *other*
  known phases with the composition of ``x``), eV/atom, always <= 0. The energy above hull of ``x`` is then
  ``E_form(x) - e_hull_ref(x)`` (negative when ``x`` would itself lie on the hull);
* ``decomposition``: that mixture, readable, largest atom fraction first (``"Li2S + P2S5"``);
* ``n_known_phases``: known compounds (not elements) whose elements are a subset of ``x``'s, ``x`` excluded;
* ``n_known_phases_same_elements``: known compounds with exactly ``x``'s elements, ``x`` excluded;
* ``e_form_known_ev_per_atom``: the known formation energy of ``x`` itself (lowest polymorph), eV/atom, NaN when ``x``
  is unknown or when leave-self-out is on.

**Leave-self-out** (``leave_self_out=True``, the default) removes the query's own composition from the known phases
before building the hull. Training rows whose composition is a known phase must use it: otherwise the hull at ``x``
*is* ``x``'s own energy and the target leaks into the features. It is also what a new candidate looks like at
prediction time (its own energy is unknown, the hull of the other phases is known).

Chemistry is done by pymatgen's :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram`. Queries are grouped by chemical
system and each system's diagram (with all its sub-systems) is built once; under leave-self-out the diagram is rebuilt
without the query only when the query is a vertex of the hull (otherwise removing it leaves the hull unchanged).

Only compare energies from one consistent source: the bundled ``mp_e_form`` and ``mp_e_hull`` are both legacy
(pre-MP2020) Materials Project energies; do not mix in MP2020-corrected energies.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "FEATURE_NAMES",
    "HullResult",
    "ReferenceHull",
    "ReferenceHullFeaturizer",
]

#: Output columns of :meth:`ReferenceHull.features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "e_hull_ref_ev_per_atom",
    "n_known_phases",
    "n_known_phases_same_elements",
    "e_form_known_ev_per_atom",
    "decomposition",
)
#: Numeric columns, usable as model features (``decomposition`` is text for people).
NUMERIC_FEATURE_NAMES: tuple[str, ...] = FEATURE_NAMES[:4]

_ATOL = 1e-8  # fractional-composition tolerance when matching a phase to a query


@dataclass(frozen=True)
class HullResult:
    """The reference hull at one query composition.

    Attributes:
        formula: The query formula as given.
        reduced_formula: Its reduced formula (``""`` when it could not be parsed).
        e_hull_ref: Hull energy of the other known phases at the query composition, eV/atom (NaN on error).
        decomposition: ``{reduced formula: atom fraction}`` of the phases mixing to that energy, largest first.
        n_known_phases: Known compounds in the chemical system (sub-systems included), query excluded.
        n_known_phases_same_elements: Known compounds with exactly the query's elements, query excluded.
        e_form_known: Known formation energy of the query itself, eV/atom (NaN if unknown or left out).
        error: Empty when fine, else why no result could be computed.
    """

    formula: str
    reduced_formula: str
    e_hull_ref: float
    decomposition: dict[str, float] = field(default_factory=dict)
    n_known_phases: int = 0
    n_known_phases_same_elements: int = 0
    e_form_known: float = math.nan
    error: str = ""

    @property
    def decomposition_str(self) -> str:
        """The decomposition as people read it, e.g. ``"Li2S + P2S5"`` (largest atom fraction first)."""
        return " + ".join(self.decomposition)


def _parse(formula: str) -> Composition:
    """Parse a formula into a reduced composition, raising ``ValueError`` with a readable message."""
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"not a formula: {formula!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(formula)
    except Exception as exc:  # pymatgen raises several types for bad formulas
        raise ValueError(f"cannot parse formula {formula!r}: {exc}") from None
    if comp.num_atoms <= 0 or any(v < 0 for v in comp.values()):
        raise ValueError(f"formula {formula!r} has no atoms or negative amounts")
    for el in comp.elements:
        if not isinstance(el, Element):  # DummySpecies / Species: not a chemical element
            raise ValueError(f"formula {formula!r}: {el} is not a chemical element")
    return comp.reduced_composition


def _fraction_key(comp: Composition) -> tuple:
    """Identity of a composition independent of how it is written: sorted (element, atomic fraction) pairs."""
    total = comp.num_atoms
    return tuple(sorted((el.symbol, round(amount / total, 9)) for el, amount in comp.items()))


class _Phases(Mapping):
    """Known phases by fraction key: ``phases[key] -> (formation energy eV/atom, reduced Composition)``.

    Formulas are tokenised with the fast parser of :mod:`features.formula` (pymatgen's amounts exactly); the
    pymatgen ``Composition`` of a phase is only built when a query touches its chemical system, so indexing
    ~100k phases takes about a second instead of building ~100k pymatgen objects.
    """

    def __init__(self, formulas: Sequence[str], energies: np.ndarray) -> None:
        from features.formula import ELEMENT_SYMBOLS, parse_batch

        batch = parse_batch([str(f) for f in formulas])
        bad = [(f, e) for f, e in zip(formulas, batch.errors, strict=True) if e is not None]
        if bad:
            raise ValueError(f"cannot parse reference formula {bad[0][0]!r}: {bad[0][1]}")
        fractions = np.round(batch.fractions(), 9)
        symbols = np.asarray(ELEMENT_SYMBOLS, dtype=object)[batch.index]
        self._best: dict[tuple, tuple[float, str]] = {}
        for row in range(len(energies)):
            mask = batch.mask[row]
            if mask.sum() < 2:  # elements are references at 0 eV/atom by definition
                continue
            key = tuple(sorted(zip(symbols[row][mask].tolist(), fractions[row][mask].tolist(), strict=True)))
            energy = float(energies[row])
            if key not in self._best or energy < self._best[key][0]:
                self._best[key] = (energy, str(formulas[row]))
        self._built: dict[tuple, tuple[float, Composition]] = {}

    def __getitem__(self, key: tuple) -> tuple[float, Composition]:
        if key not in self._built:
            energy, formula = self._best[key]
            self._built[key] = (energy, _parse(formula))
        return self._built[key]

    def __contains__(self, key: object) -> bool:
        return key in self._best

    def __iter__(self):
        return iter(self._best)

    def __len__(self) -> int:
        return len(self._best)

    def name(self, key: tuple) -> str:
        """Reduced formula of a known phase (for decompositions people read)."""
        return self[key][1].reduced_formula


def _same_fractions(a: Composition, b: Composition) -> bool:
    fa, fb = a.fractional_composition, b.fractional_composition
    if set(fa.elements) != set(fb.elements):
        return False
    return all(abs(fa[el] - fb[el]) <= _ATOL for el in fa.elements)


class ReferenceHull:
    """Known phases indexed by chemical system, for fast reference-hull queries.

    Args:
        formulas: Formulas of the known phases (any notation pymatgen parses; polymorphs may repeat).
        e_form_per_atom: Their formation energies, eV/atom, same length as ``formulas``.

    Polymorphs are aggregated to the lowest energy per reduced composition. Elemental rows are ignored: every
    element is a reference at exactly 0 eV/atom (elements absent from the data included). Rows with a non-finite
    energy or an unparseable formula raise ``ValueError`` (the reference set must be clean).
    """

    def __init__(self, formulas: Sequence[str], e_form_per_atom: Sequence[float] | np.ndarray) -> None:
        energies = np.asarray(e_form_per_atom, dtype=float)
        if len(formulas) != len(energies):
            raise ValueError(f"{len(formulas)} formulas but {len(energies)} energies")
        if not np.all(np.isfinite(energies)):
            raise ValueError("reference formation energies must be finite")
        #: fraction key -> known phase (lowest energy per composition); pymatgen objects are built lazily
        self.phases = _Phases(formulas, energies)
        self._by_elements: dict[frozenset[str], list[tuple]] = defaultdict(list)
        for key in self.phases:
            self._by_elements[frozenset(symbol for symbol, _ in key)].append(key)

    @classmethod
    def from_csv(cls, path: str | Path, *, formula_col: str = "formula", target_col: str = "target") -> ReferenceHull:
        """Load known phases from a CSV of formulas and formation energies (eV/atom), e.g. ``mp_e_form.csv``."""
        table = pd.read_csv(path, keep_default_na=False)  # the formula "NaN" is sodium nitride
        missing = {formula_col, target_col} - set(table.columns)
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        return cls(table[formula_col].astype(str).tolist(), pd.to_numeric(table[target_col]).to_numpy())

    def __len__(self) -> int:
        return len(self.phases)

    def known_formation_energy(self, formula: str) -> float:
        """Known formation energy of a composition (lowest polymorph), eV/atom, or NaN if unknown."""
        key = _fraction_key(_parse(formula))
        return self.phases[key][0] if key in self.phases else math.nan

    def _system_phase_keys(self, elements: frozenset[str]) -> list[tuple]:
        keys: list[tuple] = []
        for size in range(2, len(elements) + 1):
            for sub in itertools.combinations(sorted(elements), size):
                keys.extend(self._by_elements.get(frozenset(sub), ()))
        return keys

    def query(
        self, formulas: Iterable[str], *, leave_self_out: bool = True, progress: bool = False
    ) -> list[HullResult]:
        """Reference-hull results for many compositions, one per input, in order.

        Args:
            formulas: Query formulas.
            leave_self_out: Remove each query's own composition from the known phases first (see module docs).
            progress: Show a progress bar over chemical systems (rich).

        Returns:
            One :class:`HullResult` per formula; unparseable formulas get NaN energies and an ``error`` message.
        """
        formulas = list(formulas)
        results: list[HullResult | None] = [None] * len(formulas)
        groups: dict[frozenset[str], list[tuple[int, Composition]]] = defaultdict(list)
        for i, formula in enumerate(formulas):
            try:
                comp = _parse(formula)
            except ValueError as exc:
                results[i] = HullResult(str(formula), "", math.nan, error=str(exc))
                continue
            groups[frozenset(el.symbol for el in comp.elements)].append((i, comp))

        items = sorted(groups.items(), key=lambda kv: -len(kv[1]))
        if progress:
            from rich.progress import track

            items = track(items, description="reference hulls", total=len(items))
        for elements, members in items:
            for i, res in self._query_system(elements, members, leave_self_out):
                results[i] = HullResult(formulas[i], *res)
        return [r for r in results if r is not None]

    def _query_system(
        self, elements: frozenset[str], members: list[tuple[int, Composition]], leave_self_out: bool
    ) -> Iterable[tuple[int, tuple]]:
        keys = self._system_phase_keys(elements)
        n_same = len(self._by_elements.get(elements, ()))
        element_entries = [PDEntry(Composition(el), 0.0) for el in sorted(elements)]
        entries = []
        for k in keys:
            energy, comp = self.phases[k]
            entries.append(PDEntry(comp, energy * comp.num_atoms, name=comp.reduced_formula))
        pd_full: PhaseDiagram | None = None
        stable_names: set[str] = set()

        def build(excluded: str | None) -> PhaseDiagram:
            kept = [e for e in entries if e.name != excluded]
            return PhaseDiagram(element_entries + kept)

        for i, comp in members:
            name, key = comp.reduced_formula, _fraction_key(comp)
            known = key in self.phases
            e_known = self.phases[key][0] if known else math.nan
            exclude = leave_self_out and known
            if len(elements) == 1:  # an element: the reference is the element itself at 0 eV/atom
                decomp = {name: 1.0}
                yield i, (name, 0.0, decomp, 0, 0, e_known if known and not leave_self_out else math.nan, "")
                continue
            if pd_full is None:
                pd_full = build(None)
                stable_names = {e.name for e in pd_full.stable_entries}
            # rebuild only when the query is a hull vertex: removing a non-vertex leaves the hull unchanged
            pdiag = build(name) if exclude and name in stable_names else pd_full
            decomp_entries = pdiag.get_decomposition(comp)
            e_ref = float(sum(amount * entry.energy_per_atom for entry, amount in decomp_entries.items()))
            decomp = {
                entry.composition.reduced_formula: float(amount)
                for entry, amount in sorted(decomp_entries.items(), key=lambda kv: -kv[1])
                if amount > 1e-9
            }
            n_known = len(keys) - (1 if exclude else 0)
            n_same_known = n_same - (1 if exclude else 0)
            yield i, (name, e_ref, decomp, n_known, n_same_known, math.nan if exclude else e_known, "")

    def features(self, formulas: Iterable[str], *, leave_self_out: bool = True, progress: bool = False) -> pd.DataFrame:
        """Reference-hull features as a table, one row per formula, in order.

        Args:
            formulas: Query formulas.
            leave_self_out: Remove each query's own composition from the known phases first (see module docs).
            progress: Show a progress bar over chemical systems.

        Returns:
            Columns :data:`FEATURE_NAMES` plus ``error`` (empty when fine; otherwise the reason, numeric columns NaN).
        """
        results = self.query(formulas, leave_self_out=leave_self_out, progress=progress)
        return pd.DataFrame(
            {
                "e_hull_ref_ev_per_atom": [r.e_hull_ref for r in results],
                "n_known_phases": [r.n_known_phases if not r.error else np.nan for r in results],
                "n_known_phases_same_elements": [
                    r.n_known_phases_same_elements if not r.error else np.nan for r in results
                ],
                "e_form_known_ev_per_atom": [r.e_form_known for r in results],
                "decomposition": [r.decomposition_str for r in results],
                "error": [r.error for r in results],
            }
        )


class ReferenceHullFeaturizer(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: formulas -> numeric reference-hull features.

    Args:
        reference: Known phases: a path to a CSV with ``formula``/``target`` columns (formation energy, eV/atom), or
            a DataFrame with those columns.
        leave_self_out: Remove each query's own composition from the known phases (keep True for training rows and
            for honest validation; see module docs).

    ``fit`` indexes the reference phases (the input ``X`` is not used for fitting); ``transform`` takes a
    sequence/Series of formulas or a one-column DataFrame and returns the float columns
    :data:`NUMERIC_FEATURE_NAMES`. Unparseable formulas raise ``ValueError`` naming them; use
    :meth:`ReferenceHull.features` for a per-row ``error`` column instead.
    """

    def __init__(self, *, reference: str | Path | pd.DataFrame, leave_self_out: bool = True) -> None:
        self.reference = reference
        self.leave_self_out = leave_self_out

    def fit(self, X: object = None, y: object = None) -> ReferenceHullFeaturizer:
        """Index the reference phases. Returns self."""
        if isinstance(self.reference, pd.DataFrame):
            self.hull_ = ReferenceHull(
                self.reference["formula"].astype(str).tolist(), self.reference["target"].to_numpy(dtype=float)
            )
        else:
            self.hull_ = ReferenceHull.from_csv(self.reference)
        self.n_features_in_ = 1
        return self

    def transform(self, X: Sequence[str] | pd.Series | pd.DataFrame) -> np.ndarray:
        """Numeric features, float array of shape (n, 4): see :data:`NUMERIC_FEATURE_NAMES` for units."""
        check_is_fitted(self, "hull_")
        formulas = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else X
        table = self.hull_.features(list(formulas), leave_self_out=self.leave_self_out)
        bad = table["error"] != ""
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} formula(s) could not be featurized: {table.loc[bad, 'error'].tolist()[:5]}"
            )
        return table[list(NUMERIC_FEATURE_NAMES)].to_numpy(dtype=float)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the output columns."""
        return np.asarray(NUMERIC_FEATURE_NAMES, dtype=object)
