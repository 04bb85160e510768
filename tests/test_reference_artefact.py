"""The reference phases travel inside the stability bundle: artefact round trip, hashes, errors, no data/ at predict."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sse_screen.features.reference_hull import ReferenceHull
from sse_screen.features.reference_phases import ReferencePhases
from sse_screen.models.persistence import BundleError, load_bundle, sha256_file

ROOT = Path(__file__).resolve().parents[1]
LI_P_S = pd.DataFrame(
    {
        "formula": ["Li2S", "Li4S2", "P2S5", "Li3PS4", "Li7P3S11", "LiS3", "Li", "O2", "Li2O"],
        "target": [-1.5, -1.2, -0.4, -0.9, -0.8, 0.2, 0.1, 0.0, -2.0],
    }
)
QUERIES = ["Li3PS4", "Li6PS5Cl", "Li10GeP2S12", "Li2S", "LiPS", "Li2O2", "O", "Li3P0.5S4"]


def test_artefact_round_trip_is_compact_and_answers_the_same() -> None:
    phases = ReferencePhases.from_formulas(LI_P_S["formula"], LI_P_S["target"])
    assert len(phases) == 6  # Li4S2 is Li2S (higher polymorph dropped); elements dropped
    data = phases.to_bytes()
    again = ReferencePhases.from_bytes(data)
    assert again.keys == phases.keys and again.all_names() == phases.all_names()
    np.testing.assert_array_equal(again.energy_ev_per_atom, phases.energy_ev_per_atom)
    direct = ReferenceHull(LI_P_S["formula"].tolist(), LI_P_S["target"].to_numpy())
    for leave_self_out in (True, False):
        pd.testing.assert_frame_equal(
            ReferenceHull.from_phases(again).features(QUERIES, leave_self_out=leave_self_out),
            direct.features(QUERIES, leave_self_out=leave_self_out),
        )


def test_artefact_of_another_format_version_is_refused() -> None:
    phases = ReferencePhases.from_formulas(["Li2S"], [-1.5])
    with np.load(io.BytesIO(phases.to_bytes())) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["format_version"] = np.array(99)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with pytest.raises(ValueError, match="format version 99"):
        ReferencePhases.from_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="not a reference-phases artefact"):
        ReferencePhases.from_bytes(b"not an npz")


@pytest.fixture(scope="module")
def stability_bundle(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A tiny stability model trained here (training reads data/), saved as a bundle, and its predictions."""
    from sse_screen.features.datasets import load_mp_e_hull
    from sse_screen.models.property_model import PropertyModel

    train = load_mp_e_hull("train")
    train = train[train["reduced_formula"].str.contains("Li")].sample(150, random_state=0)
    model = PropertyModel(task="stability", n_estimators=5, n_folds=2, max_depth=3, n_jobs=1)
    model.fit(train["reduced_formula"], train["e_hull_ev_per_atom"])
    path = model.save(
        tmp_path_factory.mktemp("bundle") / "stability", metadata={"training_data_sha256": "0" * 64, "metrics": {}}
    )
    return path, model.predict_table(QUERIES)


def test_saved_bundle_records_the_artefact_and_predicts_without_data(stability_bundle, monkeypatch) -> None:
    import sse_screen.features.datasets as datasets
    import sse_screen.models.reference as reference
    from sse_screen.models.property_model import PropertyModel

    path, expected = stability_bundle
    entry = json.loads((path / "metadata.json").read_text())["files"]["reference_phases"]
    assert entry["file"] == "reference_phases.npz" and entry["sha256"] == sha256_file(path / entry["file"])
    assert entry["format_version"] == 1 and entry["n_phases"] > 80_000
    assert entry["source_sha256"] == sha256_file(ROOT / "data" / "mp_e_form" / "mp_e_form.csv")
    assert (path / entry["file"]).stat().st_size < 5e6

    def no_data(*args, **kwargs):
        raise AssertionError("data/ read at prediction time")

    monkeypatch.setattr(datasets, "data_dir", no_data)
    monkeypatch.setattr(reference, "_source_csv", no_data)
    monkeypatch.setattr(reference, "training_reference_hull", no_data)
    monkeypatch.setattr(reference, "_HULLS", {})
    pd.testing.assert_frame_equal(PropertyModel.load(path).predict_table(QUERIES), expected)


def test_bundle_without_artefact_says_how_to_add_it(stability_bundle, tmp_path: Path) -> None:
    import shutil

    from sse_screen.models.property_model import PropertyModel, load_property_model
    from sse_screen.models.registry import ModelNotFoundError

    source, expected = stability_bundle
    path = Path(shutil.copytree(source, tmp_path / "stability"))
    meta = json.loads((path / "metadata.json").read_text())
    del meta["files"]
    (path / "metadata.json").write_text(json.dumps(meta))
    (path / "reference_phases.npz").unlink()
    with pytest.raises(BundleError, match=r"no reference phases .* python -m sse_screen\.models\.reference --add-to "):
        PropertyModel.load(path)
    with pytest.raises(ModelNotFoundError):  # what the CLI and the API report as a user error, not a crash
        PropertyModel.load(path)
    with pytest.raises(BundleError, match=r"--add-to .*stability"):  # the path, when the loader knows it
        load_property_model("stability", model_uri=str(path))
    # the command adds it back, and the model predicts as before
    done = subprocess.run(
        [sys.executable, "-m", "sse_screen.models.reference", "--add-to", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "phases" in done.stdout and "sha256" in done.stdout
    pd.testing.assert_frame_equal(PropertyModel.load(path).predict_table(QUERIES), expected)


def test_changed_artefact_fails_its_hash(stability_bundle, tmp_path: Path) -> None:
    import shutil

    path = Path(shutil.copytree(stability_bundle[0], tmp_path / "stability"))
    data = bytearray((path / "reference_phases.npz").read_bytes())
    data[-10] ^= 0xFF
    (path / "reference_phases.npz").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        load_bundle(path)


def test_add_to_a_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sse_screen.models.reference", "--add-to", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "metadata.json is missing" in done.stderr and "Traceback" not in done.stderr
