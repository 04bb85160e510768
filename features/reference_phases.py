"""The known phases a reference hull is built from, as compact arrays, and their versioned ``.npz`` artefact.

One row per distinct composition (:func:`features.canonical.canonical_key`), the lowest formation energy among its
polymorphs; elements are not rows (every element is a reference at exactly 0 eV/atom). Rows are sorted by chemical
system, so the phases of one element set are one contiguous slice (:meth:`ReferencePhases.group`).

The artefact (:meth:`ReferencePhases.save` / :meth:`ReferencePhases.load`) is a compressed numpy ``.npz`` of plain
arrays (no pickle): element columns and atomic fractions in a ragged (CSR) layout, energies, canonical keys and
pymatgen reduced formulas (the names decompositions are written with). Loading it takes tens of milliseconds and no
formula parsing.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np

__all__ = ["FORMAT_VERSION", "MAX_ELEMENTS", "ReferencePhases", "subsystem_codes", "system_code"]

#: Version of the ``.npz`` layout written by :meth:`ReferencePhases.save`; bumped on incompatible changes.
FORMAT_VERSION = 1
#: Most elements a known phase may have: a chemical system is packed into one int64 (7 bits per element slot).
MAX_ELEMENTS = 9
_PAD = 127  # padding slot of a system code (element columns are Z - 1 <= 117)
_SHIFTS = 7 * np.arange(MAX_ELEMENTS)[::-1]
_FORMATION_TOL = 1e-11  # pymatgen's PhaseDiagram.formation_energy_tol: only phases below -tol can be hull vertices


def system_code(columns: Sequence[int]) -> int:
    """One integer per element set: sorted element columns (``Z - 1``) packed 7 bits each, padded to 9 slots."""
    slots = sorted(int(c) for c in columns) + [_PAD] * (MAX_ELEMENTS - len(columns))
    return int(sum(c << int(s) for c, s in zip(slots, _SHIFTS, strict=True)))


def subsystem_codes(columns: Sequence[int]) -> list[int]:
    """Codes of every element subset of two or more (and at most :data:`MAX_ELEMENTS`) elements of ``columns``."""
    cols = sorted(int(c) for c in columns)
    return [system_code(sub) for size in range(2, min(len(cols), MAX_ELEMENTS) + 1) for sub in combinations(cols, size)]


@functools.cache
def _subset_table(d: int) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """Subsets of ``range(d)`` with 2..9 members: their positions, per-position shifts (-1: absent), padding code."""
    positions = [sub for size in range(2, min(d, MAX_ELEMENTS) + 1) for sub in combinations(range(d), size)]
    shifts = np.full((len(positions), d), -1, dtype=np.int64)
    pad = np.zeros(len(positions), dtype=np.int64)
    for i, sub in enumerate(positions):
        shifts[i, list(sub)] = _SHIFTS[: len(sub)]
        pad[i] = int(sum(_PAD << int(s) for s in _SHIFTS[len(sub) :]))
    return positions, shifts, pad


def _codes(index: np.ndarray) -> np.ndarray:
    """Row-wise :func:`system_code` of a ``(n, k)`` array of Z-sorted element columns padded with ``_PAD``."""
    width = index.shape[1]
    padded = np.full((len(index), MAX_ELEMENTS), _PAD, dtype=np.int64)
    padded[:, :width] = index
    return (padded << _SHIFTS).sum(axis=1)


class ReferencePhases:
    """Known phases as arrays, grouped by chemical system.

    Args:
        columns: ``(p, k)`` element columns (``Z - 1``) per phase, ascending, padded with 127.
        fractions: ``(p, k)`` atomic fractions in the same slots (0 in padding).
        energy_ev_per_atom: ``(p,)`` formation energies, eV/atom.
        keys: Canonical composition keys, one per phase (distinct).
        names: pymatgen reduced formulas (decomposition names); None entries are computed on first use from
            ``formulas``.
        formulas: A formula of each phase (its lowest-energy polymorph as given), used for missing names.

    Rows are re-sorted by chemical system on construction.
    """

    def __init__(
        self,
        *,
        columns: np.ndarray,
        fractions: np.ndarray,
        energy_ev_per_atom: np.ndarray,
        keys: Sequence[str],
        names: Sequence[str | None],
        formulas: Sequence[str] | None = None,
    ) -> None:
        columns = np.asarray(columns, dtype=np.int64)
        codes = _codes(columns)
        order = np.argsort(codes, kind="stable")
        self.columns = columns[order]
        self.fractions = np.asarray(fractions, dtype=float)[order]
        self.energy_ev_per_atom = np.asarray(energy_ev_per_atom, dtype=float)[order]
        self.n_elements = (self.columns != _PAD).sum(axis=1)
        self.keys = [keys[i] for i in order.tolist()]
        self._names = [names[i] for i in order.tolist()]
        self._formulas = None if formulas is None else [formulas[i] for i in order.tolist()]
        codes = codes[order]
        self._group_codes, start, count = np.unique(codes, return_index=True, return_counts=True)
        self._group_start, self._group_stop = start, start + count
        bounds = zip(start.tolist(), (start + count).tolist(), strict=True)
        self._groups = dict(zip(self._group_codes.tolist(), bounds, strict=True))
        self._key_index: dict[str, int] | None = None

    # ---------------------------------------------------------------------------------------------- building
    @classmethod
    def from_formulas(cls, formulas: Sequence[str], e_form_per_atom: Sequence[float] | np.ndarray) -> ReferencePhases:
        """Aggregate raw rows (polymorphs may repeat, elements are dropped) to the lowest energy per composition.

        Args:
            formulas: Formulas of the known phases.
            e_form_per_atom: Their formation energies, eV/atom.

        Raises:
            ValueError: Lengths differ, an energy is not finite, a formula does not parse or has more than
                :data:`MAX_ELEMENTS` elements.
        """
        from sse_screen.features.canonical import canonical_keys
        from sse_screen.features.formula import parse_batch

        energies = np.asarray(e_form_per_atom, dtype=float)
        formulas = [str(f) for f in formulas]
        if len(formulas) != len(energies):
            raise ValueError(f"{len(formulas)} formulas but {len(energies)} energies")
        if not np.all(np.isfinite(energies)):
            raise ValueError("reference formation energies must be finite")
        batch = parse_batch(formulas)
        bad = [(f, e) for f, e in zip(formulas, batch.errors, strict=True) if e is not None]
        if bad:
            raise ValueError(f"cannot parse reference formula {bad[0][0]!r}: {bad[0][1]}")
        n_el = batch.mask.sum(axis=1)
        if len(n_el) and n_el.max() > MAX_ELEMENTS:
            row = int(np.argmax(n_el))
            raise ValueError(f"reference formula {formulas[row]!r} has more than {MAX_ELEMENTS} elements")
        keys = canonical_keys(batch)
        compound = np.flatnonzero(n_el >= 2)
        # lowest energy per key; ties keep the first row
        by_key: dict[str, int] = {}
        for row in compound[np.argsort(energies[compound], kind="stable")].tolist():
            by_key.setdefault(keys[row], row)
        rows = np.array(sorted(by_key.values()), dtype=np.intp)
        index = np.where(batch.mask[rows], batch.index[rows], _PAD)
        order = np.argsort(index, axis=1, kind="stable")
        columns = np.take_along_axis(index, order, axis=1)[:, :MAX_ELEMENTS]
        fractions = np.take_along_axis(batch.fractions()[rows], order, axis=1)[:, :MAX_ELEMENTS]
        return cls(
            columns=columns,
            fractions=fractions,
            energy_ev_per_atom=energies[rows],
            keys=[keys[r] for r in rows.tolist()],
            names=[None] * len(rows),
            formulas=[formulas[r] for r in rows.tolist()],
        )

    # ------------------------------------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.keys)

    def group(self, code: int) -> tuple[int, int]:
        """``(start, stop)`` rows of the phases with exactly the element set ``code`` (empty slice if none)."""
        return self._groups.get(code, (0, 0))

    def subsystem_blocks(self, columns: Sequence[int]) -> list[tuple[int, int, tuple[int, ...]]]:
        """Known phases of every sub-system (two or more elements) of a Z-sorted system, by element set.

        Args:
            columns: The system's element columns (``Z - 1``), ascending, at most 12 of them.

        Returns:
            ``(start, stop, positions)`` per element set with known phases: its rows, and where its elements sit
            among ``columns``.
        """
        positions, shifts, pad = _subset_table(len(columns))
        if not len(pad):
            return []
        cols = np.asarray(columns, dtype=np.int64)
        codes = (np.where(shifts >= 0, cols[None, :] << np.maximum(shifts, 0), 0)).sum(axis=1) + pad
        at = np.searchsorted(self._group_codes, codes)
        at = np.minimum(at, len(self._group_codes) - 1)
        hits = np.flatnonzero(self._group_codes[at] == codes) if len(self._group_codes) else []
        starts, stops = self._group_start[at], self._group_stop[at]
        return [(int(starts[h]), int(stops[h]), positions[h]) for h in hits]

    def groups(self) -> list[tuple[int, int]]:
        """``(start, stop)`` rows of every chemical system that has known phases."""
        return list(self._groups.values())

    def index_of(self, key: str | None) -> int:
        """Row of the phase with canonical key ``key``, or -1."""
        if self._key_index is None:
            self._key_index = {k: i for i, k in enumerate(self.keys)}
        return -1 if key is None else self._key_index.get(key, -1)

    def name(self, row: int) -> str:
        """pymatgen reduced formula of a phase (what decompositions are written with)."""
        name = self._names[row]
        if name is None:
            from pymatgen.core import Composition

            source = self._formulas[row] if self._formulas is not None else self.keys[row]
            name = self._names[row] = Composition(source).reduced_formula
        return name

    def all_names(self) -> list[str]:
        """Every phase's name (computes the missing ones)."""
        return [self.name(i) for i in range(len(self))]

    # ------------------------------------------------------------------------------------------------ artefact
    def to_bytes(self) -> bytes:
        """The versioned, compressed ``.npz`` artefact (names computed first), as bytes."""
        n_el = self.n_elements
        mask = self.columns != _PAD
        arrays = {
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "n_elements": n_el.astype(np.uint8),
            "element_column": self.columns[mask].astype(np.uint8),  # Z - 1, ragged rows in order
            "atomic_fraction": self.fractions[mask],
            "e_form_ev_per_atom": self.energy_ev_per_atom,
            "canonical_key": np.frombuffer("\n".join(self.keys).encode("ascii"), dtype=np.uint8),
            "reduced_formula": np.frombuffer("\n".join(self.all_names()).encode("ascii"), dtype=np.uint8),
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the artefact to ``path`` (see :meth:`to_bytes`)."""
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferencePhases:
        """Read an artefact written by :meth:`to_bytes`.

        Raises:
            ValueError: Not an artefact of this format version, or inconsistent arrays.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"not a reference-phases artefact: {exc}") from None
        version = int(arrays.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise ValueError(
                f"reference-phases artefact has format version {version}; this version reads {FORMAT_VERSION}"
            )
        n_el = arrays["n_elements"].astype(np.int64)
        p = len(n_el)
        keys = bytes(arrays["canonical_key"]).decode("ascii").split("\n") if p else []
        names = bytes(arrays["reduced_formula"]).decode("ascii").split("\n") if p else []
        if len(keys) != p or len(names) != p or len(arrays["e_form_ev_per_atom"]) != p:
            raise ValueError("reference-phases artefact: arrays of different lengths")
        columns = np.full((p, MAX_ELEMENTS), _PAD, dtype=np.int64)
        fractions = np.zeros((p, MAX_ELEMENTS))
        mask = np.arange(MAX_ELEMENTS)[None, :] < n_el[:, None]
        columns[mask] = arrays["element_column"]
        fractions[mask] = arrays["atomic_fraction"]
        return cls(
            columns=columns,
            fractions=fractions,
            energy_ev_per_atom=arrays["e_form_ev_per_atom"],
            keys=keys,
            names=names,
        )

    @classmethod
    def load(cls, path: str | Path) -> ReferencePhases:
        """Read an artefact file (see :meth:`from_bytes`)."""
        return cls.from_bytes(Path(path).read_bytes())

    @property
    def formation_tol(self) -> float:
        """Phases must lie this far below 0 eV/atom to be hull candidates (pymatgen's tolerance)."""
        return _FORMATION_TOL
