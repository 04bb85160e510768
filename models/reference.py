"""The known phases that stability predictions are placed against: the bundled Materials Project formation energies.

Built once per process and shared by every stability model and request. The CSV is read directly (not through
``features.datasets``, which parses every formula with pymatgen): the reference hull tokenises formulas with the fast
parser and builds pymatgen objects only for the chemical systems a query touches.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from sse_screen.features.datasets import data_dir
from sse_screen.features.reference_hull import ReferenceHull


@cache
def reference_hull() -> ReferenceHull:
    """Known phases of ``data/mp_e_form`` (lowest-energy polymorph per composition, elements at 0 eV/atom)."""
    table = pd.read_csv(data_dir() / "mp_e_form" / "mp_e_form.csv", keep_default_na=False)  # "NaN": sodium nitride
    return ReferenceHull(table["formula"].astype(str).tolist(), table["target"].to_numpy(dtype=float))
