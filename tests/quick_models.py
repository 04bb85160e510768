"""Small real models for the screening tests: trained in-process in seconds (the shipped ones are being retrained).

``quick_models()`` trains a band-gap and a stability :class:`PropertyModel` (no reference hull: building it costs
~20 s) on 300 Materials Project rows each and a :class:`ConductivityModel` on 300 OBELiX rows, once per process.
"""

from __future__ import annotations

import functools
from typing import Any

SMALL = {"n_estimators": 20, "n_folds": 3, "max_depth": 4, "n_jobs": 1}


@functools.cache
def _models() -> tuple[tuple[str, Any], ...]:
    from sse_screen.features.datasets import load_mp_e_hull, load_mp_gap, load_obelix
    from sse_screen.models.conductivity import ConductivityModel
    from sse_screen.models.property_model import PropertyModel

    hull = load_mp_e_hull("train")
    hull = hull[hull["reduced_formula"].str.contains("Li")].sample(300, random_state=0)
    stability = PropertyModel(task="stability", use_reference_hull=False, **SMALL).fit(
        hull["reduced_formula"], hull["e_hull_ev_per_atom"]
    )
    gap = load_mp_gap(aggregate="median").sample(300, random_state=0)
    band_gap = PropertyModel(task="band_gap", use_reference_hull=False, **SMALL).fit(
        gap["reduced_formula"], gap["band_gap_ev"]
    )
    obelix = load_obelix("train")
    obelix = obelix[obelix["error"].isna()].sample(300, random_state=0).reset_index(drop=True)
    conductivity = ConductivityModel(n_estimators=20, n_folds=3, n_jobs=1).fit(
        obelix, y_lower=obelix["log10_sigma_lower"], y_upper=obelix["log10_sigma_upper"]
    )
    return (("stability", stability), ("band_gap", band_gap), ("conductivity", conductivity))


def quick_models() -> dict[str, Any]:
    """Task -> small fitted model (the same objects on every call of a process)."""
    return dict(_models())
