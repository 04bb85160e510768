"""The default local store, as a user meets it: no MLFLOW_* variables, trainings side by side, serving by alias.

Real `sse-screen train` subprocesses against a real sqlite store in a temporary SSE_SCREEN_HOME, started from a
working folder that must stay clean (no stray ./mlflow.db from MLflow's own default store).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import background_server, free_port

from sse_screen.experiments.promotion import CANDIDATE, CHAMPION, Baseline, decide_alias, shipped_baseline
from sse_screen.features.datasets import data_dir
from sse_screen.models.persistence import shipped_model_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "candidates.csv"
CLI = [sys.executable, "-m", "sse_screen.screening.cli"]
SMOKE_REASON = "(a --quick/--limit smoke run is never champion)"


def clean_environment(mp: pytest.MonkeyPatch, home: Path, work: Path) -> None:
    """No MLFLOW_* or model-URI variables, a temporary SSE_SCREEN_HOME, and ``work`` as the working folder."""
    for name in list(os.environ):
        if name.startswith("MLFLOW_") or (name.startswith("SSE_SCREEN_") and name.endswith("_MODEL_URI")):
            mp.delenv(name)
    mp.setenv("SSE_SCREEN_HOME", str(home))
    mp.setenv("OMP_NUM_THREADS", "1")  # three trainings on a small machine: no thread oversubscription
    mp.chdir(work)


def start_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once (inheriting this process's environment and folder) and wait for all."""
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    done = []
    for command, process in zip(commands, processes, strict=True):
        out, err = process.communicate(timeout=900)
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


def client():
    from mlflow import MlflowClient

    from sse_screen.models.registry import mlflow_uris

    return MlflowClient(*mlflow_uris())


@pytest.fixture(scope="module")
def fresh_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Three band-gap smoke trainings started at once on a store that does not exist yet."""
    home, work = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as mp:
        clean_environment(mp, home, work)
        runs = start_all([[*CLI, "train", "band-gap", "--quick", "--limit", "120"] for _ in range(3)])
        yield {"home": home, "work": work, "runs": runs}


def test_three_trainings_at_once_on_a_fresh_store_all_register(fresh_store: dict) -> None:
    for run in fresh_store["runs"]:
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
    lines = sorted(run.stdout.strip().splitlines()[-1] for run in fresh_store["runs"])
    assert lines == [f"models:/sse-screen-band-gap/{v} -> @candidate {SMOKE_REASON}" for v in (1, 2, 3)]
    registry = client()
    versions = registry.search_model_versions("name='sse-screen-band-gap'")
    assert sorted(str(v.version) for v in versions) == ["1", "2", "3"]
    assert CHAMPION not in registry.get_registered_model("sse-screen-band-gap").aliases  # smoke runs never win
    assert [e.name for e in registry.search_experiments() if e.name.startswith("sse-screen")] == ["sse-screen-band-gap"]
    assert (fresh_store["home"] / "mlflow.db").is_file()
    assert not any(fresh_store["work"].iterdir())  # no ./mlflow.db, no ./mlruns


def test_three_trainings_at_once_on_an_existing_store_exactly_one_champion(fresh_store: dict) -> None:
    # Full (non-smoke) runs with identical data and settings score the same: exactly one of them may take
    # champion (the first to register); without the compare-and-set under the lock, several would.
    demo = [sys.executable, "-m", "sse_screen.experiments.train_demo", "--n-estimators", "20"]
    runs = start_all([demo] * 3)
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    winners = [run.stdout for run in runs if "-> @champion" in run.stdout]
    assert len(winners) == 1, [run.stdout for run in runs]
    registry = client()
    versions = registry.search_model_versions("name='sse-screen-stability'")
    assert sorted(str(v.version) for v in versions) == ["1", "2", "3"]
    champion = registry.get_registered_model("sse-screen-stability").aliases[CHAMPION]
    assert f"models:/sse-screen-stability/{champion} -> @champion" in winners[0]
    assert not any(fresh_store["work"].iterdir())


def test_serve_by_alias_on_the_default_store_from_predict_and_the_server(fresh_store: dict, tmp_path: Path) -> None:
    work = fresh_store["work"]
    alias_uri = "models:/sse-screen-band-gap@candidate"
    version = str(client().get_model_version_by_alias("sse-screen-band-gap", CANDIDATE).version)
    out = tmp_path / "out.csv"
    run = subprocess.run(
        [*CLI, "predict", str(EXAMPLE), "-o", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "SSE_SCREEN_BAND_GAP_MODEL_URI": alias_uri},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "sse-screen-band-gap" in run.stderr and f"version {version}" in run.stderr
    assert out.is_file()
    assert not (work / "mlflow.db").exists()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*CLI, "serve", "--port", str(port), "--band-gap-model", alias_uri]
    with (
        background_server(command, url=url, cwd=work, env=dict(os.environ), log_path=tmp_path / "serve.log"),
        urllib.request.urlopen(f"{url}/api/models", timeout=30) as response,
    ):
        served = {m["task"]: m for m in json.load(response)["models"]}
    band_gap = served["band_gap"]
    assert (band_gap["name"], str(band_gap["version"]), band_gap["alias"]) == (
        "sse-screen-band-gap", version, CANDIDATE,
    )  # fmt: skip
    assert not (work / "mlflow.db").exists()


def test_champion_rules_smoke_shipped_default_and_current_champion() -> None:
    mae = ("val_mae", 0.30)
    shipped = Baseline("the shipped default", 0.346)
    assert decide_alias(mae, champion=None, baseline=shipped, greater_is_better=False, smoke_run=True)[0] == CANDIDATE
    alias, reason = decide_alias(("val_mae", 0.599), champion=None, baseline=shipped, greater_is_better=False,
                                 smoke_run=False)  # fmt: skip
    assert alias == CANDIDATE and "does not beat the shipped default (0.346)" in reason
    assert decide_alias(mae, champion=("4", 0.29), baseline=shipped, greater_is_better=False, smoke_run=False)[0] == (
        CANDIDATE
    )
    alias, reason = decide_alias(mae, champion=("4", 0.31), baseline=shipped, greater_is_better=False, smoke_run=False)
    assert alias == CHAMPION and "champion version 4 (0.31)" in reason and "shipped default (0.346)" in reason
    unknown = Baseline("the shipped default", None, "no metadata")
    assert decide_alias(mae, champion=None, baseline=unknown, greater_is_better=False, smoke_run=False)[0] == CANDIDATE
    assert decide_alias(("auc", 0.9), champion=("1", 0.8), baseline=None, greater_is_better=True, smoke_run=False)[
        0
    ] == (CHAMPION)


def test_shipped_baseline_is_read_from_metadata_on_the_same_data(tmp_path: Path) -> None:
    for task, metric, data in (
        ("band_gap", "val_mae", data_dir() / "mp_gap" / "mp_gap.csv"),
        ("conductivity", "cv_mae", data_dir() / "obelix" / "all.csv"),
    ):
        meta = json.loads((shipped_model_dir(task) / "metadata.json").read_text())
        if meta.get("training_data_sha256") is None:
            pytest.skip(f"the shipped {task} bundle records no training data version")
        baseline = shipped_baseline(task, metric, data)
        assert baseline.value == pytest.approx(meta["metrics"][metric]), baseline.note
    other = tmp_path / "other.csv"
    other.write_text("formula,y\nLi2O,1.0\n")
    assert shipped_baseline("band_gap", "val_mae", other).value is None
    assert shipped_baseline("band_gap", "no_such_metric", data_dir() / "mp_gap" / "mp_gap.csv").value is None
