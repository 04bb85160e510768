"""The known phases that stability predictions are placed against: the bundled Materials Project formation energies.

Built once per process (parsing ~120k formulas takes seconds) and shared by every stability model and request.
"""

from __future__ import annotations

from functools import cache

from features.datasets import load_mp_e_form
from features.reference_hull import ReferenceHull


@cache
def reference_hull() -> ReferenceHull:
    """Known phases of ``data/mp_e_form`` (lowest-energy polymorph per composition, elements at 0 eV/atom)."""
    table = load_mp_e_form(aggregate="min")
    return ReferenceHull(table["reduced_formula"].astype(str).tolist(), table["e_form_ev_per_atom"].to_numpy())
