"""An auxiliary formation-energy model whose out-of-fold predictions feed the stability model.

Physics: E_hull(x) = E_form(x) - E_hull_ref(x), where E_hull_ref is the hull of the other known phases at x
(:mod:`features.reference_hull`). A composition model predicts E_form far better than E_hull (Bartel et al., npj
Comput. Mater. 6, 97 (2020)), so the stability model gets the predicted E_form and the implied E_hull as features.

Leakage rules (each measured on the validation split while building this):
- training rows get *out-of-fold* predictions, from a model that never saw their own formation energy;
- compositions held out for validation are removed from the formation-energy training set entirely;
- rows without a known formation energy get the full model's prediction, never a missing value: "not in the
  reference data" would otherwise become a feature that flags the most unstable compounds, a signal that does not
  exist for new candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import xgboost as xgb
from sklearn.model_selection import KFold

from sse_screen.features.canonical import canonical_key
from sse_screen.features.composition import CompositionFeaturizer
from sse_screen.features.datasets import load_mp_e_form
from sse_screen.features.formula import parse_formula


def _key(formula: str) -> str:
    """The canonical composition key (:mod:`features.canonical`): the identity used for exclusion and lookups."""
    return canonical_key(parse_formula(formula))


def fit_formation_energy(
    formulas: list[str],
    *,
    exclude: Iterable[str] = (),
    preset: str = "electrolyte",
    params: dict,
    n_folds: int = 5,
    seed: int = 0,
    say: Callable[[str], None] = lambda message: None,
) -> tuple[xgb.Booster, np.ndarray]:
    """Fit the formation-energy booster on the bundled ``mp_e_form`` and predict it leak-free for ``formulas``.

    Args:
        formulas: Training compositions of the stability model.
        exclude: Compositions that must never be seen (validation rows): removed from the training set.
        preset: Composition feature preset.
        params: xgboost parameters (``XGBRegressor`` keywords).
        n_folds: Folds of the out-of-fold predictions.
        seed: Seed.
        say: Progress messages.

    Returns:
        The booster fitted on every allowed composition, and per formula the predicted formation energy (eV/atom):
        out-of-fold where the composition is in the training set, else the full booster's prediction.
    """
    table = load_mp_e_form(aggregate="min")
    excluded = {_key(f) for f in exclude}
    table = table[~table["composition_key"].isin(excluded)].reset_index(drop=True)
    featurizer = CompositionFeaturizer(preset=preset).fit()
    x = featurizer.transform(table["reduced_formula"].astype(str).tolist())
    y = table["e_form_ev_per_atom"].to_numpy(dtype=float)
    oof = np.empty_like(y)
    for k, (train, test) in enumerate(KFold(n_folds, shuffle=True, random_state=seed).split(x)):
        say(f"formation-energy model: fold {k + 1}/{n_folds}")
        oof[test] = xgb.XGBRegressor(**params, random_state=seed + k).fit(x[train], y[train]).predict(x[test])
    say("formation-energy model: final fit")
    booster = xgb.XGBRegressor(**params, random_state=seed).fit(x, y).get_booster()
    booster.feature_names = list(featurizer.get_feature_names_out())
    by_key = dict(zip(table["composition_key"].astype(str), oof, strict=True))
    keys = [_key(f) for f in formulas]
    prediction = np.array([by_key.get(k, np.nan) for k in keys], dtype=float)
    unknown = np.isnan(prediction)
    if unknown.any():
        prediction[unknown] = booster.inplace_predict(
            featurizer.transform([formulas[i] for i in np.flatnonzero(unknown)])
        )
    return booster, prediction
