"""Train against a real MLflow server, promote by alias, and serve that alias with `sse-screen predict`.

Smoke runs (``--quick``/``--limit``) register as ``candidate`` only; the fixture promotes version 1 by hand, as a
person does after comparing runs in the MLflow UI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sse_screen.models.property_model import load_property_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "candidates.csv"


def cli(*args: str | Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sse_screen.screening.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def trained(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two band-gap versions (a real one, then a deliberately worse one) and one stability version."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "SSE_SCREEN_HOME": str(home), "MLFLOW_TRACKING_URI": mlflow_server}
    for var in ("SSE_SCREEN_STABILITY_MODEL_URI", "SSE_SCREEN_BAND_GAP_MODEL_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(var, None)
    worse = home / "worse.toml"
    worse.write_text("[model]\nn_estimators = 2\nlearning_rate = 0.05\n")
    runs = {
        "gap_v1": cli("train", "band-gap", "--quick", "--limit", "800", "--registered-model", "e2e-gap", env=env),
        "gap_v2": cli(
            "train", "band-gap", "--quick", "--limit", "800", "--registered-model", "e2e-gap", "--config", worse,
            env=env,
        ),
        "stab_v1": cli(
            "train", "stability", "--quick", "--limit", "300", "--registered-model", "e2e-stab",
            "--ship", home / "shipped-stability", env=env,
        ),
    }  # fmt: skip
    aliases_before = {}
    if all(run.returncode == 0 for run in runs.values()):
        from mlflow import MlflowClient

        client = MlflowClient(mlflow_server)
        for name in ("e2e-gap", "e2e-stab"):
            aliases_before[name] = dict(client.get_registered_model(name).aliases)
            client.set_registered_model_alias(name, "champion", "1")  # promoted by hand
    return {"env": env, "home": home, "runs": runs, "aliases_before": aliases_before}


def test_smoke_trainings_register_as_candidates_and_say_so(trained: dict) -> None:
    runs = trained["runs"]
    for name, run in runs.items():
        assert run.returncode == 0, f"{name}: {run.stderr[-3000:]}"
    smoke = "(a --quick/--limit smoke run is never champion)"
    assert runs["gap_v1"].stdout.strip().endswith(f"models:/e2e-gap/1 -> @candidate {smoke}")
    assert runs["gap_v2"].stdout.strip().endswith(f"models:/e2e-gap/2 -> @candidate {smoke}")
    assert trained["aliases_before"] == {"e2e-gap": {"candidate": "2"}, "e2e-stab": {"candidate": "1"}}
    assert "val_mae=" in runs["gap_v1"].stdout and "val_coverage=" in runs["gap_v1"].stdout
    assert (trained["home"] / "shipped-stability" / "metadata.json").exists()


def test_predict_serves_the_alias_and_the_loading_order(trained: dict, tmp_path: Path) -> None:
    env = trained["env"]
    out = tmp_path / "pred.csv"
    run = cli(
        "predict", EXAMPLE, "-o", out,
        "--band-gap-model", "models:/e2e-gap@champion", "--stability-model", "models:/e2e-stab@champion",
        env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "e2e-gap" in run.stderr and "version 1" in run.stderr
    table = pd.read_csv(out, keep_default_na=False)
    source = pd.read_csv(EXAMPLE, keep_default_na=False, dtype=str)
    assert table["formula"].tolist() == source["formula"].tolist() and table["name"].tolist() == source["name"].tolist()
    for column in ("e_hull_ev_per_atom", "e_hull_std_ev_per_atom", "p_stable", "decomposition", "band_gap_ev",
                   "band_gap_std_ev", "p_insulator", "error"):  # fmt: skip
        assert column in table.columns
    bad = table[table["error"] != ""]
    assert sorted(bad["formula"]) == ["", "Li0S", "Li2Xx3", "Li3PS4)"]
    assert (bad["band_gap_ev"] == "").all()
    good = table[table["error"] == ""]
    assert good["band_gap_ev"].astype(float).ge(0).all() and good["p_stable"].astype(float).between(0, 1).all()

    # the champion served above is version 1, exactly
    formulas = good["formula"].tolist()
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    try:
        v1 = load_property_model("band_gap", model_uri="models:/e2e-gap/1").predict(formulas)
        v2 = load_property_model("band_gap", model_uri="models:/e2e-gap/2").predict(formulas)
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert good["band_gap_ev"].astype(float).to_numpy() == pytest.approx(v1, rel=1e-6)
    assert v2 != pytest.approx(v1, rel=1e-3)

    # env var when no argument; the argument wins over the env var; the shipped folder works as a plain path
    env2 = {**env, "SSE_SCREEN_BAND_GAP_MODEL_URI": "models:/e2e-gap@candidate"}
    stab = str(trained["home"] / "shipped-stability")
    for args, expected in (
        (("--stability-model", stab), v2),
        (("--band-gap-model", "models:/e2e-gap/1", "--stability-model", stab), v1),
    ):
        run = cli("predict", EXAMPLE, "-o", out, *args, env=env2)
        assert run.returncode == 0, run.stderr
        served = pd.read_csv(out, keep_default_na=False)
        served = served[served["error"] == ""]["band_gap_ev"].astype(float).to_numpy()
        assert served == pytest.approx(expected, rel=1e-6)


def test_unreachable_tracking_server_fails_fast_before_training(trained: dict, dead_tracking_uri: str) -> None:
    start = time.monotonic()
    run = cli("train", "band-gap", "--quick", "--tracking-uri", dead_tracking_uri, env=trained["env"], timeout=120)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and "error:" in run.stderr
    assert "training compositions" not in run.stderr  # nothing was loaded or fitted
    assert time.monotonic() - start < 60


def test_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "SSE_SCREEN_STABILITY_MODEL_URI": str(tmp_path / "nothing-here")}
    run = cli("predict", EXAMPLE, "-o", tmp_path / "o.csv", env=env)
    assert run.returncode == 2
    assert "No stability model could be loaded" in run.stderr and "Traceback" not in run.stderr


def test_search_logs_each_optuna_trial_as_a_nested_run(trained: dict) -> None:
    from mlflow import MlflowClient

    env = trained["env"]
    run = cli(
        "train", "band-gap", "--quick", "--limit", "300", "--search", "2", "--registered-model", "e2e-search", env=env
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("search trial") == 2
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    version = client.get_model_version_by_alias("e2e-search", "candidate")
    parent = client.get_run(version.run_id)
    assert parent.data.metrics["search_n_trials"] == 2
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 2
    assert {c.data.metrics["cv_mae"] for c in children} >= {parent.data.metrics["search_best_cv_mae"]}
    for child in children:
        assert {"learning_rate", "max_depth", "colsample_bytree"} <= set(child.data.params)
