"""Lower convex hull of one chemical system, built with qhull and searched for many compositions at once.

The construction is pymatgen's :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram` on plain arrays: points are
``(atomic fractions without the first element, formation energy eV/atom)`` of the elements (0 eV/atom) and of the
known compounds below ``-1e-11`` eV/atom; one extra point far above the simplex centre makes the set
full-dimensional, so every facet without it is a lower-hull facet; facets whose augmented vertex matrix is singular
(``|det| <= 1e-14``) are dropped. A composition is located in the first facet whose barycentric coordinates are all
``>= -1e-9`` (pymatgen's ``numerical_tol / 10``; the facet with the largest smallest coordinate when float rounding
leaves it in none), and the vertices with a weight above ``1e-8`` are its decomposition, as in
``PhaseDiagram.get_decomposition``. A system whose only points are its elements needs no qhull: its hull is the
simplex at 0 eV/atom.

No pymatgen object is built: a system with a handful of phases costs about a hundred microseconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["HullColumns", "Located", "SystemHull"]

_IN_TOL = 1e-9  # pymatgen's facet-containment tolerance on barycentric coordinates (numerical_tol / 10)
_KEEP_TOL = 1e-8  # pymatgen keeps decomposition weights above this (numerical_tol)
_DET_TOL = 1e-14  # pymatgen drops facets whose augmented matrix has |det| below this
_CHUNK_FLOATS = 1 << 16  # (rows x facets x vertices) block per step: stays in cache


@dataclass(frozen=True)
class Located:
    """Where a block of compositions falls on a hull.

    Attributes:
        weights: ``(n, d)`` barycentric coordinates (atom fractions of the facet's vertices, in facet order).
        vertices: ``(n, d)`` point indices of those vertices (see :attr:`SystemHull.point_ids`).
        energy: ``(n,)`` hull energy, eV/atom: the kept weights times the vertex energies.
    """

    weights: np.ndarray
    vertices: np.ndarray
    energy: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """``(n, d)`` True for the vertices a decomposition keeps (weight above ``1e-8``, as pymatgen)."""
        return self.weights > _KEEP_TOL


class SystemHull:
    """The lower hull of one chemical system's known phases.

    Args:
        n_elements: Elements of the system (``d >= 2``); point columns follow the system's element order.
        fractions: ``(m, d)`` atomic fractions of the known compounds (sub-systems included).
        energy_ev_per_atom: ``(m,)`` their formation energies, eV/atom.
        ids: ``(m,)`` their rows in the reference phases.
        formation_tol: Compounds must lie below ``-formation_tol`` eV/atom to be hull points.

    Attributes:
        point_ids: ``(d + k,)`` reference row of every hull point; element ``j`` is ``-1 - j``.
        facets: ``(F, d)`` point indices of the lower-hull facets.
    """

    def __init__(
        self,
        n_elements: int,
        fractions: np.ndarray,
        energy_ev_per_atom: np.ndarray,
        ids: np.ndarray,
        *,
        formation_tol: float = 1e-11,
    ) -> None:
        dim = int(n_elements)
        if dim < 2:
            raise ValueError("a SystemHull needs at least two elements")
        energies = np.asarray(energy_ev_per_atom, dtype=float)
        below = energies < -formation_tol
        self.dim = dim
        self.point_ids = np.concatenate([-1 - np.arange(dim), np.asarray(ids, dtype=np.intp)[below]])
        if not below.any():  # elements only: the hull is the simplex at 0 eV/atom, weights are the fractions
            self.facets = np.arange(dim)[None, :]
            self._transform = None
            return
        points = np.zeros((dim + int(below.sum()), dim))
        points[np.arange(dim), np.arange(dim)] = 1.0
        points[dim:] = np.asarray(fractions, dtype=float).reshape(-1, dim)[below]
        energy = np.zeros(len(points))
        energy[dim:] = energies[below]
        facets = _lower_facets(points, energy)
        self.facets = facets
        aug = np.empty((len(facets), dim, dim))
        aug[:, :, :-1] = points[facets][:, :, 1:]
        aug[:, :, -1] = 1.0
        inverses = np.linalg.inv(aug)  # (F, d, d): [x[1:], 1] @ inv -> barycentric coordinates
        self._transform = np.ascontiguousarray(inverses.transpose(1, 0, 2).reshape(dim, len(facets) * dim))
        self._vertex_energy = energy[facets]

    @functools.cached_property
    def vertex_ids(self) -> set[int]:
        """Reference rows of the compounds that are hull vertices."""
        return {int(i) for i in np.unique(self.point_ids[self.facets]) if i >= 0}

    def locate(self, fractions: np.ndarray) -> Located:
        """Find the facet under each composition and interpolate the hull energy there.

        Args:
            fractions: ``(n, d)`` atomic fractions, columns in the system's element order (rows sum to 1).

        Returns:
            A :class:`Located` block.
        """
        fractions = np.asarray(fractions, dtype=float)
        n, dim = fractions.shape
        if dim != self.dim:
            raise ValueError(f"expected {self.dim} fraction columns, got {dim}")
        if self._transform is None:
            return Located(weights=fractions, vertices=np.broadcast_to(self.facets, (n, dim)), energy=np.zeros(n))
        n_facets = len(self.facets)
        facet = np.zeros(n, dtype=np.intp)
        weights = np.zeros((n, dim))
        step = max(1, _CHUNK_FLOATS // (n_facets * dim))
        for start in range(0, n, step):
            stop = min(n, start + step)
            point = np.empty((stop - start, dim))
            point[:, :-1] = fractions[start:stop, 1:]
            point[:, -1] = 1.0
            bary = (point @ self._transform).reshape(stop - start, n_facets, dim)
            low = bary.min(axis=2)
            inside = low >= -_IN_TOL
            first = np.where(inside.any(axis=1), inside.argmax(axis=1), low.argmax(axis=1))
            facet[start:stop] = first
            weights[start:stop] = bary[np.arange(stop - start), first]
        kept = weights > _KEEP_TOL
        energy = np.where(kept, weights * self._vertex_energy[facet], 0.0).sum(axis=1)
        return Located(weights=weights, vertices=self.facets[facet], energy=energy)


def _lower_facets(points: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Lower-hull facets (point indices, ``(F, d)``) of points with atomic fractions ``points`` and ``energy``."""
    from scipy.spatial import ConvexHull

    dim = points.shape[1]
    data = np.column_stack([points[:, 1:], energy])
    extra = np.full(dim, 1.0 / dim)
    extra[-1] = data.max() + 1.0  # pymatgen's extra point: above everything, in every upper facet
    data = np.vstack([data, extra])
    simplices = ConvexHull(data, qhull_options="Qt").simplices
    simplices = simplices[(simplices != len(data) - 1).all(axis=1)]
    mat = data[simplices]
    mat[:, :, -1] = 1.0
    return simplices[np.abs(np.linalg.det(mat)) > _DET_TOL]


class HullColumns:
    """Per-row results of one batch, filled system by system."""

    def __init__(self, n: int, dicts: bool) -> None:
        self.e_ref = np.full(n, np.nan)
        self.n_known = np.full(n, np.nan)
        self.n_same = np.full(n, np.nan)
        self.e_form = np.full(n, np.nan)
        self.decomposition = np.full(n, "", dtype=object)
        self.error = [""] * n
        self.dicts: list[dict[str, float]] | None = [{} for _ in range(n)] if dicts else None
