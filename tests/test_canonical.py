"""The canonical composition: one key and one canonical formula per composition, whatever its notation."""

from __future__ import annotations

import numpy as np

from sse_screen.features.canonical import canonical_compositions, canonical_key, canonical_keys
from sse_screen.features.formula import parse_formula


def test_scaled_and_regrouped_formulas_share_key_and_canonical_formula() -> None:
    forms = ["Li10GeP2S12", "Li5Ge0.5PS6", "(Li2S)5(GeS2)(P2S5)", "(Li10GeP2S12)3", "Li20Ge2P4S24"]
    canon = canonical_compositions(forms)
    assert set(canon.keys) == {"Li0.4P0.08S0.48Ge0.04"}
    assert set(canon.formulas) == {"Li10GeP2S12"} and set(canon.atoms) == {25}
    assert canonical_key(parse_formula("Li5Ge0.5PS6")) == canon.keys[0]


def test_fractional_compositions_get_their_smallest_integer_formula_or_the_key() -> None:
    canon = canonical_compositions(
        ["Li3.4Ge0.4P0.6S4", "Li10.2Ge1.2P1.8S12", "Li6.4La3Zr1.4Ta0.6O12", "Li0.33La0.557TiO3", "Li2O2", "Xx"]
    )
    assert canon.formulas[:3].tolist() == ["Li17Ge2P3S20", "Li17Ge2P3S20", "Li32La15Zr7Ta3O60"]
    # no multiplier up to 200 of the amounts over the smallest one makes integers: the key (atomic fractions)
    assert canon.formulas[3] == canon.keys[3] == "Li0.067526O0.613874Ti0.204625La0.113976" and canon.atoms[3] == 0
    assert canon.formulas[4] == "LiO"  # the key's smallest integer formula (pymatgen writes Li2O2)
    assert canon.keys[5] is None and canon.formulas[5] is None and canon.atoms[5] == 0
    assert canon.integer.tolist() == [True, True, True, False, True, False]


def test_canonical_formulas_parse_back_to_their_key() -> None:
    rng = np.random.default_rng(0)
    elements = ["Li", "La", "Zr", "O", "S", "P", "Ge", "Cl", "Ta", "Al", "B", "H"]
    forms = [
        "".join(f"{e}{rng.choice([rng.integers(1, 9), round(rng.uniform(0.05, 6), 2)])}" for e in picked)
        for picked in (rng.choice(elements, rng.integers(1, 6), replace=False) for _ in range(3000))
    ]
    canon = canonical_compositions(forms)
    whole = canon.integer
    assert 0.5 < whole.mean() < 1  # two-decimal amounts over the smallest one often need a multiplier > 200
    assert canonical_keys(list(canon.formulas[whole])).tolist() == canon.keys[whole].tolist()
    # a key written back as a formula is the same composition to within the rounding (its own key may differ in
    # the last digit: fractions rounded to 1e-6 need not sum to exactly 1)
    again = canonical_compositions(list(canon.formulas[~whole]))
    for key, other in zip(canon.keys[~whole], again.keys, strict=True):
        a, b = parse_formula(key), parse_formula(other)
        assert a.keys() == b.keys() and max(abs(a[e] - b[e]) for e in a) <= 1.5e-6


def test_conductivity_cv_groups_merge_a_composition_written_at_two_scales() -> None:
    """Random targets per composition, each written twice (as is, and x2 in parentheses): grouping by the canonical
    key keeps both in one fold, so cross-validation cannot look better than guessing."""
    from sse_screen.features.datasets import load_obelix
    from sse_screen.models.conductivity import ConductivityModel

    table = load_obelix("all").dropna(subset=["composition_key"]).drop_duplicates("composition_key")
    formulas = table["formula"].head(90).tolist()
    y = np.random.default_rng(0).uniform(-10, -2, len(formulas))
    X, target = formulas + [f"({f})2" for f in formulas], np.concatenate([y, y])
    small = {"n_estimators": 40, "n_folds": 3, "n_jobs": 1, "use_structure": False}
    grouped = ConductivityModel(**small).cross_validate(X, target)[0]["composition"]
    by_string = ConductivityModel(**small).cross_validate(X, target, groups=X)[0]["composition"]
    assert grouped["mae"] > 1.4  # ~ the spread of the random targets
    assert by_string["mae"] < 0.7 * grouped["mae"]  # what grouping by the written formula allowed
