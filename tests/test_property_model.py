"""PropertyModel with real data and real xgboost: outputs, errors per row, intervals, persistence, conventions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition
from sklearn.base import clone

from sse_screen.features.composition import CompositionFeaturizer
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
    errors = table["error"].tolist()
    assert errors[:4] == ["", "unknown element symbol 'Xx'", "empty formula", ""]
    assert errors[4].startswith("amount of Li is zero")  # the formula helper may add a hint
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
    shared = feature_table(val["reduced_formula"].tolist())  # e_form is predicted from the shared table's features
    assert model.predict_table(val["reduced_formula"], features=shared).equals(table)


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
    shared = feature_table(val["reduced_formula"].tolist())  # the hull features are still the model's own
    assert model.predict_table(val["reduced_formula"], features=shared).equals(out)
    assert model.explain(val["reduced_formula"], features=shared) == drivers
    assert {"cv_roc_auc", "roc_auc"} & set(model.cv_metrics_)
    path = model.save(tmp_path / "b", metadata={"training_data_sha256": "0" * 64, "metrics": {}})
    assert all((path / f"{name}.ubj").exists() for name in ("tail_regressor", "tail_classifier", "classifier_2"))
    assert PropertyModel.load(path).predict_table(val["reduced_formula"]).equals(out)
    model.set_params(tail_probability=1.01, hurdle_probability=1.01)  # branch thresholds are parameters too
    never = model.predict_table(val["reduced_formula"])["e_hull_ev_per_atom"].to_numpy()
    assert np.allclose(never, np.maximum(raw["regressor"], 0), atol=1e-6)
    with pytest.raises(ValueError, match="leaves no training row"):
        PropertyModel(task="stability", tail_threshold=99.0, **params).fit(
            train["reduced_formula"], train["e_hull_ev_per_atom"]
        )


META = {"training_data_sha256": "0" * 64, "metrics": {}}
#: Constructor parameters added after bundles were first shipped: a bundle written before lacks them.
NEW_KNOBS = (
    "bag_seed_stride", "hurdle_probability", "tail_probability", "classifier_n_estimators", "scale_n_estimators",
    "scale_max_depth", "scale_learning_rate",
)  # fmt: skip


def feature_table(formulas: list[str], preset: str = "electrolyte") -> pd.DataFrame:
    """The composition features of ``formulas`` as a caller (screening) builds them: one row per formula."""
    featurizer = CompositionFeaturizer(preset=preset, errors="nan").fit()
    matrix, _ = featurizer.featurize(formulas)
    return pd.DataFrame(matrix, columns=featurizer.get_feature_names_out())


def test_a_shared_feature_table_gives_the_same_predictions_and_drivers(gap_model: PropertyModel) -> None:
    formulas = ["Li3PS4", "Xx2O", "", "LiF", "Li0S", "Li7La3Zr2O12"]
    table = feature_table(formulas)
    given = table[table.columns[::-1]].assign(note="extra columns are ignored")  # columns matched by name
    given.index = range(100, 106)  # rows matched by position, not index
    assert gap_model.predict_table(formulas, features=given).equals(gap_model.predict_table(formulas))
    assert gap_model.explain(formulas, features=given) == gap_model.explain(formulas)
    # the table is what the model reads: LiF's features under Li3PS4's formula give LiF's prediction
    swapped = table.copy()
    swapped.iloc[0] = table.iloc[3]
    out = gap_model.predict_table(formulas, features=swapped)
    assert out.loc[0, "band_gap_ev"] == out.loc[3, "band_gap_ev"] != gap_model.predict(["Li3PS4"])[0]
    with pytest.raises(ValueError, match="'MagpieData mean Number'"):
        gap_model.predict_table(formulas, features=table.drop(columns="MagpieData mean Number"))
    with pytest.raises(ValueError, match="'MagpieData mean Number'"):
        gap_model.explain(formulas, features=table.drop(columns="MagpieData mean Number"))
    with pytest.raises(ValueError, match="5 rows but there are 6 formulas"):
        gap_model.predict_table(formulas, features=table.iloc[:5])


def test_every_knob_is_a_constructor_parameter() -> None:
    defaults = PropertyModel().get_params()
    assert {name: defaults[name] for name in NEW_KNOBS} == {
        "bag_seed_stride": 1000, "hurdle_probability": 0.5, "tail_probability": 0.5, "classifier_n_estimators": None,
        "scale_n_estimators": 300, "scale_max_depth": 5, "scale_learning_rate": 0.05,
    }  # fmt: skip
    gap = load_mp_gap(aggregate="median").sample(200, random_state=3)
    params = SMALL | {"n_estimators": 10, "n_folds": 2}
    model = PropertyModel(task="band_gap", use_reference_hull=False, **params)
    default = clone(model).fit(gap["reduced_formula"], gap["band_gap_ev"])
    assert default.boosters_["scale"].num_boosted_rounds() == 300
    assert default.boosters_["classifier"].num_boosted_rounds() == 200
    model.set_params(scale_n_estimators=7, scale_max_depth=2, classifier_n_estimators=9)
    tuned = model.fit(gap["reduced_formula"], gap["band_gap_ev"])
    assert tuned.boosters_["scale"].num_boosted_rounds() == 7
    assert tuned.boosters_["classifier"].num_boosted_rounds() == 9
    assert tuned.cv_metrics_["coverage"] != default.cv_metrics_["coverage"] or not np.allclose(
        tuned.predict_table(["LiF"])["band_gap_std_ev"], default.predict_table(["LiF"])["band_gap_std_ev"]
    )


def test_bundles_say_their_model_type_and_old_bundles_load_by_the_legacy_rule(
    gap_model: PropertyModel, tmp_path: Path
) -> None:
    from mlflow.pyfunc import PythonModelContext

    from sse_screen.experiments.pyfunc_model import BundleModel
    from sse_screen.models.conductivity import ConductivityModel
    from sse_screen.models.model_bundle import load_model
    from sse_screen.models.persistence import load_bundle

    path = gap_model.save(tmp_path / "new", metadata=META)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["model_type"] == "property" and set(NEW_KNOBS) <= set(meta["params"])
    # model_type decides, not which keys happen to be present
    meta["conductivity_params"] = {}
    (path / "metadata.json").write_text(json.dumps(meta))
    formulas = ["Li3PS4", "LiF", "Xx"]
    expected = gap_model.predict_table(formulas)
    wrapper = BundleModel()
    wrapper.load_context(PythonModelContext(artifacts={"bundle": str(path)}, model_config=None))
    assert isinstance(wrapper.model, PropertyModel)
    assert wrapper.predict(None, pd.DataFrame({"formula": formulas})).equals(expected)
    with pytest.raises(ValueError, match="holds a property model, not a conductivity model"):
        ConductivityModel.from_bundle(load_bundle(path))
    # a bundle as written before model_type and the new knobs existed (the shipped ones): the legacy rule
    legacy = Path(shutil.copytree(path, tmp_path / "legacy"))
    del meta["model_type"], meta["conductivity_params"]
    meta["params"] = {k: v for k, v in meta["params"].items() if k not in NEW_KNOBS}
    (legacy / "metadata.json").write_text(json.dumps(meta))
    wrapper.load_context(PythonModelContext(artifacts={"bundle": str(legacy)}, model_config=None))
    assert isinstance(wrapper.model, PropertyModel)
    loaded = load_model(legacy)
    assert isinstance(loaded, PropertyModel) and loaded.predict_table(formulas).equals(expected)
    assert loaded.get_params() == gap_model.get_params()
