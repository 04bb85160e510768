"""Formula parsing: parity with pymatgen's Composition, error reasons, batch layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Species

from sse_screen.features.elements import ELEMENT_SYMBOLS
from sse_screen.features.formula import FormulaError, as_formula_list, fraction_matrix, parse_batch, parse_formula

DATA = Path(__file__).resolve().parents[1] / "data"

# Strings in pymatgen's grammar that exercise the fast path and the pymatgen fallback.
TRICKY = [
    "Li6.4La3Zr1.4Ta0.6O12",
    "Li3Fe2(PO4)3",
    "Na3[Sc2(PO4)3]",
    "Ca3(Al2(SiO4)3)2",
    "Li((O))2",
    "[Li(OH)2]3.5",
    "Li(LiO)2Li",
    "{Li2O}2",
    "Y3N@C80",
    "Li 2O",
    "  Li7P3S11 ",
    "Li1e-3O",
    "D2O",
    "T2O",
    "NaN",
    "CuSO4.5H2O",
    "Li.5O",
    "Li2.O",
    "Og",
    "H",
    "Li0.33La0.557TiO3",
    "Li10GeP2S12",
]


def _pymatgen_amounts(formula: str) -> dict[str, float]:
    return {el.symbol: amt for el, amt in Composition(formula).element_composition.items()}


def _dataset_formulas() -> list[str]:
    mp = pd.read_csv(DATA / "mp_e_hull" / "train.csv", keep_default_na=False, usecols=["formula"])
    ob = pd.read_csv(DATA / "obelix" / "all.csv", keep_default_na=False)
    forms = mp["formula"].sample(3000, random_state=1).tolist()
    forms += ob["Reduced Composition"].tolist() + ob["True Composition"].tolist()
    return [f for f in forms if f]


@pytest.mark.parametrize("formula", TRICKY)
def test_tricky_formulas_equal_pymatgen_exactly(formula: str) -> None:
    assert parse_formula(formula) == _pymatgen_amounts(formula)


def test_dataset_formulas_equal_pymatgen_exactly() -> None:
    """Equal amounts wherever pymatgen accepts the formula; rejected wherever pymatgen rejects it."""
    forms = _dataset_formulas()
    assert len(forms) > 3000
    mismatches = []
    for f in forms:
        try:
            ref: dict[str, float] | None = _pymatgen_amounts(f)
        except ValueError:
            ref = None
        try:
            ours: dict[str, float] | None = parse_formula(f)
        except FormulaError:
            ours = None
        if ours != ref:
            mismatches.append((f, ours, ref))
    assert mismatches == []


def test_pymatgen_composition_input_merges_species() -> None:
    comp = Composition({Species("Fe", 2): 1, Species("Fe", 3): 2, "O": 4})
    assert parse_formula(comp) == {"Fe": 3.0, "O": 4.0}
    assert parse_formula(Composition("Li2O")) == {"Li": 2.0, "O": 1.0}


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("", "empty formula"),
        ("   ", "empty formula"),
        ("Xx2O", "unknown element symbol 'Xx'"),
        ("Lio2", "unknown element symbol 'Lio'"),
        ("li2O", "cannot parse formula"),
        ("Li2O)", "cannot parse formula"),
        ("()O", "cannot parse formula"),
        ("H2O.", "cannot parse formula"),
        ("CuSO4*5H2O", "write hydrates as CuSO4(H2O)5"),
        ("Li0O", "amount of Li is zero"),
        ("Li2O0.0", "amount of O is zero"),
        ("Li-1O", "negative amount"),
        ("Li1e400O", "amount of Li is not finite"),
        ("Li" + "9" * 400, "amount of Li is not finite"),
        (None, "missing formula"),
        (float("nan"), "keep_default_na=False"),
        (42, "expected a formula string or pymatgen Composition, got int"),
        (Composition({"Li": 2, "Xx": 1}), "unknown element symbol 'Xx'"),
    ],
)
def test_bad_formulas_raise_with_reason(formula: object, reason: str) -> None:
    with pytest.raises(FormulaError, match=None) as info:
        parse_formula(formula)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)
    assert info.value.row is None


def test_parse_formula_returns_a_copy() -> None:
    first = parse_formula("Li2S")
    first["Li"] = 99.0
    assert parse_formula("Li2S") == {"Li": 2.0, "S": 1.0}


def test_fraction_matrix_layout_and_errors() -> None:
    forms = ["Li2O", "Xx", "Li6PS5Cl", "Li2O", Composition("NaCl"), ""]
    mat, errors = fraction_matrix(forms)
    assert mat.shape == (6, 118)
    assert ELEMENT_SYMBOLS[:3] == ("H", "He", "Li") and ELEMENT_SYMBOLS[-1] == "Og"
    li, o, s = ELEMENT_SYMBOLS.index("Li"), ELEMENT_SYMBOLS.index("O"), ELEMENT_SYMBOLS.index("S")
    np.testing.assert_allclose(mat[0, [li, o]], [2 / 3, 1 / 3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(mat[2, [li, s]], [6 / 13, 5 / 13], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(mat[0], mat[3])
    np.testing.assert_allclose(mat.sum(axis=1), [1, 0, 1, 1, 1, 0], atol=1e-12)
    assert errors[0] is None and errors[2] is None and errors[4] is None
    assert errors[1] is not None and "Xx" in errors[1]
    assert errors[5] == "empty formula"


def test_fraction_matrix_equals_pymatgen_fractions() -> None:
    forms = _dataset_formulas()[:500] + TRICKY
    mat, errors = fraction_matrix(forms)
    assert all(e is None for e in errors)
    for row, f in zip(mat, forms, strict=True):
        ref = np.zeros(118)
        for el, x in Composition(f).fractional_composition.element_composition.items():
            ref[el.Z - 1] = x
        np.testing.assert_allclose(row, ref, rtol=0, atol=1e-14)


def test_batch_reduction_factor_matches_pymatgen() -> None:
    forms = ["Li4P2S8", "LiO", "Li2O2", "O2", "Li6.4La3Zr1.4Ta0.6O12", "Li7La3Zr2O12", "H2", "Li10Ge2P4S24"]
    batch = parse_batch(forms)
    expected = [Composition(f).get_reduced_formula_and_factor()[1] for f in forms]
    np.testing.assert_array_equal(batch.reduction_factor, expected)


@pytest.mark.parametrize(
    "container",
    [
        lambda v: v,
        tuple,
        lambda v: np.array(v, dtype=object),
        lambda v: np.array(v, dtype=object)[:, None],
        pd.Series,
        lambda v: pd.DataFrame({"formula": v}),
        pd.Index,
    ],
)
def test_input_containers(container) -> None:  # type: ignore[no-untyped-def]
    forms = ["Li2O", "NaCl", "Li2O"]
    assert as_formula_list(container(forms)) == forms


def test_input_containers_rejected() -> None:
    with pytest.raises(TypeError, match="single string"):
        as_formula_list("Li2O")
    with pytest.raises(ValueError, match="one formula column"):
        as_formula_list(pd.DataFrame({"a": ["Li2O"], "b": ["NaCl"]}))


@pytest.mark.slow
def test_all_bundled_formulas_equal_pymatgen() -> None:
    """Every distinct formula in the bundled datasets (about 154k) parses as pymatgen does (about 1 min)."""
    forms: set[str] = set()
    for rel, col in [
        ("mp_e_hull/train.csv", "formula"),
        ("mp_e_hull/val.csv", "formula"),
        ("mp_e_form/mp_e_form.csv", "formula"),
        ("mp_gap/mp_gap.csv", "formula"),
        ("mp_li_ehull_gap/Li-MP-final.csv", "Formula"),
    ]:
        forms |= set(pd.read_csv(DATA / rel, keep_default_na=False, usecols=[col])[col])
    forms.discard("")
    mismatches = []
    for f in forms:
        try:
            ref: dict[str, float] | None = _pymatgen_amounts(f)
        except ValueError:
            ref = None
        try:
            ours: dict[str, float] | None = parse_formula(f)
        except FormulaError:
            ours = None
        if ours != ref:
            mismatches.append(f)
    assert mismatches == []
