"""Vectorised ``PhaseDiagram.get_decomposition`` for many compositions of one chemical system.

pymatgen's :meth:`~pymatgen.analysis.phase_diagram.PhaseDiagram.get_decomposition` walks the lower-hull facets of the
diagram in order and returns the barycentric coordinates of the query in the *first* facet that contains it (all
coordinates >= ``-numerical_tol / 10``), keeping the vertices whose weight exceeds ``numerical_tol``. That costs
milliseconds of Python per query. :class:`FacetHull` takes the same facets and the same precomputed barycentric
transforms (``Simplex._aug_inv``) from a built diagram and does that search for a whole block of queries with one
matrix product per chunk, so the answer (facet, weights, hull energy) is the one pymatgen gives, up to float
rounding in the last bits.

Queries whose answer could depend on those last bits (a barycentric coordinate within ``1e-12`` of the containment
threshold in a facet that pymatgen would test first) and queries in no facet are reported as *doubtful*; callers
send them to pymatgen itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition
from pymatgen.util.coord import Simplex

from sse_screen.features.elements import SYMBOL_INDEX

__all__ = ["FacetHull", "HullColumns", "Located", "SystemHull"]

_IN_TOL = PhaseDiagram.numerical_tol / 10  # pymatgen's facet-containment tolerance on barycentric coordinates
_KEEP_TOL = PhaseDiagram.numerical_tol  # pymatgen keeps decomposition weights above this
_DOUBT = 1e-12  # coordinates this close to the containment threshold are left to pymatgen
_CHUNK_FLOATS = 1 << 16  # (rows x facets x vertices) block per step: 512 KiB stays in cache (2x faster than 16 MiB)


@dataclass(frozen=True)
class Located:
    """Where a block of compositions falls on a hull.

    Attributes:
        facet: ``(n,)`` index of the first containing facet (pymatgen's order); meaningless where ``doubtful``.
        weights: ``(n, d)`` barycentric coordinates (atom fractions of the facet's vertices, in facet order).
        vertices: ``(n, d)`` ``qhull_entries`` indices of those vertices.
        energy: ``(n,)`` hull energy, eV/atom: the weights (those above ``numerical_tol``) times vertex energies.
        doubtful: ``(n,)`` True where float rounding could change pymatgen's answer, or where no facet contains the
            point: use pymatgen for these rows.
    """

    facet: np.ndarray
    weights: np.ndarray
    vertices: np.ndarray
    energy: np.ndarray
    doubtful: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """``(n, d)`` True for the vertices pymatgen's decomposition keeps (weight above ``numerical_tol``)."""
        return self.weights > _KEEP_TOL


class FacetHull:
    """The lower-hull facets of a built :class:`PhaseDiagram`, searchable for many compositions at once.

    Args:
        pdiag: A phase diagram of at least two elements.

    Attributes:
        elements: Element symbols in the diagram's order (``pdiag.elements``); query columns follow it.
        names: Reduced formula of every ``qhull_entries`` item (what decompositions are keyed by).
        energy_per_atom: ``(n_entries,)`` their energies, eV/atom (formation energies here).
    """

    def __init__(self, pdiag: PhaseDiagram) -> None:
        self.elements = [el.symbol for el in pdiag.elements]
        dim = len(self.elements)
        if dim < 2:
            raise ValueError("a FacetHull needs at least two elements")
        entries = pdiag.qhull_entries
        self.names = [entry.composition.reduced_formula for entry in entries]
        self.energy_per_atom = np.array([entry.energy_per_atom for entry in entries], dtype=float)
        self.facets = np.asarray(pdiag.facets, dtype=np.intp).reshape(-1, dim)
        inverses = []
        for simplex in pdiag.simplexes:
            inv = getattr(simplex, "_aug_inv", None)
            if inv is None:  # pragma: no cover - pymatgen only keeps full-dimensional facets
                inv = Simplex(simplex.coords)._aug_inv
            inverses.append(inv)
        n_facets = len(self.facets)
        stacked = np.asarray(inverses, dtype=float).reshape(n_facets, dim, dim)
        # one matrix for all facets: [x, 1] @ transform -> (facet, vertex) barycentric coordinates side by side
        self._transform = np.ascontiguousarray(stacked.transpose(1, 0, 2).reshape(dim, n_facets * dim))
        self._vertex_energy = self.energy_per_atom[self.facets]  # (F, d)

    def locate(self, fractions: np.ndarray) -> Located:
        """Find the facet under each composition and interpolate the hull energy there.

        Args:
            fractions: ``(n, d)`` atomic fractions, columns in :attr:`elements` order (rows sum to 1).

        Returns:
            A :class:`Located` block (pymatgen's ``get_decomposition`` answer for every non-doubtful row).
        """
        fractions = np.asarray(fractions, dtype=float)
        n, dim = fractions.shape
        if dim != len(self.elements):
            raise ValueError(f"expected {len(self.elements)} fraction columns, got {dim}")
        n_facets = len(self.facets)
        facet = np.zeros(n, dtype=np.intp)
        weights = np.zeros((n, dim))
        doubtful = np.ones(n, dtype=bool)
        if n_facets and n:
            step = max(1, _CHUNK_FLOATS // (n_facets * dim))
            for start in range(0, n, step):
                stop = min(n, start + step)
                # pymatgen's pd_coords drop the first element's fraction; the augmented 1 takes its place
                point = np.empty((stop - start, dim))
                point[:, :-1] = fractions[start:stop, 1:]
                point[:, -1] = 1.0
                bary = (point @ self._transform).reshape(stop - start, n_facets, dim)
                low = bary.min(axis=2)
                inside = low >= -_IN_TOL
                first = inside.argmax(axis=1)
                found = inside[np.arange(stop - start), first]
                near = np.abs(low + _IN_TOL) <= _DOUBT
                first_near = np.where(near.any(axis=1), near.argmax(axis=1), n_facets)
                near_before = first_near <= np.where(found, first, n_facets - 1)
                facet[start:stop] = first
                weights[start:stop] = bary[np.arange(stop - start), first]
                doubtful[start:stop] = ~found | near_before
        vertices = self.facets[facet] if n_facets else np.zeros((n, dim), dtype=np.intp)
        kept = weights > _KEEP_TOL
        vertex_energy = self._vertex_energy[facet] if n_facets else np.zeros((n, dim))
        energy = np.where(kept, weights * vertex_energy, 0.0).sum(axis=1)
        return Located(facet=facet, weights=weights, vertices=vertices, energy=energy, doubtful=doubtful)


class SystemHull:
    """One chemical system: its known phases, the full diagram, its facets, and its known compositions.

    Args:
        phases: Fraction key -> (formation energy eV/atom, reduced Composition), with a ``name(key)`` method
            (``features.reference_hull._Phases``).
        elements: The system's element symbols.
        keys: Fraction keys of the known compounds of the system and its sub-systems.
        same: Those with exactly ``elements``.

    Query fraction columns are in Z order (what the batch grouping produces); ``pd_order`` maps them to the
    diagram's element order.
    """

    def __init__(self, phases: Any, elements: frozenset[str], keys: list[tuple], same: list[tuple]) -> None:
        self.keys = keys
        self.n_same = len(same)
        self._element_entries = [PDEntry(Composition(el), 0.0) for el in sorted(elements)]
        self._entries = []
        for k in self.keys:
            energy, comp = phases[k]
            self._entries.append(PDEntry(comp, energy * comp.num_atoms, name=comp.reduced_formula))
        self.pd_full = self.build(None)
        self.stable_names = {e.name for e in self.pd_full.stable_entries}
        self.facets = FacetHull(self.pd_full)
        z_symbols = sorted(elements, key=SYMBOL_INDEX.__getitem__)
        self.pd_order = [z_symbols.index(symbol) for symbol in self.facets.elements]
        by_symbol = sorted(elements)  # fraction keys are sorted by symbol
        to_z = [by_symbol.index(symbol) for symbol in z_symbols]
        self._known = np.array([[f for _, f in k] for k in same], dtype=float).reshape(-1, len(elements))[:, to_z]
        self.energies = np.array([phases[k][0] for k in same], dtype=float)
        # index -1 (unknown query) lands on the trailing False
        self.stable = np.array([phases.name(k) in self.stable_names for k in same] + [False], dtype=bool)

    def build(self, excluded: str | None) -> PhaseDiagram:
        kept = [e for e in self._entries if e.name != excluded]
        return PhaseDiagram(self._element_entries + kept)

    def match(self, z_fractions: np.ndarray) -> np.ndarray:
        """Index of the known phase with each query's fraction key (rounded to 1e-9, as ``_Phases``), else -1."""
        p = len(self._known)
        if not p or not len(z_fractions):
            return np.full(len(z_fractions), -1, dtype=np.intp)
        both = np.vstack([self._known, np.round(z_fractions, 9)])
        _, inverse = np.unique(both, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        lookup = np.full(int(inverse.max()) + 1, -1, dtype=np.intp)
        lookup[inverse[:p]] = np.arange(p)
        return lookup[inverse[p:]]


class HullColumns:
    """Per-row results of one batch, filled system by system."""

    def __init__(self, n: int, dicts: bool) -> None:
        self.e_ref = np.full(n, np.nan)
        self.n_known = np.full(n, np.nan)
        self.n_same = np.full(n, np.nan)
        self.e_form = np.full(n, np.nan)
        self.decomposition = np.full(n, "", dtype=object)
        self.error = [""] * n
        self.reduced = [""] * n
        self.dicts: list[dict[str, float]] | None = [{} for _ in range(n)] if dicts else None

    def set_slow(self, i: int, res: tuple) -> None:
        name, e_ref, decomp, n_known, n_same, e_form, _ = res
        self.reduced[i] = name
        self.e_ref[i] = e_ref
        self.n_known[i] = n_known
        self.n_same[i] = n_same
        self.e_form[i] = e_form
        self.decomposition[i] = " + ".join(decomp)
        if self.dicts is not None:
            self.dicts[i] = decomp
