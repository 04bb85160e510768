"""CompositionFeaturizer: parity with matminer/pymatgen, error modes, sklearn conventions."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sse_screen.features.composition import CompositionFeaturizer, FormulaError
from sse_screen.features.elements import ELEMENT_SYMBOLS, MAGPIE_PROPERTIES, magpie_table, pymatgen_table

matminer_composite = pytest.importorskip("matminer.featurizers.composition")
DATA = Path(__file__).resolve().parents[1] / "data"

SPECIAL = [
    "Li",  # single element
    "Og",  # element with imputed Magpie data
    "Li6.4La3Zr1.4Ta0.6O12",  # fractional
    "Li0.33La0.557TiO3",
    "Na3[Sc2(PO4)3]",  # bracketed, nested
    "Ca3(Al2(SiO4)3)2",
    "LiNaKRbCsBeMgCaSrBaScYTiZrHfVNbTaCrMoWO20",  # many elements
    "Li3.00001PS4",  # near-tie in amounts (mode uses np.isclose)
    "LiCoO2",
    "NaN",
    "LiO",
]


@pytest.fixture(scope="module")
def formulas() -> list[str]:
    mp = pd.read_csv(DATA / "mp_e_hull" / "train.csv", keep_default_na=False, usecols=["formula"])
    ob = pd.read_csv(DATA / "obelix" / "all.csv", keep_default_na=False)
    forms = mp["formula"].sample(250, random_state=7).tolist()
    forms += ob["Reduced Composition"].sample(100, random_state=7).tolist()
    return forms + SPECIAL


@pytest.fixture(scope="module")
def fitted() -> CompositionFeaturizer:
    return CompositionFeaturizer().fit()


def test_magpie_preset_equals_matminer(formulas: list[str]) -> None:
    ref_feat = matminer_composite.ElementProperty.from_preset("magpie")
    ref = np.array([ref_feat.featurize(Composition(f)) for f in formulas], dtype=np.float64)
    feat = CompositionFeaturizer(preset="magpie").fit()
    ours = feat.transform(formulas)
    assert list(feat.get_feature_names_out()) == ref_feat.feature_labels()
    assert ours.shape == (len(formulas), 132) and ours.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_magpie_preset_from_compositions_equals_strings(formulas: list[str]) -> None:
    feat = CompositionFeaturizer(preset="magpie").fit()
    np.testing.assert_array_equal(feat.transform([Composition(f) for f in formulas]), feat.transform(formulas))


def test_electrolyte_preset_starts_with_magpie(formulas: list[str]) -> None:
    magpie = CompositionFeaturizer(preset="magpie").fit()
    full = CompositionFeaturizer(preset="electrolyte").fit()
    np.testing.assert_array_equal(full.transform(formulas)[:, :132], magpie.transform(formulas))
    assert list(full.get_feature_names_out()[:132]) == list(magpie.get_feature_names_out())


def test_electrolyte_descriptors_equal_matminer(formulas: list[str], fitted: CompositionFeaturizer) -> None:
    """Stoichiometry, valence-orbital fractions and ionic character as matminer computes them."""
    mm = matminer_composite
    # IonProperty imputes missing Pauling X; we report NaN there, so compare on elements that have X.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for elements without Pauling X
        forms = [f for f in formulas if all(not math.isnan(e.X) for e in Composition(f).elements)]
    names = list(fitted.get_feature_names_out())
    ours = pd.DataFrame(fitted.transform(forms), columns=names)
    stoich = mm.Stoichiometry(p_list=[0, 2, 3, 5, 7, 10], num_atoms=False)
    valence = mm.ValenceOrbital(props=["frac"])
    ion = mm.IonProperty(fast=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_st = np.array([stoich.featurize(Composition(f)) for f in forms])
        ref_va = np.array([valence.featurize(Composition(f)) for f in forms])
        ref_io = np.array([ion.featurize(Composition(f))[1:] for f in forms], dtype=float)
    cols_st = ["n_elements", "2-norm", "3-norm", "5-norm", "7-norm", "10-norm"]
    np.testing.assert_allclose(ours[cols_st].to_numpy(), ref_st, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[valence.feature_labels()].to_numpy(), ref_va, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[["max ionic char", "avg ionic char"]].to_numpy(), ref_io, rtol=0, atol=1e-12)


def test_cost_hhi_and_li_content_equal_pymatgen(fitted: CompositionFeaturizer) -> None:
    from pymatgen.analysis.cost import CostAnalyzer, CostDBElements
    from pymatgen.analysis.hhi import HHIModel

    forms = ["Li7La3Zr2O12", "Li6PS5Cl", "Li3YCl6", "Na3SbS4", "Li10GeP2S12", "LiCoO2", "Li4P2S8", "LiO"]
    ours = pd.DataFrame(fitted.transform(forms), columns=fitted.get_feature_names_out())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hhi = np.array([HHIModel().get_hhi(f) for f in forms], dtype=float)
        cost = np.array([CostAnalyzer(CostDBElements()).get_cost_per_kg(f) for f in forms])
    np.testing.assert_allclose(ours[["hhi_production", "hhi_reserve"]].to_numpy(), hhi, rtol=1e-12)
    np.testing.assert_allclose(ours["cost_usd_per_kg"], cost, rtol=1e-9)
    li_fu = [Composition(f)["Li"] / Composition(f).get_reduced_formula_and_factor()[1] for f in forms]
    np.testing.assert_allclose(ours["Li per formula unit"], li_fu, rtol=0, atol=1e-12)

    np.testing.assert_allclose(ours["Li atomic fraction"], [Composition(f).get_atomic_fraction("Li") for f in forms])
    np.testing.assert_allclose(ours["halide atomic fraction"][:3], [0, 1 / 13, 6 / 10])


def test_li_per_formula_unit_does_not_depend_on_how_the_formula_is_written(fitted: CompositionFeaturizer) -> None:
    names = list(fitted.get_feature_names_out())
    col = names.index("Li per formula unit")
    groups = [
        ["Li10GeP2S12", "Li5Ge0.5PS6", "(Li5Ge0.5PS6)2", "Li20Ge2P4S24"],  # 10
        ["Li3PS4", "(Li2S)0.75(P2S5)0.25", "Li1.5P0.5S2"],  # 3
        ["Li6.75La3Zr1.75Ta0.25O12", "Li27La12Zr7TaO48", "Li13.5La6Zr3.5Ta0.5O24"],  # 27
        ["LiO", "Li2O2", "Li0.5O0.5"],  # pymatgen's Li2O2
    ]
    for group, expected in zip(groups, [10, 3, 27, 2], strict=True):
        np.testing.assert_allclose(fitted.transform(group)[:, col], expected, rtol=0, atol=1e-9, err_msg=str(group))
    # no integer formula within the multiplier limit: missing, not a number that depends on the notation
    assert np.isnan(fitted.transform(["Li0.1234567S1"])[0, col])


def test_nan_only_where_data_lack_values(fitted: CompositionFeaturizer) -> None:
    names = list(fitted.get_feature_names_out())
    out = pd.DataFrame(fitted.transform(["Li7La3Zr2O12", "LiHe", "LiH", "UO2"]), columns=names)
    assert not out.iloc[0].isna().any()
    assert out.iloc[1][["max ionic char", "avg ionic char"]].isna().all()  # He has no Pauling X
    assert out.iloc[2][["hhi_production", "hhi_reserve"]].isna().all()  # no HHI for H
    assert np.isnan(out.iloc[3]["cost_usd_per_kg"])  # no price for U
    assert set(out.columns[out.isna().any()]) == {
        "max ionic char", "avg ionic char", "hhi_production", "hhi_reserve", "cost_usd_per_kg",
    }  # fmt: skip


BAD = [("Xx2O", "unknown element symbol 'Xx'"), ("", "empty formula"), ("Li0O", "zero"), ("Li2O)", "cannot parse")]


@pytest.mark.parametrize(("bad", "reason"), BAD)
def test_errors_raise_names_row_and_reason(bad: str, reason: str, fitted: CompositionFeaturizer) -> None:
    with pytest.raises(FormulaError) as info:
        fitted.transform(["Li2O", "LiCl", bad, "Xx"])
    assert isinstance(info.value, ValueError)
    assert info.value.row == 2 and info.value.formula == bad
    assert reason in info.value.reason and "row 2" in str(info.value)


@pytest.mark.parametrize(("bad", "reason"), BAD)
def test_errors_nan_keeps_good_rows_in_order(bad: str, reason: str) -> None:
    good = ["Li2O", "Li6PS5Cl", "LiCl", "Li7La3Zr2O12"]
    feat = CompositionFeaturizer(errors="nan").fit()
    mixed = [good[0], bad, good[1], good[2], bad, good[3]]
    out, reasons = feat.featurize(mixed)
    np.testing.assert_array_equal(out[[0, 2, 3, 5]], feat.transform(good))
    assert np.isnan(out[[1, 4]]).all()
    assert [r is None for r in reasons] == [True, False, True, True, False, True]
    assert reason in (reasons[1] or "")
    assert feat.transform(mixed).shape == out.shape and feat.errors_ == reasons


def test_featurize_returns_reasons_even_in_raise_mode(fitted: CompositionFeaturizer) -> None:
    out, reasons = fitted.featurize(["Li2O", "Qq"])
    assert reasons[0] is None and "Qq" in (reasons[1] or "")
    assert np.isnan(out[1]).all() and not np.isnan(out[0]).any()


def test_input_containers_give_same_output(fitted: CompositionFeaturizer) -> None:
    forms = ["Li2O", "Na3PS4", "Li2O", "Li3InCl6"]
    ref = fitted.transform(forms)
    for x in (
        np.array(forms),
        pd.Series(forms),
        pd.DataFrame({"formula": forms}),
        [Composition(f) for f in forms],
        tuple(forms),
    ):
        np.testing.assert_array_equal(fitted.transform(x), ref)
    assert fitted.transform([]).shape == (0, len(fitted.get_feature_names_out()))


def test_sklearn_conventions() -> None:
    feat = CompositionFeaturizer(preset="magpie", errors="nan")
    assert feat.get_params() == {"preset": "magpie", "errors": "nan"}
    assert clone(feat).get_params() == feat.get_params()
    with pytest.raises(NotFittedError):
        feat.transform(["Li2O"])
    assert feat.fit(["Li2O"]) is feat and feat.n_features_in_ == 1
    with pytest.raises(ValueError, match="Unknown preset"):
        CompositionFeaturizer(preset="nope").fit()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown errors"):
        CompositionFeaturizer(errors="ignore").fit()  # type: ignore[arg-type]


def test_set_output_pandas_and_pipeline(fitted: CompositionFeaturizer) -> None:
    feat = clone(fitted).set_output(transform="pandas")
    df = feat.fit_transform(pd.Series(["Li2O", "NaCl"]))
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(fitted.get_feature_names_out())
    pipe = make_pipeline(CompositionFeaturizer(preset="magpie"), StandardScaler()).fit(["Li2O", "NaCl", "LiCl"])
    assert pipe.transform(["Li2S"]).shape == (1, 132)


def test_units_and_citations_cover_every_feature(fitted: CompositionFeaturizer) -> None:
    units = fitted.feature_units()
    assert list(units) == list(fitted.get_feature_names_out())
    assert len(units) == 159 and all(desc and unit for desc, unit in units.values())
    assert units["MagpieData mean GSbandgap"][1] == "eV" and units["cost_usd_per_kg"][1] == "USD/kg"
    cites = fitted.citations()
    assert cites and all(c.startswith("@") for c in cites)
    assert any("Ward" in c and "2016" in c for c in cites)


def test_element_tables_match_their_sources() -> None:
    """The packaged CSVs are value-for-value copies of matminer's Magpie tables and pymatgen's data."""
    from matminer.utils.data import MagpieData
    from pymatgen.analysis.hhi import HHIModel
    from pymatgen.core import Element

    src = MagpieData(impute_nan=True)
    ref = np.array([[src.all_elemental_props[p][s] for p in MAGPIE_PROPERTIES] for s in ELEMENT_SYMBOLS])
    np.testing.assert_array_equal(magpie_table(), ref)
    raw = magpie_table(impute_nan=False)
    assert np.isnan(raw).any() and not np.isnan(magpie_table()).any()

    pmg = pymatgen_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(pmg["atomic_mass_amu"], [float(Element(s).atomic_mass) for s in ELEMENT_SYMBOLS])
        np.testing.assert_array_equal(pmg["pauling_electronegativity"], [Element(s).X for s in ELEMENT_SYMBOLS])
    hhi = HHIModel().symbol_hhip_hhir
    for s in ELEMENT_SYMBOLS:
        got = tuple(pmg.loc[s, ["hhi_production", "hhi_reserve"]])
        assert got == hhi[s] if s in hhi else np.isnan(got).all()


def test_li_per_formula_unit_equals_pymatgen_reduced_formula_on_integer_training_data() -> None:
    """The shipped stability and band-gap models were fitted on Materials Project formulas (all integer): for them
    the scale-free definition must give exactly what pymatgen's reduced formula gave."""
    from sse_screen.features.datasets import data_dir
    from sse_screen.features.formula import parse_batch
    from sse_screen.features.presets import frac_li_per_formula_unit

    forms = pd.read_csv(data_dir() / "mp_e_hull" / "train.csv", keep_default_na=False)["formula"].astype(str)
    batch = parse_batch(forms.tolist())
    is_li = (batch.index == 2) & batch.mask  # Li is Z = 3
    pymatgen_li_per_fu = (batch.amount * is_li).sum(axis=1) / batch.reduction_factor
    li_fraction = (batch.fractions() * is_li).sum(axis=1)
    ours = frac_li_per_formula_unit(batch, li_fraction)
    assert batch.ok.all()
    np.testing.assert_allclose(ours, pymatgen_li_per_fu, rtol=1e-12, atol=1e-12)
