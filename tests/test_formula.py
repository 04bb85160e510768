"""Formula parsing: parity with pymatgen's Composition, pasted notation, absurd amounts, typo hints, batch layout."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Species

from sse_screen.features.canonical import canonical_key, canonical_keys
from sse_screen.features.composition import CompositionFeaturizer
from sse_screen.features.elements import ELEMENT_SYMBOLS
from sse_screen.features.formula import (
    FormulaError,
    as_formula_list,
    formula_hint,
    fraction_matrix,
    parse_batch,
    parse_formula,
)
from sse_screen.features.formula_text import normalize_formula

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
        ("CuSO4*5H2O", "write hydrates as CuSO4·5H2O or CuSO4(H2O)5"),
        ("Li0O", "amount of Li is zero"),
        ("Li2O0.0", "amount of O is zero"),
        ("Li-1O", "negative amount"),
        ("Li1e400O", "amount of Li is not finite (at most 1e6 atoms per formula)"),
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


# --- formulas as chemists paste them -----------------------------------------------------------------------------

PASTED = [  # (as pasted, the plain formula a chemist means)
    ("Li₃PS₄", "Li3PS4"),
    ("Li₇La₃Zr₂O₁₂", "Li7La3Zr2O12"),
    ("Li₆.₄La₃Zr₁.₄Ta₀.₆O₁₂", "Li6.4La3Zr1.4Ta0.6O12"),
    ("Li³PS⁴", "Li3PS4"),
    ("ＬｉＣｌ", "LiCl"),
    ("Ｌｉ６ＰＳ５Ｃｌ", "Li6PS5Cl"),
    (" Li₆PS₅Cl\t", "Li6PS5Cl"),
    ("Li3PS4·H2O", "Li3PS4H2O"),
    ("Li₃PS₄·H₂O", "Li3PS4H2O"),
    ("CuSO4·5H2O", "CuSO4H10O5"),
    ("CuSO4 · 5 H2O", "CuSO4(H2O)5"),
    ("CuSO4•5H2O", "CuSO4(H2O)5"),
    ("CuSO4∙5H2O", "CuSO4(H2O)5"),
    ("CuSO4⋅5H2O", "CuSO4(H2O)5"),
    ("2LiCl·3H2O", "Li2Cl2H6O3"),
    ("LiCl·H2O·NH3", "LiClH2ONH3"),
    ("Li2S + P2S5", "Li2P2S6"),
    ("(Li2S)0.75 (P2S5)0.25", "Li1.5P0.5S2"),
    ("0.75Li2S-0.25P2S5", "Li1.5P0.5S2"),
    ("0.75Li2S–0.25P2S5", "Li1.5P0.5S2"),
    ("0.75 Li2S − 0.25 P2S5", "Li1.5P0.5S2"),
    ("0.75 Li2S 0.25 P2S5", "Li1.5P0.5S2"),
    ("75Li2S–25P2S5", "Li150P50S200"),
    ("0.7Li2S-0.3P2S5·0.5LiI", "(Li2S)0.7(P2S5)0.3(LiI)0.5"),
    ("5H2O", "H10O5"),
]


@pytest.mark.parametrize(("pasted", "plain"), PASTED)
def test_pasted_notation_parses_to_the_plain_formula(pasted: str, plain: str) -> None:
    """Exactly pymatgen's amounts of the equivalent plain formula, through both parsers."""
    assert parse_formula(pasted) == _pymatgen_amounts(plain)
    # the normalised text is what both the fast path and the pymatgen fallback parse
    assert _pymatgen_amounts(normalize_formula(pasted)) == parse_formula(pasted)


def test_pasted_notation_shares_the_canonical_key() -> None:
    pasted, plain = zip(*PASTED, strict=True)
    np.testing.assert_array_equal(canonical_keys(list(pasted)), canonical_keys(list(plain)))
    assert canonical_key(parse_formula("75Li2S–25P2S5")) == canonical_key(parse_formula("(Li2S)0.75(P2S5)0.25"))


def test_plain_formulas_pass_normalisation_unchanged() -> None:
    for f in [*TRICKY, *_dataset_formulas()[:2000]]:
        assert normalize_formula(f) == f.strip()


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("Li§O", "unexpected character '§' (U+00A7 SECTION SIGN)"),
        ("Li₃PS₄·½H₂O", "unexpected character '⁄'"),  # NFKC: ½ -> 1⁄2 (fraction slash)
        ("Li3PS4·", "empty part"),
        ("·H2O", "empty part"),
        ("Li+", "empty part"),
        ("Li(PS4·H2O)", "'·' inside brackets"),
        ("2012", "part '2012' is only a number"),
        ("0Li2S·P2S5", "coefficient 0 of 'Li2S' is zero"),
        ("Li2O)·(H2O", "unbalanced brackets"),
        ("Li2S-P2S5", "give every part its number: 0.75Li2S-0.25P2S5"),
    ],
)
def test_bad_pasted_notation_raises_with_reason(formula: str, reason: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert reason in info.value.reason


# --- absurd amounts ----------------------------------------------------------------------------------------------

ABSURD = [
    ("Li1e308Cl", "amount 1e308 of Li is out of range (at most 1e6 atoms per formula)"),
    ("Li999999999999999999999Cl", "amount 1e21 of Li is out of range (at most 1e6 atoms per formula)"),
    ("Li1000001Cl", "amount 1e6 of Li is out of range"),
    ("Li1e308Cl1e308", "amount 1e308 of Li is out of range"),
    ("(Li2S)10000000", "amount 2e7 of Li is out of range"),
    ("(Li0.0000001)10000000", "number 10000000 is out of range (at most 1e6 atoms per formula)"),
    ("(Li1e-300)1e300O", "number 1e300 is out of range"),
    ("(Li10000000)0.1O2", "number 10000000 is out of range"),
    ("1e7Li2S·P2S5", "cannot parse formula"),  # a coefficient is a plain decimal
    ("10000000Li2S·P2S5", "amount 2e7 of Li is out of range"),
    ("Li1000000Cl", "Cl is 9.99999e-7 of the atoms, below 1e-6"),
    ("Li1e-12Cl", "amount of Li is zero (below 1e-8)"),
    ("Li0.0000001O", "Li is 1e-7 of the atoms, below 1e-6"),
    ("Li1e400O", "amount of Li is not finite"),
]


@pytest.mark.parametrize(("formula", "reason"), ABSURD)
def test_absurd_amounts_are_invalid_with_reason(formula: str, reason: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert reason in info.value.reason


def test_amounts_at_the_bounds_parse() -> None:
    assert parse_formula("Li1000000Cl2") == {"Li": 1e6, "Cl": 2.0}
    assert parse_formula("Li0.000001O0.999999") == {"Li": 1e-6, "O": 0.999999}


def test_absurd_amounts_raise_no_warning_and_are_not_duplicates() -> None:
    """Both issue examples are invalid (so neither is a duplicate of the other) and nothing overflows."""
    forms = [row[0] for row in ABSURD] + ["Li2O", "Li₃PS₄·H₂O"]
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        batch = parse_batch(forms)
        keys = canonical_keys(batch)
        dense = batch.dense()
        features, reasons = CompositionFeaturizer(errors="nan").fit().featurize(forms)
    assert list(keys[: len(ABSURD)]) == [None] * len(ABSURD)
    assert keys[-2] == canonical_key({"Li": 2, "O": 1})
    assert np.isfinite(dense).all() and np.isfinite(batch.amount).all()
    assert reasons[: len(ABSURD)] == batch.errors[: len(ABSURD)]
    assert np.isnan(features[: len(ABSURD)]).all() and not np.isnan(features[-2:]).all(axis=1).any()


# --- typo hints --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "hint"),
    [
        ("li3ps4", "did you mean Li3PS4?"),
        ("li7la3zr2o12", "did you mean Li7La3Zr2O12?"),
        ("Lil", "did you mean LiI?"),
        ("LIPON", "did you mean LiPON?"),
        ("Lio2", "did you mean LiO2?"),
        ("Li0", "did you mean O? a digit 0 follows Li (LiO)"),
        ("li₃ps₄", "did you mean Li3PS4?"),
    ],
)
def test_parse_errors_end_with_a_typo_hint(formula: str, hint: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert info.value.reason.endswith(hint)
    assert formula_hint(formula) == hint


@pytest.mark.parametrize(
    ("formula", "hint"),
    [
        ("Li7La3Zr2012", "did you mean O12? a digit 0 follows Zr (Li7La3Zr2O12)"),
        ("Li₇La₃Zr₂₀₁₂", "did you mean O12? a digit 0 follows Zr (Li7La3Zr2O12)"),
        ("Li2Ti307", "did you mean O7? a digit 0 follows Ti (Li2Ti3O7)"),
        ("LiNb03", "did you mean O3? a digit 0 follows Nb (LiNbO3)"),
        ("LiFeP04", "did you mean O4? a digit 0 follows P (LiFePO4)"),
        ("CuSO4.5H2O", "'.5H2O' reads as a decimal point; write a hydrate as CuSO4·5H2O"),
    ],
)
def test_valid_formulas_with_a_likely_typo_parse_unchanged_and_get_a_hint(formula: str, hint: str) -> None:
    """A hint never changes a valid parse: Li7La3Zr2012 is Zr2012 (as pymatgen reads it), plus a warning."""
    assert parse_formula(formula) == _pymatgen_amounts(normalize_formula(formula))
    assert formula_hint(formula) == hint


def test_no_hint_for_bundled_or_tricky_formulas() -> None:
    """No false alarms on real formulas (the bundled data sets hold large amounts such as C100H292 and O108)."""
    odd_but_real = ["C40H120Si20", "Al102Re24Si12", "B105", "Na10Si102", "Li0O", "Li10GeP2S12", "Li7La3Zr2O12"]
    forms = [*_dataset_formulas(), *TRICKY, *odd_but_real]
    flagged = {f: formula_hint(f) for f in forms if formula_hint(f) is not None}
    assert flagged == {"CuSO4.5H2O": "'.5H2O' reads as a decimal point; write a hydrate as CuSO4·5H2O"}
    assert formula_hint(None) is None and formula_hint(42) is None
