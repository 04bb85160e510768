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

Chemistry is done by pymatgen's :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram`. Queries are parsed in one
batch (:func:`features.formula.parse_batch`, pymatgen's amounts), grouped by chemical system, and each system's
diagram (with all its sub-systems) is built once and kept in a bounded cache across calls. All queries of a system
are then located on that diagram's own lower-hull facets at once (:class:`features.hull_facets.FacetHull`: the same
facets, order, barycentric transforms and tolerances as ``PhaseDiagram.get_decomposition``, as one matrix product
per chunk), which is what makes a million candidates affordable. pymatgen's ``get_decomposition`` is still called,
one query at a time, for what the facet search leaves out: single-element queries, formulas only pymatgen parses,
points whose facet could depend on float rounding, and, under leave-self-out, a query that is a vertex of the hull
(the diagram is rebuilt without it; removing a non-vertex leaves the hull unchanged). Decomposition products with
equal amounts (to 1e-12) are listed in facet order.

Only compare energies from one consistent source: the bundled ``mp_e_form`` and ``mp_e_hull`` are both legacy
(pre-MP2020) Materials Project energies; do not mix in MP2020-corrected energies.
"""

from __future__ import annotations

import itertools
import math
import threading
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sse_screen.features.elements import ELEMENT_SYMBOLS
from sse_screen.features.hull_facets import HullColumns, SystemHull

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
_PAD = 1 << 20  # padding element column (sorts after every real element)
_SYSTEM_CACHE = 2048  # chemical systems whose diagrams are kept between calls (chunked ranking reuses them)


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
    return tuple(sorted((el.symbol, float(np.round(amount / total, 9))) for el, amount in comp.items()))


class _Phases(Mapping):
    """Known phases by fraction key: ``phases[key] -> (formation energy eV/atom, reduced Composition)``.

    Formulas are tokenised with the fast parser of :mod:`features.formula` (pymatgen's amounts exactly); the
    pymatgen ``Composition`` of a phase is only built when a query touches its chemical system, so indexing
    ~100k phases takes about a second instead of building ~100k pymatgen objects.
    """

    def __init__(self, formulas: Sequence[str], energies: np.ndarray) -> None:
        from sse_screen.features.formula import ELEMENT_SYMBOLS, parse_batch

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
        self._systems: OrderedDict[frozenset[str], SystemHull] = OrderedDict()
        self._lock = threading.Lock()

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

    def _system(self, elements: frozenset[str]) -> SystemHull:
        """The diagram of a chemical system (two or more elements), built once and kept in a bounded cache."""
        with self._lock:
            system = self._systems.get(elements)
            if system is not None:
                self._systems.move_to_end(elements)
                return system
        system = SystemHull(
            self.phases, elements, self._system_phase_keys(elements), list(self._by_elements.get(elements, ()))
        )
        with self._lock:
            self._systems[elements] = system
            while len(self._systems) > _SYSTEM_CACHE:
                self._systems.popitem(last=False)
        return system

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
        out = self._evaluate(formulas, leave_self_out=leave_self_out, progress=progress, dicts=True)
        results = []
        for i, formula in enumerate(formulas):
            if out.error[i]:
                results.append(HullResult(str(formula), "", math.nan, error=out.error[i]))
                continue
            results.append(
                HullResult(
                    formula,
                    out.reduced[i] or _parse(formula).reduced_formula,
                    float(out.e_ref[i]),
                    out.dicts[i],
                    int(out.n_known[i]),
                    int(out.n_same[i]),
                    float(out.e_form[i]),
                    "",
                )
            )
        return results

    def features(self, formulas: Iterable[str], *, leave_self_out: bool = True, progress: bool = False) -> pd.DataFrame:
        """Reference-hull features as a table, one row per formula, in order.

        Args:
            formulas: Query formulas.
            leave_self_out: Remove each query's own composition from the known phases first (see module docs).
            progress: Show a progress bar over chemical systems.

        Returns:
            Columns :data:`FEATURE_NAMES` plus ``error`` (empty when fine; otherwise the reason, numeric columns NaN).
        """
        out = self._evaluate(list(formulas), leave_self_out=leave_self_out, progress=progress, dicts=False)
        has_error = any(out.error)  # counts are integers unless some row has none
        return pd.DataFrame(
            {
                "e_hull_ref_ev_per_atom": out.e_ref,
                "n_known_phases": out.n_known if has_error else out.n_known.astype(np.int64),
                "n_known_phases_same_elements": out.n_same if has_error else out.n_same.astype(np.int64),
                "e_form_known_ev_per_atom": out.e_form,
                "decomposition": out.decomposition.tolist(),
                "error": out.error,
            }
        )

    def _evaluate(self, formulas: list, *, leave_self_out: bool, progress: bool, dicts: bool) -> HullColumns:
        """Every query at once: parse in batch, group by chemical system, locate on each system's facets."""
        from sse_screen.features.formula import parse_batch

        n = len(formulas)
        out = HullColumns(n, dicts)
        batch = parse_batch([f if isinstance(f, str) else None for f in formulas])
        fast = np.fromiter(
            (e is None and isinstance(f, str) for f, e in zip(formulas, batch.errors, strict=True)), bool, count=n
        )
        slow: dict[frozenset[str], list[tuple[int, Composition]]] = defaultdict(list)
        for i in np.flatnonzero(~fast).tolist():  # what the fast parser rejects, pymatgen words (or accepts)
            try:
                comp = _parse(formulas[i])
            except ValueError as exc:
                out.error[i] = str(exc)
                continue
            slow[frozenset(el.symbol for el in comp.elements)].append((i, comp))

        rows = np.flatnonzero(fast)
        index = np.where(batch.mask[rows], batch.index[rows], _PAD)
        order = np.argsort(index, axis=1, kind="stable")
        z_sorted = np.take_along_axis(index, order, axis=1)
        fractions = np.take_along_axis(batch.fractions()[rows], order, axis=1)
        if z_sorted.shape[1] <= 9:  # one int64 per element set (7 bits per slot, padding as 127): a 1-D unique
            code = (np.minimum(z_sorted, 127) << (7 * np.arange(z_sorted.shape[1])[::-1])).sum(axis=1)
            _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
            systems = z_sorted[first]
        else:
            systems, inverse = np.unique(z_sorted, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
        work = sorted(range(len(systems)), key=lambda s: -len(groups[s]))
        all_elements = set(slow) | {_elements_of(systems[s]) for s in work}
        if progress:
            from rich.progress import track

            all_elements = track(sorted(all_elements, key=sorted), description="reference hulls")
        by_elements = {_elements_of(systems[s]): s for s in work}
        for elements in all_elements:
            members = list(slow.get(elements, ()))
            s = by_elements.get(elements)
            if s is not None:
                sel = groups[s]
                n_el = len(elements)
                if n_el == 1:  # elements: pymatgen names them (O -> O2, Li0.5 -> Li0.5); rare in candidate lists
                    members += [(int(rows[j]), _parse(formulas[rows[j]])) for j in sel]
                else:
                    members += self._fast_system(
                        elements, rows[sel], fractions[sel, :n_el], out, leave_self_out, formulas
                    )
            for i, res in self._query_system(elements, members, leave_self_out):
                out.set_slow(i, res)
        return out

    def _fast_system(
        self,
        elements: frozenset[str],
        rows: np.ndarray,
        z_fractions: np.ndarray,
        out: HullColumns,
        leave_self_out: bool,
        formulas: list,
    ) -> list[tuple[int, Composition]]:
        """Fill ``out`` for the rows of one system (columns in Z order); return the rows pymatgen must answer."""
        system = self._system(elements)
        fh = system.facets
        known = system.match(z_fractions)
        exclude = (known >= 0) & leave_self_out
        located = fh.locate(z_fractions[:, system.pd_order])
        at_vertex = located.weights.max(axis=1) > 1.0 - 1e-6
        need_pymatgen = located.doubtful | (exclude & (system.stable[known] | at_vertex))
        ok = ~need_pymatgen
        take = rows[ok]
        out.e_ref[take] = located.energy[ok]
        out.n_known[take] = len(system.keys) - exclude[ok]
        out.n_same[take] = system.n_same - exclude[ok]
        use_known = ok & (known >= 0) & ~exclude
        out.e_form[rows[use_known]] = system.energies[known[use_known]]
        # decomposition: kept vertices, largest weight first (ties in facet order), one string per vertex sequence
        weights, kept = located.weights[ok], located.kept[ok]
        rank = np.argsort(np.where(kept, -np.round(weights, 12), np.inf), axis=1, kind="stable")
        seq = np.where(np.take_along_axis(kept, rank, 1), np.take_along_axis(located.vertices[ok], rank, 1), -1)
        uniq, which = np.unique(seq, axis=0, return_inverse=True)
        texts = np.array([" + ".join(fh.names[v] for v in u if v >= 0) for u in uniq.tolist()], dtype=object)
        out.decomposition[take] = texts[which.reshape(-1)]
        if out.dicts is not None:
            ordered_w = np.take_along_axis(weights, rank, 1)
            for i, u, w in zip(take.tolist(), seq.tolist(), ordered_w.tolist(), strict=True):
                out.dicts[i] = {fh.names[v]: a for v, a in zip(u, w, strict=True) if v >= 0}
        return [(int(i), _parse(formulas[i])) for i in rows[need_pymatgen]]

    def _query_system(
        self, elements: frozenset[str], members: list[tuple[int, Composition]], leave_self_out: bool
    ) -> Iterable[tuple[int, tuple]]:
        """pymatgen's answer, one query at a time (the exact path for what the facet search leaves out)."""
        system: SystemHull | None = None
        for i, comp in members:
            name, key = comp.reduced_formula, _fraction_key(comp)
            known = key in self.phases
            e_known = self.phases[key][0] if known else math.nan
            exclude = leave_self_out and known
            if len(elements) == 1:  # an element: the reference is the element itself at 0 eV/atom
                decomp = {name: 1.0}
                yield i, (name, 0.0, decomp, 0, 0, e_known if known and not leave_self_out else math.nan, "")
                continue
            system = system or self._system(elements)
            # rebuild only when the query is a hull vertex: removing a non-vertex leaves the hull unchanged
            pdiag = system.build(name) if exclude and name in system.stable_names else system.pd_full
            decomp_entries = pdiag.get_decomposition(comp)
            e_ref = float(sum(amount * entry.energy_per_atom for entry, amount in decomp_entries.items()))
            decomp = {
                entry.composition.reduced_formula: float(amount)
                for entry, amount in sorted(decomp_entries.items(), key=lambda kv: -round(kv[1], 12))
                if amount > 1e-9
            }
            n_known = len(system.keys) - (1 if exclude else 0)
            n_same_known = system.n_same - (1 if exclude else 0)
            yield i, (name, e_ref, decomp, n_known, n_same_known, math.nan if exclude else e_known, "")


def _elements_of(z_row: np.ndarray) -> frozenset[str]:
    return frozenset(ELEMENT_SYMBOLS[z] for z in z_row.tolist() if z != _PAD)


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
