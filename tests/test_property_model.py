"""PropertyModel with real data and real xgboost: outputs, errors per row, intervals, persistence, conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition
from sklearn.base import clone

from sse_screen.features.datasets import load_mp_e_hull, load_mp_gap
from sse_screen.models.explain import explain_rows
from sse_screen.models.property_model import PropertyModel
from sse_screen.models.reference import reference_hull
from sse_screen.models.uncertainty import calibrate

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


def test_tail_split_routes_rows_to_the_tail_regressor_and_round_trips(tmp_path: Path) -> None:
    table = load_mp_e_hull("train")
    tail = table[table["e_hull_ev_per_atom"] > 0.5].sample(120, random_state=2)
    train = pd.concat([table[table["e_hull_ev_per_atom"] <= 0.5].sample(280, random_state=2), tail])
    val = load_mp_e_hull("val").sample(80, random_state=2)
    params = SMALL | {"n_estimators": 20, "n_folds": 2, "max_depth": 4}
    model = PropertyModel(task="stability", hurdle=True, tail_threshold=0.5, classifier_bags=2, **params)
    model.fit(train["reduced_formula"], train["e_hull_ev_per_atom"])
    assert {"tail_classifier", "tail_regressor", "regressor", "classifier", "classifier_2", "scale"} <= set(
        model.boosters_
    )
    out = model.predict_table(val["reduced_formula"])
    x, _, _ = model._features(val["reduced_formula"].tolist())
    raw = {name: model.boosters_[name].inplace_predict(x) for name in model.boosters_}
    # p_stable is the mean of the two classifier bags, which differ (different seeds)
    assert not np.allclose(raw["classifier"], raw["classifier_2"])
    assert np.allclose(out["p_stable"], (raw["classifier"] + raw["classifier_2"]) / 2, atol=1e-6)
    raw["classifier"] = (raw["classifier"] + raw["classifier_2"]) / 2
    in_tail = (raw["tail_classifier"] >= 0.5) & (raw["classifier"] < 0.5)
    body = (raw["tail_classifier"] < 0.5) & (raw["classifier"] < 0.5)
    point = out["e_hull_ev_per_atom"].to_numpy()
    assert np.allclose(point[in_tail], np.maximum(raw["tail_regressor"][in_tail], 0), atol=1e-6)
    assert np.allclose(point[body], np.maximum(raw["regressor"][body], 0), atol=1e-6)
    assert (point[raw["classifier"] >= 0.5] == 0).all()
    # intervals are centred on the point that is served, the gated zeros included
    assert (out["e_hull_lower_ev_per_atom"] <= point + 1e-9).all() and (out["e_hull_upper_ev_per_atom"] >= point).all()
    # the body regressor never saw a tail row: its predictions stay far below the tail regressor's on the tail
    x_tail, _, _ = model._features(tail["reduced_formula"].tolist())
    assert np.median(model.boosters_["regressor"].inplace_predict(x_tail)) < np.median(
        model.boosters_["tail_regressor"].inplace_predict(x_tail)
    )
    # drivers come from the regressor of the row's branch
    drivers = model.explain(val["reduced_formula"])
    tail_rows = np.flatnonzero(raw["tail_classifier"] >= 0.5)
    body_rows = np.flatnonzero(raw["tail_classifier"] < 0.5)
    assert len(tail_rows) and len(body_rows)
    by_tail = explain_rows(model.boosters_["tail_regressor"], x, [None] * len(x))
    by_body = explain_rows(model.boosters_["regressor"], x, [None] * len(x))
    assert [drivers[i] for i in tail_rows] == [by_tail[i] for i in tail_rows]
    assert [drivers[i] for i in body_rows] == [by_body[i] for i in body_rows]
    assert {"cv_roc_auc", "roc_auc"} & set(model.cv_metrics_)
    path = model.save(tmp_path / "b", metadata={"training_data_sha256": "0" * 64, "metrics": {}})
    assert all((path / f"{name}.ubj").exists() for name in ("tail_regressor", "tail_classifier", "classifier_2"))
    assert PropertyModel.load(path).predict_table(val["reduced_formula"]).equals(out)
    with pytest.raises(ValueError, match="leaves no training row"):
        PropertyModel(task="stability", tail_threshold=99.0, **params).fit(
            train["reduced_formula"], train["e_hull_ev_per_atom"]
        )
