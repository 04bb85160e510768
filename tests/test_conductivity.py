"""ConductivityModel on real OBELiX data: censored targets, grouped CV, structures, domain, persistence, MLflow e2e."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.base import clone

from sse_screen.features.composition import CompositionFeaturizer
from sse_screen.features.datasets import data_dir, load_obelix
from sse_screen.models.conductivity import ConductivityModel, conductivity_report, load_conductivity_model
from sse_screen.models.explain import explain_rows

ROOT = Path(__file__).resolve().parents[1]
CIFS = data_dir() / "obelix" / "randomized_cifs"
SMALL = {"n_estimators": 20, "n_folds": 3, "n_jobs": 1}
COLUMNS = [
    "log10_sigma_s_per_cm", "log10_sigma_std", "log10_sigma_lower", "log10_sigma_upper", "conductivity_model",
    "in_domain", "error",
]  # fmt: skip
#: Constructor parameters added after bundles were first shipped: a bundle written before lacks them.
NEW_KNOBS = ("scale_n_estimators", "scale_max_depth", "scale_learning_rate", "interval_distance_weight", "max_bin")


@pytest.fixture(scope="module")
def train_table() -> pd.DataFrame:
    table = load_obelix("train")
    return table[table["error"].isna()].sample(300, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def model(train_table: pd.DataFrame) -> ConductivityModel:
    return ConductivityModel(**SMALL).fit(
        train_table, y_lower=train_table["log10_sigma_lower"], y_upper=train_table["log10_sigma_upper"]
    )


def test_predict_table_columns_errors_and_domain(model: ConductivityModel, train_table: pd.DataFrame) -> None:
    known = train_table["formula"].iloc[0]
    table = model.predict_table([known, "Xx2O", "", "Na3PS4", "LiPt3Au"])
    assert list(table.columns) == COLUMNS
    assert table["error"].tolist()[:3] == ["", "unknown element symbol 'Xx'", "empty formula"]
    assert table.loc[1:2, "log10_sigma_s_per_cm"].isna().all() and not table.loc[1:2, "in_domain"].any()
    good = table[table["error"] == ""]
    assert good["log10_sigma_s_per_cm"].between(-20, 0).all() and (good["log10_sigma_std"] > 0).all()
    assert (good["log10_sigma_lower"] < good["log10_sigma_s_per_cm"]).all()
    assert (good["conductivity_model"] == "composition").all()
    assert table["in_domain"].tolist() == [True, False, False, False, False]  # known; bad; bad; no Li; unseen Pt/Au


def test_structures_select_the_structure_model_and_bad_cifs_are_row_errors(
    model: ConductivityModel, tmp_path: Path
) -> None:
    not_cif = tmp_path / "x.cif"
    not_cif.write_text("not a crystal\n")
    no_li = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    formulas = ["Li4GeO4", "Li4GeO4", "", "Li4GeO4", "NaCl"]
    table = model.predict_table(formulas, structures=[CIFS / "dth.cif", None, str(CIFS / "dth.cif"), not_cif, no_li])
    assert table["conductivity_model"].tolist() == ["structure", "composition", "structure", "", ""]
    assert table.loc[0, "log10_sigma_s_per_cm"] == table.loc[2, "log10_sigma_s_per_cm"]  # formula from the CIF
    assert table.loc[0, "log10_sigma_s_per_cm"] != table.loc[1, "log10_sigma_s_per_cm"]
    assert "not a CIF" in table.loc[3, "error"] and "no Li" in table.loc[4, "error"]
    assert table.loc[3:, "log10_sigma_s_per_cm"].isna().all()
    plain = ConductivityModel(**SMALL, use_structure=False).fit(["Li3PS4", "LiCl", "Li2O", "LiI"], [-4.0, -9, -8, -7])
    assert plain.predict_table(["Li4GeO4"], structures=[CIFS / "dth.cif"])["conductivity_model"].tolist() == [
        "composition"
    ]


def test_censored_rows_are_intervals_and_cv_reports_coverage(model: ConductivityModel, train_table) -> None:
    cv = model.cv_metrics_["composition"]
    assert cv["n_censored"] == train_table["censored"].sum() > 0
    assert 0.65 <= cv["coverage"] <= 0.95  # nominal 80% on grouped out-of-fold measured rows
    assert cv["mae"] < np.mean(
        np.abs(train_table["log10_sigma_s_per_cm"] - train_table["log10_sigma_s_per_cm"].median())
    )
    assert {"censored_below_bound", "censored_interval_reaches", "precision_top10", "mae_upstream"} <= set(cv)
    assert set(model.cv_metrics_) == {"composition", "structure"}
    with pytest.raises(ValueError, match="finite upper bounds"):
        clone(model).fit(train_table, train_table["log10_sigma_s_per_cm"])  # NaN for censored rows: refused


def test_grouped_cv_keeps_repeats_of_a_composition_in_one_fold() -> None:
    """Targets random per composition, each composition twice: a leaking CV would look good, a grouped one cannot."""
    formulas = load_obelix("all").drop_duplicates("composition_key").dropna(subset=["reduced_formula"])
    formulas = formulas["formula"].head(90).tolist()
    y = np.random.default_rng(0).uniform(-10, -2, len(formulas))
    X, target = formulas + formulas, np.concatenate([y, y])
    grouped = ConductivityModel(**SMALL, use_structure=False).cross_validate(X, target)[0]["composition"]
    leaky = ConductivityModel(**SMALL, use_structure=False).cross_validate(X, target, groups=range(len(X)))[0]
    assert grouped["mae"] > 1.4  # ~ the spread of the random targets (uniform width 8: MAE of the mean 2.0)
    assert leaky["composition"]["mae"] < 0.7 * grouped["mae"]


def test_report_handles_censored_rows() -> None:
    lower = np.array([-3.0, -5.0, -np.inf, -np.inf, -2.0])
    upper = np.array([-3.0, -5.0, -10.0, -10.0, -2.0])
    report = conductivity_report(lower, upper, np.array([-3.5, -5.0, -11.0, -6.0, -2.5]))
    assert report["mae"] == pytest.approx(1.0 / 3)  # measured rows only
    assert report["censored_below_bound"] == 0.5 and report["n_censored"] == 2
    assert report["precision_top10"] == 1.0  # the top row (-2.5 predicted) is superionic
    assert report["mae_upstream"] == pytest.approx((0.5 + 0 + 4 + 9 + 0.5) / 5)


def test_save_load_round_trip_and_loader(model: ConductivityModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle", metadata={"training_data_sha256": "0" * 64, "metrics": {}})
    assert sorted(p.name for p in path.iterdir()) == [
        "composition.ubj", "composition_scale.ubj", "metadata.json", "structure.ubj", "structure_scale.ubj"
    ]  # fmt: skip
    loaded = load_conductivity_model(str(path))
    rows, structures = ["Li3PS4", "Li4GeO4", "Xx"], [None, CIFS / "dth.cif", None]
    assert model.predict_table(rows, structures=structures).equals(loaded.predict_table(rows, structures=structures))
    assert loaded.get_params() == model.get_params()
    with pytest.raises(Exception, match="not fitted"):
        ConductivityModel().predict(["LiF"])


def test_shipped_bundle_loads_and_says_how_it_was_trained() -> None:
    shipped = ROOT / "models" / "shipped" / "conductivity"
    if not (shipped / "metadata.json").exists():
        pytest.skip("no shipped conductivity bundle in this checkout")
    model = ConductivityModel.load(shipped)
    meta = json.loads((shipped / "metadata.json").read_text())
    assert "ALL rows" in meta["note"] and meta["training_rows_by_source"]["obelix"] == 598
    assert meta["training_rows"] == sum(meta["training_rows_by_source"].values()) > 598
    assert {"test_mae", "cv_mae", "lofo_mae", "anchor_rf_cv_mae", "anchor_et_cv_spearman"} <= set(meta["metrics"])
    assert {row["family"] for row in meta["leave_one_family_out"]} >= {"nasicon", "garnet", "all"}
    assert not any("cost" in name or "hhi" in name for name in meta["feature_names"])
    table = model.predict_table(["Li10GeP2S12", "Li2CO3", "LiI"])
    assert table["error"].tolist() == ["", "", ""]
    assert table.loc[0, "log10_sigma_s_per_cm"] > table.loc[1, "log10_sigma_s_per_cm"] + 2  # LGPS >> Li2CO3
    assert table[["log10_sigma_lower", "log10_sigma_upper"]].stack().between(-14, -1).all()  # physical range


def test_train_script_registers_against_a_real_mlflow_server(mlflow_server: str, tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "SSE_SCREEN_HOME": str(tmp_path / "home")}
    env.pop("SSE_SCREEN_CONDUCTIVITY_MODEL_URI", None)
    ship = tmp_path / "shipped"
    run = subprocess.run(
        [sys.executable, "-m", "sse_screen.experiments.train_conductivity", "--quick", "--limit", "160", "--no-anchor",
         "--registered-model", "e2e-cond", "--ship", str(ship)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    smoke = "(a --quick/--limit smoke run is never champion)"  # registered, never served by default
    assert run.stdout.strip().endswith(f"models:/e2e-cond/1 -> @candidate {smoke}")
    assert "test_mae=" in run.stdout and "lofo_mae=" in run.stdout and "cv_coverage=" in run.stdout
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server
    try:
        served = load_conductivity_model("models:/e2e-cond@candidate")
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert served.source_.version == "1"
    rows = ["Li7La3Zr2O12", "Li3PS4"]
    assert served.predict_table(rows).equals(ConductivityModel.load(ship).predict_table(rows))


def composition_table(formulas: list[object]) -> pd.DataFrame:
    """The composition features of ``formulas`` as screening builds them: one row per formula."""
    featurizer = CompositionFeaturizer(preset="electrolyte", errors="nan").fit()
    matrix, _ = featurizer.featurize(formulas)
    return pd.DataFrame(matrix, columns=featurizer.get_feature_names_out())


def test_explain_uses_the_booster_that_served_each_row(model: ConductivityModel) -> None:
    formulas = ["Li4GeO4", "Li4GeO4", "", "Xx"]
    structures = [CIFS / "dth.cif", None, CIFS / "dth.cif", None]
    served = model.predict_table(formulas, structures=structures)["conductivity_model"].tolist()
    assert served == ["structure", "composition", "structure", ""]
    drivers = model.explain(formulas, structures=structures)
    with_cif = model.feature_table(["Li4GeO4"], structures=[CIFS / "dth.cif"]).to_numpy()
    without = model.feature_table(["Li4GeO4"]).to_numpy()
    by_structure = explain_rows(model.boosters_["structure"], with_cif, [None])[0]
    by_composition = explain_rows(model.boosters_["composition"], without, [None])[0]
    assert by_structure != by_composition
    assert drivers == [by_structure, by_composition, by_structure, ""]
    assert model.explain(formulas[:2]) == [by_composition, by_composition]  # no structures: composition model


def test_a_shared_feature_table_gives_the_same_predictions_and_drivers(model: ConductivityModel) -> None:
    formulas = ["Li4GeO4", "", "Li3PS4", "Xx2O", "Na3PS4", "Li7La3Zr2O12"]
    structures = [CIFS / "dth.cif", CIFS / "dth.cif", None, None, None, None]
    table = composition_table(formulas)  # row 1 is all NaN: its composition comes from the CIF
    given = table[table.columns[::-1]].assign(note="ignored")
    for kwargs in ({}, {"structures": structures}):
        expected = model.predict_table(formulas, **kwargs)
        assert model.predict_table(formulas, features=given, **kwargs).equals(expected)
        assert model.explain(formulas, features=given, **kwargs) == model.explain(formulas, **kwargs)
    assert expected["error"].tolist()[3] == "unknown element symbol 'Xx'"
    swapped = table.copy()
    swapped.iloc[2] = table.iloc[5]  # the table is what the model reads (beside the ion-chemistry block)
    out = model.predict_table(formulas, features=swapped)
    assert out.loc[2, "log10_sigma_s_per_cm"] != expected.loc[2, "log10_sigma_s_per_cm"]
    with pytest.raises(ValueError, match="'Li atomic fraction'"):
        model.predict_table(formulas, features=table.drop(columns="Li atomic fraction"))
    with pytest.raises(ValueError, match="'Li atomic fraction'"):
        model.explain(formulas, structures=structures, features=table.drop(columns="Li atomic fraction"))


def test_every_knob_is_a_constructor_parameter(model: ConductivityModel, train_table: pd.DataFrame) -> None:
    defaults = ConductivityModel().get_params()
    assert {name: defaults[name] for name in NEW_KNOBS} == {
        "scale_n_estimators": 200, "scale_max_depth": 3, "scale_learning_rate": 0.05, "interval_distance_weight": 1.0,
        "max_bin": 64,
    }  # fmt: skip
    assert model.boosters_["composition_scale"].num_boosted_rounds() == 200
    assert model.domain_["quantile"] == defaults["domain_quantile"]
    rows = train_table.head(80)
    tuned = ConductivityModel(
        **SMALL | {"n_folds": 2}, use_structure=False, scale_n_estimators=6, domain_quantile=0.5
    ).fit(rows, y_lower=rows["log10_sigma_lower"], y_upper=rows["log10_sigma_upper"])
    assert tuned.boosters_["composition_scale"].num_boosted_rounds() == 6
    assert tuned.domain_["quantile"] == 0.5 and tuned.domain_["threshold"] < model.domain_["threshold"]


def test_no_price_features_intervals_widen_away_from_the_data_and_stay_physical(model: ConductivityModel) -> None:
    names = model.feature_names()
    assert "cost_usd_per_kg" not in names and "hhi_production" not in names and "anion polarisability" in names
    table = model.predict_table(["Li3PS4", "Li2Ti3W2Te9"])  # a known chemistry vs one far from every row
    width = table["log10_sigma_upper"] - table["log10_sigma_lower"]
    assert width[1] > width[0]
    assert table.loc[1, "in_domain"] == False  # noqa: E712
    assert table[["log10_sigma_lower", "log10_sigma_s_per_cm", "log10_sigma_upper"]].stack().between(-14, -1).all()


def test_bundles_say_their_model_type_and_old_bundles_load_by_the_legacy_rule(
    model: ConductivityModel, tmp_path: Path
) -> None:
    from mlflow.pyfunc import PythonModelContext

    from sse_screen.experiments.pyfunc_model import BundleModel
    from sse_screen.models.property_model import PropertyModel

    path = model.save(tmp_path / "new", metadata={"training_data_sha256": "0" * 64, "metrics": {}})
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["model_type"] == "conductivity" and set(NEW_KNOBS) <= set(meta["conductivity_params"])
    meta["params"] = {}  # the legacy rule read this as a property model; model_type decides
    (path / "metadata.json").write_text(json.dumps(meta))
    rows = ["Li3PS4", "Li7La3Zr2O12", "Xx"]
    expected = model.predict_table(rows)
    wrapper = BundleModel()
    wrapper.load_context(PythonModelContext(artifacts={"bundle": str(path)}, model_config=None))
    assert isinstance(wrapper.model, ConductivityModel)
    assert wrapper.predict(None, pd.DataFrame({"formula": rows})).equals(expected)
    with pytest.raises(ValueError, match="holds a conductivity model, not a property model"):
        PropertyModel.load(path)
    legacy = Path(shutil.copytree(path, tmp_path / "legacy"))  # as written before model_type and the new knobs
    del meta["model_type"], meta["params"]
    meta["conductivity_params"] = {k: v for k, v in meta["conductivity_params"].items() if k not in NEW_KNOBS}
    (legacy / "metadata.json").write_text(json.dumps(meta))
    wrapper.load_context(PythonModelContext(artifacts={"bundle": str(legacy)}, model_config=None))
    assert isinstance(wrapper.model, ConductivityModel)
    assert wrapper.model.predict_table(rows).equals(expected)
    assert wrapper.model.get_params() == model.get_params()
    meta["conductivity_params"]["aft_scale"] = 1.0  # a bundle of the older boosted (AFT) design: a clear error
    (legacy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"older conductivity model .*aft_scale.*retrain"):
        ConductivityModel.load(legacy)
