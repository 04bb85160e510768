"""Reference convex-hull features: where a composition sits relative to the known phases.

For a query composition ``x`` this module evaluates the convex hull of the *known* phases (formation energies per
atom, e.g. ``data/mp_e_form``; elements fixed at 0 eV/atom) of ``x``'s chemical system at ``x``, and reports

* ``e_hull_ref_ev_per_atom``: the hull energy (formation energy per atom of the lowest-energy mixture of *other*
  known phases with the composition of ``x``), eV/atom, always <= 0. The energy above hull of ``x`` is then
  ``E_form(x) - e_hull_ref(x)`` (negative when ``x`` would itself lie on the hull);
* ``decomposition``: that mixture, readable, largest atom fraction first (``"Li2S + P2S5"``; equal fractions:
  elements first, then compounds in reference order);
* ``n_known_phases``: known compounds (not elements) whose elements are a subset of ``x``'s, ``x`` excluded;
* ``n_known_phases_same_elements``: known compounds with exactly ``x``'s elements, ``x`` excluded;
* ``e_form_known_ev_per_atom``: the known formation energy of ``x`` itself (lowest polymorph), eV/atom, NaN when ``x``
  is unknown or when leave-self-out is on.

**Leave-self-out** (``leave_self_out=True``, the default) removes the query's own composition (same
:func:`features.canonical.canonical_key`) from the known phases before building the hull. Training rows whose
composition is a known phase must use it: otherwise the hull at ``x`` *is* ``x``'s own energy and the target leaks
into the features. It is also what a new candidate looks like at prediction time (its own energy is unknown, the hull
of the other phases is known). Removing a phase that is not a hull vertex leaves the hull unchanged; for a vertex the
system's hull is rebuilt without it.

The hull is pymatgen's ``PhaseDiagram`` construction done on arrays (:class:`features.hull_facets.SystemHull`: qhull
over the system's phases, then a vectorised facet search for all queries of the system at once); pymatgen is the
reference the tests compare against. Known phases are held as arrays grouped by chemical system
(:class:`features.reference_phases.ReferencePhases`, loadable from a compact ``.npz``), queries are parsed in one
batch and grouped by chemical system, and each system's hull is built once and kept in a bounded cache across calls.

Only compare energies from one consistent source: the bundled ``mp_e_form`` and ``mp_e_hull`` are both legacy
(pre-MP2020) Materials Project energies; do not mix in MP2020-corrected energies.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sse_screen.features.elements import ELEMENT_SYMBOLS
from sse_screen.features.hull_facets import HullColumns, Located, SystemHull
from sse_screen.features.reference_phases import MAX_ELEMENTS, ReferencePhases, system_code

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

_PAD = 1 << 20  # padding element column (sorts after every real element)
_SYSTEM_CACHE = 4096  # chemical systems whose hulls are kept between calls (chunked ranking reuses them)
_SUBSET_LIMIT = 12  # systems with more elements find their sub-systems by scanning the known element sets
_ELEMENT_NAMES: dict[int, str] = {}


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


def _element_name(column: int) -> str:
    """pymatgen's name of an element as a phase (``O`` -> ``O2``), by element column (``Z - 1``)."""
    name = _ELEMENT_NAMES.get(column)
    if name is None:
        from pymatgen.core import Composition

        name = _ELEMENT_NAMES[column] = Composition(ELEMENT_SYMBOLS[column]).reduced_formula
    return name


class _System:
    """One chemical system: its hull over all known phases, counts and the phases with exactly its elements."""

    def __init__(self, phases: ReferencePhases, columns: tuple[int, ...], excluded: int = -1) -> None:
        self.columns = columns
        d = len(columns)
        if d <= _SUBSET_LIMIT:  # (start, stop, positions of the group's elements among the system's columns)
            blocks = phases.subsystem_blocks(columns)
        else:  # many elements: the known element sets that are subsets
            blocks, wanted = [], set(columns)
            for start, stop in phases.groups():
                group = phases.columns[start][: phases.n_elements[start]].tolist()
                if set(group) <= wanted:
                    blocks.append((start, stop, [columns.index(c) for c in group]))
        ids = np.concatenate([np.arange(a, b) for a, b, _ in blocks]) if blocks else np.zeros(0, dtype=np.intp)
        fractions = np.zeros((len(ids), d))
        row = 0
        for start, stop, positions in blocks:
            fractions[row : row + stop - start, list(positions)] = phases.fractions[start:stop, : len(positions)]
            row += stop - start
        keep = ids != excluded
        self.n_known = int(keep.sum())
        self.same = phases.group(system_code(columns)) if d <= MAX_ELEMENTS else (0, 0)
        self.n_same_count = self.same[1] - self.same[0]
        self.hull = SystemHull(
            d, fractions[keep], phases.energy_ev_per_atom[ids[keep]], ids[keep], formation_tol=phases.formation_tol
        )
        self._phases = phases
        self._names: dict[int, str] = {}

    def name(self, point: int) -> str:
        """Name of a hull point (``SystemHull.point_ids`` index)."""
        name = self._names.get(point)
        if name is None:
            pid = int(self.hull.point_ids[point])
            name = _element_name(self.columns[-1 - pid]) if pid < 0 else self._phases.name(pid)
            self._names[point] = name
        return name

    def match(self, z_fractions: np.ndarray) -> np.ndarray:
        """Row of the known phase with each query's composition (atomic fractions rounded as canonical keys), or -1."""
        start, stop = self.same
        if stop <= start or not len(z_fractions):
            return np.full(len(z_fractions), -1, dtype=np.intp)
        from sse_screen.features.canonical import COMPOSITION_DECIMALS

        d = len(self.columns)
        known = np.round(self._phases.fractions[start:stop, :d], COMPOSITION_DECIMALS)
        both = np.vstack([known, np.round(z_fractions, COMPOSITION_DECIMALS)])
        _, inverse = np.unique(both, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        lookup = np.full(int(inverse.max()) + 1, -1, dtype=np.intp)
        lookup[inverse[: stop - start]] = np.arange(start, stop)
        return lookup[inverse[stop - start :]]


class ReferenceHull:
    """Known phases indexed by chemical system, for fast reference-hull queries.

    Args:
        formulas: Formulas of the known phases (any notation pymatgen parses; polymorphs may repeat).
        e_form_per_atom: Their formation energies, eV/atom, same length as ``formulas``.

    Polymorphs are aggregated to the lowest energy per composition (:func:`features.canonical.canonical_key`).
    Elemental rows are ignored: every element is a reference at exactly 0 eV/atom (elements absent from the data
    included). Rows with a non-finite energy or an unparseable formula raise ``ValueError`` (the reference set must
    be clean). :meth:`from_phases` wraps already aggregated phases (e.g. a model bundle's artefact).
    """

    def __init__(self, formulas: Sequence[str], e_form_per_atom: Sequence[float] | np.ndarray) -> None:
        self._init(ReferencePhases.from_formulas(formulas, e_form_per_atom))

    def _init(self, phases: ReferencePhases) -> None:
        #: the known phases as arrays (lowest energy per composition)
        self.phases = phases
        self._systems: OrderedDict[tuple[int, ...], _System] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_phases(cls, phases: ReferencePhases) -> ReferenceHull:
        """A hull over already aggregated phases (nothing is parsed: cheap)."""
        hull = cls.__new__(cls)
        hull._init(phases)
        return hull

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
        from sse_screen.features.canonical import canonical_keys

        (key,) = canonical_keys([formula])
        if key is None:
            raise ValueError(f"cannot parse formula {formula!r}")
        row = self.phases.index_of(key)
        return float(self.phases.energy_ev_per_atom[row]) if row >= 0 else math.nan

    def _system(self, columns: tuple[int, ...]) -> _System:
        """The hull of a chemical system (two or more elements), built once and kept in a bounded cache."""
        with self._lock:
            system = self._systems.get(columns)
            if system is not None:
                self._systems.move_to_end(columns)
                return system
        system = _System(self.phases, columns)
        with self._lock:
            self._systems[columns] = system
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
            from pymatgen.core import Composition

            results.append(
                HullResult(
                    formula,
                    Composition(formula).reduced_formula,
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
        for i, err in enumerate(batch.errors):
            if err is not None:
                out.error[i] = f"cannot parse formula {formulas[i]!r}: {err}"
        rows = np.flatnonzero(batch.ok)
        if not len(rows):
            return out
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
        lost = ((np.round(fractions, 6) == 0) & (z_sorted != _PAD)).any(axis=1)  # see _fill_system
        groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
        work: Iterable[int] = range(len(systems))
        if progress:
            from rich.progress import track

            work = track(work, description="reference hulls")
        for s in work:
            sel = groups[s]
            columns = tuple(int(z) for z in systems[s] if z != _PAD)
            if len(columns) == 1:  # an element: the reference is the element itself at 0 eV/atom
                take = rows[sel]
                out.e_ref[take] = 0.0
                out.n_known[take] = 0
                out.n_same[take] = 0
                out.decomposition[take] = _element_name(columns[0])
                if out.dicts is not None:
                    for i in take.tolist():
                        out.dicts[i] = {_element_name(columns[0]): 1.0}
                continue
            self._fill_system(columns, rows[sel], fractions[sel, : len(columns)], lost[sel], out, leave_self_out)
        return out

    def _fill_system(
        self,
        columns: tuple[int, ...],
        rows: np.ndarray,
        z_fractions: np.ndarray,
        lost: np.ndarray,
        out: HullColumns,
        leave_self_out: bool,
    ) -> None:
        """Fill ``out`` for the rows of one system (fraction columns in the system's Z order).

        ``lost``: rows with an atomic fraction that rounds to 0 in the canonical key (the key names fewer elements).
        """
        system = self._system(columns)
        known = system.match(z_fractions)
        if lost.any():
            from sse_screen.features.canonical import canonical_key

            for j in np.flatnonzero(lost).tolist():
                amounts = {ELEMENT_SYMBOLS[c]: float(f) for c, f in zip(columns, z_fractions[j], strict=True)}
                known[j] = self.phases.index_of(canonical_key(amounts))
        if not (known >= 0).any():  # nothing known: no row leaves anything out
            out.n_known[rows] = system.n_known
            out.n_same[rows] = system.n_same_count
            self._write(system, system.hull.locate(z_fractions), rows, out)
            return
        exclude = (known >= 0) & leave_self_out
        start, stop = system.same
        out.n_known[rows] = system.n_known - exclude
        out.n_same[rows] = system.n_same_count - (exclude & (known >= start) & (known < stop))
        use_known = (known >= 0) & ~exclude
        out.e_form[rows[use_known]] = self.phases.energy_ev_per_atom[known[use_known]]
        vertex = exclude & np.isin(known, list(system.hull.vertex_ids)) if exclude.any() else exclude
        plain = np.flatnonzero(~vertex)
        if len(plain):
            self._write(system, system.hull.locate(z_fractions[plain]), rows[plain], out)
        if vertex.any():  # a hull vertex left out: that system's hull without it
            by_phase: dict[int, list[int]] = defaultdict(list)
            for j in np.flatnonzero(vertex).tolist():
                by_phase[int(known[j])].append(j)
            for phase, js in by_phase.items():
                without = _System(self.phases, columns, excluded=phase)
                self._write(without, without.hull.locate(z_fractions[js]), rows[js], out)

    @staticmethod
    def _write(system: _System, located: Located, rows: np.ndarray, out: HullColumns) -> None:
        """Hull energies and decompositions of located rows (kept vertices, largest fraction first)."""
        out.e_ref[rows] = located.energy
        weights, kept = located.weights, located.kept
        if len(rows) <= 8:  # few rows (diverse chemistry): plain Python beats a dozen numpy calls
            for i, w, v, k in zip(
                rows.tolist(), weights.tolist(), located.vertices.tolist(), kept.tolist(), strict=True
            ):
                parts = sorted((-round(a, 12), p, a) for a, p, keep in zip(w, v, k, strict=True) if keep)
                out.decomposition[i] = " + ".join(system.name(p) for _, p, _ in parts)
                if out.dicts is not None:
                    out.dicts[i] = {system.name(p): a for _, p, a in parts}
            return
        primary = np.where(kept, -np.round(weights, 12), np.inf)
        rank = np.lexsort((located.vertices, primary), axis=1)  # ties: hull point order (elements first)
        seq = np.where(np.take_along_axis(kept, rank, 1), np.take_along_axis(located.vertices, rank, 1), -1)
        uniq, which = np.unique(seq, axis=0, return_inverse=True)
        names = np.array([" + ".join(system.name(v) for v in u if v >= 0) for u in uniq.tolist()], dtype=object)
        out.decomposition[rows] = names[which.reshape(-1)]
        if out.dicts is not None:
            ordered = np.take_along_axis(weights, rank, 1)
            for i, u, w in zip(rows.tolist(), seq.tolist(), ordered.tolist(), strict=True):
                out.dicts[i] = {system.name(v): a for v, a in zip(u, w, strict=True) if v >= 0}


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
