"""Model persistence, MLflow tracking/registry and the model loading order, against a real mlflow server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost

from sse_screen.experiments.store_access import StoreLockTimeout, lock_path, retry_locked, store_lock
from sse_screen.experiments.tracking import (
    Baseline,
    RegistrationError,
    TrackingUnavailable,
    log_and_register,
    preflight,
    registered_model_name,
    setup_tracking,
    tracked_run,
)
from sse_screen.experiments.train_demo import FEATURES, TARGET, demo_metadata, main, make_synthetic, train_demo
from sse_screen.models.persistence import BundleError, load_bundle, save_bundle, sha256_file, shipped_model_dir
from sse_screen.models.registry import ModelNotFoundError, model_uri_env_var, resolve_model, tracking_uri


def _fit_bundle(path: Path, data: Path, *, task: str = "stability", n_estimators: int = 5) -> Path:
    table = pd.read_csv(data)
    model = xgboost.XGBRegressor(n_estimators=n_estimators, max_depth=2, n_jobs=1, random_state=0)
    model.fit(table[FEATURES], table[TARGET])
    return save_bundle(
        path,
        boosters={"mean": model.get_booster()},
        metadata=demo_metadata(task=task, data_path=data, metrics={"n_estimators": n_estimators}),
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_synthetic(tmp_path / "synthetic.csv")


def test_bundle_round_trip_and_clear_errors(tmp_path: Path, data: Path) -> None:
    path = _fit_bundle(tmp_path / "bundle", data)
    assert sorted(p.name for p in path.iterdir()) == ["mean.ubj", "metadata.json"]
    bundle = load_bundle(path, task="stability")
    x = xgboost.DMatrix(pd.read_csv(data)[FEATURES].head(3))
    assert bundle.boosters["mean"].predict(x).shape == (3,)
    assert bundle.metadata["library_versions"]["xgboost"] == xgboost.__version__
    assert bundle.feature_names == FEATURES

    with pytest.raises(BundleError, match="holds a 'stability' model, not 'band_gap'"):
        load_bundle(path, task="band_gap")
    with pytest.raises(BundleError, match="already holds a bundle"):
        _fit_bundle(path, data)
    with pytest.raises(BundleError, match="missing required keys: target_unit"):
        save_bundle(tmp_path / "b2", boosters=bundle.boosters, metadata={"task": "stability"} | {
            k: v for k, v in bundle.metadata.items() if k != "target_unit"
        })  # fmt: skip
    with pytest.raises(BundleError, match=r"metadata.json is missing"):
        load_bundle(tmp_path)

    meta = json.loads((path / "metadata.json").read_text())
    meta["library_versions"]["xgboost"] = "99.0.0"
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"xgboost 99.0.0, newer than the installed"):
        load_bundle(path)
    (path / "mean.ubj").unlink()
    meta["library_versions"]["xgboost"] = xgboost.__version__
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"booster file 'mean.ubj' for 'mean' is missing"):
        load_bundle(path)
    with pytest.raises(ValueError, match="Unknown task='nope'"):
        shipped_model_dir("nope")


def test_champion_alias_moves_only_when_validation_metric_improves(tracking: str, data: Path) -> None:
    from mlflow.tracking import MlflowClient

    name = registered_model_name("stability")
    first = train_demo(data_path=data, n_estimators=50, max_depth=3)
    assert (first.version, first.alias, first.previous_champion) == ("1", "champion", None)
    worse = train_demo(data_path=data, n_estimators=3, max_depth=1)
    assert (worse.version, worse.alias) == ("2", "candidate")
    assert worse.metric[1] > first.metric[1]
    better = train_demo(data_path=data, n_estimators=200, max_depth=4)
    assert better.metric[1] < first.metric[1]
    assert (better.version, better.alias, better.previous_champion) == ("3", "champion", "1")

    client = MlflowClient(tracking)
    aliases = client.get_registered_model(name).aliases
    assert aliases == {"champion": "3", "candidate": "2"}
    version = client.get_model_version(name, "3")
    assert float(version.tags["val_mae"]) == pytest.approx(better.metric[1])
    run = client.get_run(better.run_id)
    assert run.data.params["n_estimators"] == "200"
    assert run.data.params["data_sha256"] == run.data.tags["data_version"] == sha256_file(data)
    assert "plots/parity.png" in {a.path for a in client.list_artifacts(better.run_id, "plots")}


def test_resolve_model_order_explicit_then_env_then_shipped(
    tracking: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = "band_gap"
    registered = train_demo(data_path=data, n_estimators=20, task=task)
    shipped_root = tmp_path / "shipped"
    _fit_bundle(shipped_model_dir(task, root=shipped_root), data, task=task, n_estimators=2)
    explicit = _fit_bundle(tmp_path / "explicit", data, task=task, n_estimators=3)
    env_var = model_uri_env_var(task)
    monkeypatch.delenv(env_var, raising=False)

    shipped = resolve_model(task, shipped_root=shipped_root)
    assert shipped.source.origin == "shipped" and shipped.metadata["metrics"] == {"n_estimators": 2}

    monkeypatch.setenv(env_var, f"models:/{registered_model_name(task)}@champion")
    from_registry = resolve_model(task, shipped_root=shipped_root)
    assert from_registry.source.origin == f"env:{env_var}"
    assert (from_registry.source.version, from_registry.source.alias) == (registered.version, "champion")
    assert from_registry.source.run_id == registered.run_id
    assert from_registry.metadata["metrics"]["val_mae"] == pytest.approx(registered.metric[1])

    from_argument = resolve_model(task, model_uri=str(explicit), shipped_root=shipped_root)
    assert from_argument.source.origin == "argument"
    assert from_argument.metadata["metrics"] == {"n_estimators": 3}

    # A configured source that fails raises: it never falls back silently to the shipped model.
    monkeypatch.setenv(env_var, f"models:/{registered_model_name(task)}@no-such-alias")
    with pytest.raises(ModelNotFoundError, match=f"env:{env_var} models:/sse-screen-band-gap@no-such-alias"):
        resolve_model(task, shipped_root=shipped_root)
    monkeypatch.delenv(env_var)
    with pytest.raises(ModelNotFoundError, match=f"{env_var} not set; shipped .*directory does not exist"):
        resolve_model(task, shipped_root=tmp_path / "empty")


def test_failed_promotion_leaves_no_half_registered_version(tracking: str, data: Path, tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    task = "conductivity"
    name = registered_model_name(task)
    champion = train_demo(data_path=data, n_estimators=10, task=task)
    bundle = _fit_bundle(tmp_path / "bundle", data, task=task)
    model = xgboost.XGBRegressor(n_estimators=5)
    with (
        pytest.raises(RegistrationError, match=f"champion {name} version 1 has no metric 'val_spearman'"),
        mlflow.start_run(experiment_id=setup_tracking(name)),
    ):
        log_and_register(
            task=task,
            estimator=model,
            metrics={"val_spearman": 0.9},
            bundle_dir=bundle,
            input_example=pd.read_csv(data)[FEATURES],
            data_path=data,
            selection_metric="val_spearman",
            greater_is_better=True,
        )
    client = MlflowClient(tracking)
    assert [v.version for v in client.search_model_versions(f"name='{name}'")] == [champion.version]
    assert client.get_registered_model(name).aliases == {"champion": champion.version}


def test_preflight_fails_fast_and_clearly_when_server_is_down(
    dead_tracking_uri: str, data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = dead_tracking_uri
    start = time.monotonic()
    with pytest.raises(TrackingUnavailable, match=r"is not reachable .*Nothing was trained or registered"):
        preflight(dead, attempts=2)
    assert time.monotonic() - start < 10

    # The training entry point stops before fitting and prints one line, not a traceback.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    start = time.monotonic()
    assert main(["--data", str(data)]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert err.startswith(f"error: MLflow tracking server {dead} is not reachable") and "Traceback" not in err


def test_local_default_store_is_sqlite_under_home_and_never_mlruns(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    home = tmp_path / "home"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SSE_SCREEN_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert tracking_uri() == f"sqlite:///{home.resolve() / 'mlflow.db'}"
    try:
        result = train_demo(data_path=data, n_estimators=5)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    assert result.alias == "champion"
    assert (home / "mlflow.db").is_file()
    assert list((home / "mlartifacts").rglob("metadata.json"))
    assert not (tmp_path / "mlruns").exists()
    bundle = resolve_model("stability", model_uri="models:/sse-screen-stability@champion")
    assert np.isfinite(bundle.metadata["metrics"]["val_mae"])


def test_registry_uri_against_dead_server_fails_in_seconds_not_minutes(
    dead_tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead_tracking_uri)
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=f"MLflow at {dead_tracking_uri} could not provide"):
        resolve_model("stability", model_uri="models:/sse-screen-stability@champion")
    assert time.monotonic() - start < 20  # MLflow's own default retries for minutes


def test_a_full_run_must_beat_the_shipped_default_too(tracking: str, data: Path, tmp_path: Path) -> None:
    name = "gate-band-gap"
    bundle = _fit_bundle(tmp_path / "bundle", data, task="band_gap")
    shipped = Baseline("the shipped default", 0.346)

    def register(val_mae: float, *, smoke_run: bool = False):
        with tracked_run(setup_tracking(name)):
            return log_and_register(
                task="band_gap", estimator=xgboost.XGBRegressor(n_estimators=5), metrics={"val_mae": val_mae},
                bundle_dir=bundle, input_example=pd.read_csv(data)[FEATURES], data_path=data,
                registered_model=name, baseline=shipped, smoke_run=smoke_run,
            )  # fmt: skip

    worse = register(0.599)  # the registry is empty, but the shipped default is better
    assert (worse.alias, worse.previous_champion) == ("candidate", None)
    assert "does not beat the shipped default (0.346)" in worse.reason
    smoke = register(0.1, smoke_run=True)
    assert smoke.alias == "candidate" and "smoke run" in smoke.reason
    better = register(0.3)
    assert better.alias == "champion" and "no champion yet and the shipped default (0.346)" in better.reason
    assert register(0.31).alias == "candidate"


def test_store_lock_excludes_and_times_out(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert lock_path(uri) == tmp_path / "mlflow.db.lock"
    with (
        store_lock(uri),
        pytest.raises(StoreLockTimeout, match="held the MLflow store lock"),
        store_lock(uri, timeout_s=0.3),
    ):
        pass
    with store_lock(uri):  # released
        pass


def test_retry_locked_outlasts_a_real_sqlite_writer_lock(tmp_path: Path) -> None:
    import sqlite3
    import threading

    path = tmp_path / "busy.db"
    with sqlite3.connect(path) as setup:
        setup.execute("create table t (x integer)")
    holder = sqlite3.connect(path, check_same_thread=False)
    holder.execute("begin exclusive")
    threading.Timer(0.5, holder.commit).start()
    attempts = []

    def insert() -> None:
        attempts.append(1)
        with sqlite3.connect(path, timeout=0) as conn:
            conn.execute("insert into t values (1)")

    retry_locked(insert, first_wait_s=0.1)
    holder.close()
    assert len(attempts) > 1  # it was locked at first, then it went through
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (1,)
    with pytest.raises(ValueError):  # anything else is not retried
        retry_locked(lambda: (_ for _ in ()).throw(ValueError("no")), first_wait_s=0.01)
