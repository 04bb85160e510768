"""Which mobile ions have a conductivity model, and what a ranking does for an ion that has none.

The conductivity model (shipped, and what ``sse-screen train conductivity`` fits) learns from OBELiX: Li-ion
conductors only. Its prediction for a Na (or any other) conductor is a Li-trained number that would rank NaCl above
Na3PS4. So, for a mobile ion without a model:

- the conductivity columns are empty, with the reason in ``conductivity_model`` (``"none: no Na model"``);
- the conductivity objective leaves the score and the Pareto front (its weight becomes 0);
- stability, band gap and cost still rank;
- :func:`mobile_ion_notice` is the one-line notice the CLI prints once (stderr) and the web page shows.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

#: Mobile ions the conductivity model was trained on.
CONDUCTIVITY_MODEL_IONS: Final[frozenset[str]] = frozenset({"Li"})
#: Numeric prediction columns of the conductivity model (``models.conductivity.OUTPUT_COLUMNS`` minus the labels).
SIGMA_COLUMNS: Final[tuple[str, ...]] = (
    "log10_sigma_s_per_cm",
    "log10_sigma_std",
    "log10_sigma_lower",
    "log10_sigma_upper",
)


def has_conductivity_model(mobile_ion: str) -> bool:
    """True if a conductivity model exists for ``mobile_ion`` (see :data:`CONDUCTIVITY_MODEL_IONS`)."""
    return mobile_ion in CONDUCTIVITY_MODEL_IONS


def mobile_ion_notice(mobile_ion: str) -> str | None:
    """The notice for a ranking with ``mobile_ion``; None when its conductivity is modelled."""
    if has_conductivity_model(mobile_ion):
        return None
    trained = ", ".join(sorted(CONDUCTIVITY_MODEL_IONS))
    return (
        f"no conductivity model for {mobile_ion} conductors (the conductivity model is trained on {trained} "
        "conductors only): conductivity columns are empty and conductivity is left out of the score and the Pareto "
        "front; stability, band gap and cost still rank"
    )


def conductivity_weight_off(weights: dict[str, float], mobile_ion: str) -> dict[str, float]:
    """``weights`` with the conductivity objective at 0 when ``mobile_ion`` has no conductivity model."""
    return weights if has_conductivity_model(mobile_ion) else {**weights, "conductivity": 0.0}


def blank_conductivity(table: pd.DataFrame, mobile_ion: str) -> pd.DataFrame:
    """Empty the conductivity columns (and drivers) when ``mobile_ion`` has no model; the table as is otherwise.

    Returns:
        A copy with NaN in :data:`SIGMA_COLUMNS`, <NA> in ``in_domain``, "" in ``conductivity_drivers`` and
        ``"none: no <ion> model"`` in ``conductivity_model`` (rows without an ``error``).
    """
    if has_conductivity_model(mobile_ion):
        return table
    out = table.copy()
    for column in SIGMA_COLUMNS:
        if column in out.columns:
            out[column] = np.nan
    if "in_domain" in out.columns:
        out["in_domain"] = pd.array([pd.NA] * len(out), dtype="boolean")
    if "conductivity_drivers" in out.columns:
        out["conductivity_drivers"] = ""
    if "conductivity_model" in out.columns:
        fine = out["error"].fillna("").astype(str).eq("") if "error" in out.columns else True
        out["conductivity_model"] = np.where(fine, f"none: no {mobile_ion} model", "")
    return out
