"""Parquet datasets on a real dask.distributed LocalCluster (2 worker processes): the same answer as one process.

The workers load the shipped models once each (screening.distributed.ModelsPlugin); the reference is
``rank_candidates``/``predict_table``/``featurize_table`` on the whole table in this process with the same models.
One cluster serves the module; the fault test kills one of its worker processes (its nanny starts a new one).
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from rank_1m import candidate_formulas, diverse_formulas

from sse_screen.screening.cli import main
from sse_screen.screening.distributed import map_dataset, rank_dataset
from sse_screen.screening.featurize import featurize_table
from sse_screen.screening.partitioned import EXACT_FRONTS, read_ranking
from sse_screen.screening.predict import load_models, predict_table
from sse_screen.screening.rank import RankOptions, rank_candidates

BAD = ["", "Xx2O", "NaCl", "Li2PbO3", "LiO3", "Li((", "=HYPERLINK()", "Li" * 400, "li3ps4", "Li3PS4"]
NO_EXPLAIN = RankOptions(explain=False)
CUTS = [0, 731, 745, 1400, 1401]  # uneven files; each also split into row groups of 300 and partitions of 400


def _table() -> pd.DataFrame:
    formulas = candidate_formulas(900, seed=3) + diverse_formulas(500, seed=4) + BAD * 6
    order = np.random.default_rng(0).permutation(len(formulas))
    formulas = [formulas[i] for i in order]
    return pd.DataFrame({"formula": formulas, "batch": [f"b{i % 7}" for i in range(len(formulas))]})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("candidates")
    table = _table()
    bounds = [*CUTS, len(table)]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        table.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=300)
    return folder, table


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def reference(dataset: tuple[Path, pd.DataFrame]) -> pd.DataFrame:
    return rank_candidates(dataset[1], load_models())


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Values as Python objects, missing values as None: dtypes differ between one table and a dataset of parts."""

    def plain(value: object) -> object:
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            return None
        return value.item() if isinstance(value, np.generic) else value

    return pd.DataFrame({c: [plain(v) for v in table[c].astype(object)] for c in table.columns}, dtype=object)


def _assert_same_ranking(ranked: pd.DataFrame, reference: pd.DataFrame) -> None:
    expected = reference.copy()
    expected["pareto_rank"] = expected["pareto_rank"].clip(upper=EXACT_FRONTS + 1)  # deeper fronts: "6 or deeper"
    assert list(ranked.columns) == list(expected.columns)
    assert ranked["input_row"].tolist() == expected["input_row"].tolist()  # the global order
    pd.testing.assert_frame_equal(_comparable(ranked), _comparable(expected))


def test_rank_on_a_local_cluster_equals_one_process(tmp_path, dataset, client, reference) -> None:
    out = tmp_path / "ranked"
    result = rank_dataset(dataset[0], out, client=client, rows_per_partition=400)
    assert result.n_parts == 8  # whole row groups up to 400 rows: 731 -> 300, 300, 131; 14; 655 -> 300, 355; 1; 59
    parts = sorted(p.name for p in out.iterdir())
    assert parts == [f"part-{i:05d}.parquet" for i in range(8)]  # no staging left behind
    _assert_same_ranking(read_ranking(out), reference)
    counts = reference["status"].value_counts().to_dict()
    assert result.counts == counts and counts["invalid"] >= 6 * 4  # bad rows are rows, not failed partitions
    assert (reference["reason"].str.startswith("duplicate of row").sum()) > 0  # duplicates across partitions too


def test_serial_run_and_the_cli_write_the_same_dataset(tmp_path, dataset, reference) -> None:
    out = tmp_path / "ranked"
    code = main(["rank", f"{dataset[0]}/*.parquet", "-o", str(out), "--partition-rows", "700", "-q"])
    assert code == 0
    _assert_same_ranking(read_ranking(out), reference)
    top = tmp_path / "top.csv"
    assert main(["rank", str(dataset[0]), "-o", str(top), "--top", "25", "--no-explain", "-q"]) == 0
    assert pd.read_csv(top)["input_row"].tolist() == reference["input_row"].head(25).tolist()


def test_predict_and_featurize_datasets_equal_one_table(tmp_path, dataset, client, capsys, monkeypatch) -> None:
    folder, table = dataset
    import dask.dataframe as dd

    from sse_screen.screening import distributed

    expected = predict_table(table, load_models())
    frame = dd.from_pandas(table, npartitions=3)  # the Python API takes a dask.dataframe too
    map_dataset("predict", frame, tmp_path / "predicted", client=client, rows_per_partition=500)
    pd.testing.assert_frame_equal(_comparable(pd.read_parquet(tmp_path / "predicted")), _comparable(expected))
    monkeypatch.setattr(distributed, "AUTO_CLUSTER_ROWS", 1000)  # "large": a local cluster sized to the machine
    assert main(["featurize", str(folder), "-o", str(tmp_path / "features")]) == 0
    said = capsys.readouterr().err
    assert f"running on a local Dask cluster of {os.cpu_count()} worker processes (1,460 rows > 1,000" in said
    assert "dashboard: http://" in said
    features = pd.read_parquet(tmp_path / "features")
    pd.testing.assert_frame_equal(_comparable(features), _comparable(featurize_table(table)))


def test_a_worker_killed_mid_run_loses_and_duplicates_no_row(tmp_path, dataset, client, reference) -> None:
    out = tmp_path / "ranked"
    done: dict = {}

    def run() -> None:
        try:
            done["result"] = rank_dataset(dataset[0], out, client=client, rows_per_partition=150, options=NO_EXPLAIN)
        except BaseException as exc:  # surfaced by the assertion below
            done["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    staging = out / "_staging"
    deadline = time.monotonic() + 120
    while not (staging.exists() and any(staging.iterdir())) and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # pass B has written its first part: partitions are running on both workers
    victim = next(iter(client.run(os.getpid).values()))
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    assert "error" not in done, done.get("error")
    assert done["result"].n_parts == len(list(out.glob("part-*.parquet")))
    ranked = read_ranking(out)
    assert sorted(ranked["input_row"]) == list(range(len(dataset[1])))  # every row once
    _assert_same_ranking(ranked, reference.drop(columns=["stability_drivers", "conductivity_drivers"]))
    assert victim not in client.run(os.getpid).values()  # the worker really died and was replaced


class Fragile:
    """A real model that raises on one composition (a bug reached by one row), to show that the row, not its
    partition, fails."""

    def __init__(self, model: object, poison: str) -> None:
        self.model, self.poison = model, poison

    def predict_table(self, formulas: list[str], **kwargs: object) -> pd.DataFrame:
        if self.poison in formulas:
            raise RuntimeError(f"cannot predict {self.poison}")
        return self.model.predict_table(formulas, **kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)


def test_a_row_that_breaks_a_model_is_an_invalid_row_not_a_failed_partition(tmp_path) -> None:
    table = _table().iloc[:120].reset_index(drop=True)
    table.loc[[3, 50, 51, 110], "formula"] = ["Li3PS4", "Li6P2S8", "Li3PS4", "Li3PS4"]  # one composition
    folder = tmp_path / "candidates"
    folder.mkdir()
    table.iloc[:60].to_parquet(folder / "a.parquet")
    table.iloc[60:].to_parquet(folder / "b.parquet")
    models = load_models()
    fragile = {**models, "band_gap": Fragile(models["band_gap"], "Li3PS4")}  # the canonical formula asked
    rank_dataset(folder, tmp_path / "ranked", models=fragile, options=NO_EXPLAIN)
    ranked = read_ranking(tmp_path / "ranked").set_index("input_row").sort_index()
    assert ranked.index.tolist() == list(range(len(table)))  # one row per input row
    poison = table["formula"].isin(["Li3PS4", "Li6P2S8"]).to_numpy()  # every row of the composition
    assert poison.sum() >= 4
    assert (ranked.loc[poison, "status"] == "invalid").all()
    assert ranked.loc[poison, "reason"].str.contains("internal error on this row: RuntimeError: cannot predict").all()
    expected = predict_table(table, models)
    good = ~poison & (ranked["status"] == "ranked").to_numpy()
    assert good.sum() > 40
    np.testing.assert_array_equal(ranked.loc[good, "band_gap_ev"], expected.loc[good, "band_gap_ev"])
    map_dataset("predict", folder, tmp_path / "predicted", models=fragile)
    predicted = pd.read_parquet(tmp_path / "predicted")
    assert len(predicted) == len(table)
    assert predicted.loc[poison, "error"].str.startswith("internal error on this row: RuntimeError").all()
    fine = ~poison & (expected["error"] == "").to_numpy()
    np.testing.assert_array_equal(predicted.loc[fine, "band_gap_ev"], expected.loc[fine, "band_gap_ev"])


def test_cli_errors_are_one_line(tmp_path, dataset, capsys, monkeypatch) -> None:
    from conftest import free_port

    from sse_screen.screening import distributed

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT_S", 2)  # nothing listens there: no need to wait 10 s

    folder = str(dataset[0])
    assert main(["rank", folder, "-o", str(tmp_path / "r"), "--workers", "0"]) == 2
    assert main(["rank", folder, "-o", str(tmp_path / "r"), "--top", "5"]) == 2
    assert main(["featurize", str(tmp_path / "none*.parquet"), "-o", str(tmp_path / "f")]) == 2
    dead = f"tcp://127.0.0.1:{free_port()}"
    assert main(["predict", folder, "-o", str(tmp_path / "p"), "--scheduler", dead]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(lines) == 4, lines
    assert "--workers takes a number of worker processes >= 1" in lines[0]
    assert "--top writes one file" in lines[1]
    assert "matches no Parquet file" in lines[2]
    assert f"cannot reach the Dask scheduler at {dead}" in lines[3]
