"""PropertyModel with real data and real xgboost: outputs, errors per row, intervals, persistence, conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition
from sklearn.base import clone

from features.datasets import load_mp_e_hull, load_mp_gap
from models.property_model import PropertyModel
from models.reference import reference_hull
from models.uncertainty import calibrate

SMALL = {"n_estimators": 40, "n_folds": 3, "max_depth": 5, "learning_rate": 0.15, "n_jobs": 2}


@pytest.fixture(scope="module")
def gap_data():
    table = load_mp_gap(aggregate="median").sample(1500, random_state=1).reset_index(drop=True)
    return table.iloc[:1200], table.iloc[1200:]


@pytest.fixture(scope="module")
def gap_model(gap_data) -> PropertyModel:
    train, _ = gap_data
    return PropertyModel(task="band_gap", use_reference_hull=False, **SMALL).fit(
        train["reduced_formula"], train["band_gap_ev"]
    )


def test_predict_table_columns_and_per_row_errors(gap_model: PropertyModel) -> None:
    table = gap_model.predict_table(["Li3PS4", "Xx2O", "", "LiF", "Li0S"])
    assert list(table.columns) == [
        "band_gap_ev", "band_gap_std_ev", "band_gap_lower_ev", "band_gap_upper_ev", "p_insulator", "error"
    ]  # fmt: skip
    assert table["error"].tolist() == ["", "unknown element symbol 'Xx'", "empty formula", "", "amount of Li is zero"]
    good = table[table["error"] == ""]
    assert good.notna().all().all()
    assert table.loc[table["error"] != "", "band_gap_ev"].isna().all()
    assert (good["band_gap_ev"] >= 0).all() and good["p_insulator"].between(0, 1).all()
    assert (good["band_gap_lower_ev"] <= good["band_gap_ev"]).all()
    assert (good["band_gap_ev"] <= good["band_gap_upper_ev"]).all()
    # LiF is a wide-gap insulator, far above a metal like Cu3Au in any sane model
    ranked = gap_model.predict_table(["LiF", "Cu3Au"])["band_gap_ev"].tolist()
    assert ranked[0] > ranked[1] + 1.0


def test_validation_metrics_and_interval_coverage_are_sane(gap_model: PropertyModel, gap_data) -> None:
    _, val = gap_data
    cv = gap_model.cv_metrics_
    assert 0.70 <= cv["coverage"] <= 0.90  # nominal 80% on out-of-fold rows
    scores = gap_model.score_table(val["reduced_formula"], val["band_gap_ev"])
    assert scores["mae"] < 0.9 * np.mean(np.abs(val["band_gap_ev"] - val["band_gap_ev"].median()))  # beats median
    assert scores["roc_auc"] > 0.8
    assert 0.65 <= scores["coverage"] <= 0.95


def test_save_load_round_trip_is_exact_and_pickle_free(gap_model: PropertyModel, tmp_path: Path) -> None:
    path = gap_model.save(tmp_path / "bundle", metadata={"training_data_sha256": "0" * 64, "metrics": {}})
    assert sorted(p.name for p in path.iterdir()) == ["classifier.ubj", "metadata.json", "regressor.ubj", "scale.ubj"]
    loaded = PropertyModel.load(path, task="band_gap")
    formulas = ["Li3PS4", "LiF", "Li7La3Zr2O12", "Xx"]
    a, b = gap_model.predict_table(formulas), loaded.predict_table(formulas)
    assert a.equals(b)
    assert loaded.get_params() == gap_model.get_params()


def test_sklearn_conventions() -> None:
    model = PropertyModel(task="band_gap", n_estimators=7)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(Exception, match="not fitted"):
        model.predict(["LiF"])
    with pytest.raises(ValueError, match="Unknown task"):
        PropertyModel(task="colour").fit(["LiF"], [1.0])
    with pytest.raises(ValueError, match="cannot be featurized"):
        PropertyModel(task="band_gap", use_reference_hull=False, **SMALL).fit(["LiF", "Xx"], [1.0, 2.0])


def test_stability_model_uses_reference_hull_and_names_decomposition() -> None:
    train = load_mp_e_hull("train")
    train = train[train["reduced_formula"].str.contains("Li")].sample(400, random_state=0)
    model = PropertyModel(task="stability", **SMALL).fit(train["reduced_formula"], train["e_hull_ev_per_atom"])
    assert "e_hull_ref_ev_per_atom" in model.feature_names_in_
    table = model.predict_table(["Li3PS4", "Li2S", "Li4P2S7"])
    assert list(table.columns[:5]) == [
        "e_hull_ev_per_atom", "e_hull_std_ev_per_atom", "e_hull_lower_ev_per_atom", "e_hull_upper_ev_per_atom",
        "p_stable",
    ]  # fmt: skip
    assert (table["e_hull_ev_per_atom"] >= 0).all() and table["p_stable"].between(0, 1).all()
    # Li3PS4's own energy is left out: the hull of the other Li-P-S phases decomposes it into known phases
    products = table.loc[0, "decomposition"].split(" + ")
    assert len(products) >= 2 and "Li3PS4" not in products
    for product in products:
        assert {el.symbol for el in Composition(product).elements} <= {"Li", "P", "S"}
        assert reference_hull().known_formation_energy(product) < 0


def test_conformal_calibration_hits_nominal_coverage_on_exchangeable_data() -> None:
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.1, 2.0, 20_000)
    y = rng.normal(0, scale)
    cal = calibrate(y[:10_000], np.zeros(10_000), scale[:10_000], coverage=0.8)
    lower, upper = cal.interval(np.zeros(10_000), scale[10_000:])
    covered = np.mean((y[10_000:] >= lower) & (y[10_000:] <= upper))
    assert 0.78 <= covered <= 0.82
    assert np.allclose(cal.std(scale[10_000:]) / scale[10_000:], cal.std(np.ones(1))[0], rtol=1e-12)


def test_formation_energy_feature_and_hurdle_round_trip(tmp_path: Path) -> None:
    train = load_mp_e_hull("train")
    train = train[train["reduced_formula"].str.contains("Li")].sample(300, random_state=1)
    val = load_mp_e_hull("val").sample(50, random_state=1)
    params = SMALL | {"n_estimators": 15, "n_folds": 2, "max_depth": 4}
    model = PropertyModel(task="stability", formation_energy_feature=True, hurdle=True, **params)
    model.fit(train["reduced_formula"], train["e_hull_ev_per_atom"], holdout=val["reduced_formula"].tolist())
    names = list(model.feature_names_in_)
    assert names[-2:] == ["e_form_pred_ev_per_atom", "e_hull_from_e_form_pred_ev_per_atom"]
    table = model.predict_table(val["reduced_formula"])
    # the hurdle: wherever the classifier says "stable", the point prediction is exactly 0
    stable = table["p_stable"] >= 0.5
    assert (table.loc[stable, "e_hull_ev_per_atom"] == 0).all() and (
        table.loc[~stable, "e_hull_ev_per_atom"] >= 0
    ).all()
    path = model.save(tmp_path / "b", metadata={"training_data_sha256": "0" * 64, "metrics": {}})
    assert (path / "formation_energy.ubj").exists()
    assert PropertyModel.load(path).predict_table(val["reduced_formula"]).equals(table)
