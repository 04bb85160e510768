"""Candidates as CIFs: a folder, a zip or a cif_path column; bad CIFs are per-row errors, the rest predicted."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from sse_screen.features.datasets import data_dir
from sse_screen.screening.predict import load_models, predict_table
from sse_screen.screening.table_io import InputError, read_candidates

CIFS = sorted((data_dir() / "obelix" / "randomized_cifs").glob("*.cif"))[:3]


@pytest.fixture(scope="module")
def conductivity() -> dict:
    return load_models(tasks=("conductivity",))


@pytest.fixture
def cif_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cifs"
    folder.mkdir()
    for cif in CIFS:
        shutil.copy(cif, folder / cif.name)
    (folder / "zz_broken.cif").write_text("this is not a crystal structure\n")
    (folder / "notes.txt").write_text("ignored: not a .cif\n")
    return folder


def test_folder_of_cifs_predicts_good_rows_and_reports_bad_ones(cif_folder: Path, conductivity: dict) -> None:
    table = read_candidates(cif_folder)
    assert [Path(p).name for p in table["cif_path"]] == [c.name for c in CIFS] + ["zz_broken.cif"]
    result = predict_table(table, conductivity)
    assert len(result) == 4
    good, bad = result.iloc[:3], result.iloc[3]
    assert (good["error"] == "").all(), good["error"].tolist()
    assert (good["conductivity_model"] == "structure").all()
    assert good["formula"].str.contains("Li").all()  # taken from the structures
    assert good["log10_sigma_s_per_cm"].between(-20, 0).all()
    assert bad["error"].startswith("CIF: zz_broken.cif: not a CIF")
    assert bad["conductivity_model"] == "" and bad["log10_sigma_s_per_cm"] != bad["log10_sigma_s_per_cm"]  # NaN


def test_zip_of_cifs_and_unsafe_zip(tmp_path: Path, conductivity: dict) -> None:
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for cif in CIFS:
            zf.write(cif, f"inner/{cif.name}")
    table = read_candidates(archive)
    assert len(table) == 3
    assert (predict_table(table, conductivity)["conductivity_model"] == "structure").all()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.cif", "data_x\n")
    with pytest.raises(InputError, match="unsafe member name"):
        read_candidates(evil)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "no cifs")
    with pytest.raises(InputError, match=r"holds no \.cif files"):
        read_candidates(empty)


def test_cif_path_column_relative_to_the_file_mixed_with_plain_formulas(tmp_path: Path, conductivity: dict) -> None:
    shutil.copy(CIFS[0], tmp_path / "a.cif")
    src = tmp_path / "c.csv"
    src.write_text("formula,cif_path\n,a.cif\nLi3PS4,\nLi2S,missing.cif\n")
    table = read_candidates(src)
    result = predict_table(table, conductivity)
    assert result["conductivity_model"].tolist() == ["structure", "composition", ""]
    assert result.loc[2, "error"] == "CIF: missing.cif: file not found"
    assert result.loc[0, "formula"] != ""
