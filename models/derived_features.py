"""The stability model's features beyond a composition's element statistics: where the composition sits against
the known phases (reference hull), and the formation energy an auxiliary booster predicts for it.

Computed by the model itself, also when the composition features come from a shared feature table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb

from sse_screen.models.boosting import predict_rows

#: Reference-hull features (leave-self-out, so the known own energy is never one).
HULL_FEATURES = ("e_hull_ref_ev_per_atom", "n_known_phases", "n_known_phases_same_elements")
#: Predicted formation energy, and with the reference hull the E_hull it implies.
E_FORM_FEATURES = ("e_form_pred_ev_per_atom", "e_hull_from_e_form_pred_ev_per_atom")


def hull_features(reference: Any, formulas: list[object], errors: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """Reference-hull features (columns :data:`HULL_FEATURES`, NaN for error rows) and decomposition strings.

    Args:
        reference: The model's known phases (a :class:`features.reference_hull.ReferenceHull`).
        formulas: The rows' formulas.
        errors: Per-row errors; a row the hull cannot place gets its reason written in (in place).
    """
    good = [i for i, e in enumerate(errors) if e is None]
    hull = reference.features([str(formulas[i]) for i in good], leave_self_out=True)
    block = np.full((len(formulas), len(HULL_FEATURES)), np.nan)
    block[good] = hull[list(HULL_FEATURES)].to_numpy(dtype=float)
    decomposition = [""] * len(formulas)
    for row, text, err in zip(good, hull["decomposition"], hull["error"], strict=True):
        decomposition[row] = text
        if err:
            errors[row] = err
    return block, decomposition


def predicted_e_form(booster: xgb.Booster, composition: np.ndarray, errors: list[str | None]) -> np.ndarray:
    """Formation energy (eV/atom) the auxiliary booster predicts from the composition features; NaN for errors."""
    e_form = np.full(len(errors), np.nan)
    good = np.array([e is None for e in errors], dtype=bool)
    if good.any():
        e_form[good] = predict_rows(booster, composition[good])
    return e_form
