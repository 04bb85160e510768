"""Candidates as CIFs: a folder, a zip or a cif_path column; bad CIFs are per-row errors, the rest predicted."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest

from sse_screen.features.datasets import data_dir
from sse_screen.features.structure import read_cif
from sse_screen.screening.predict import load_models, predict_table
from sse_screen.screening.structures import structure_formula
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
    # each row names the CIF inside the zip, not a temporary file that is gone after the run
    assert table["cif_path"].tolist() == [f"{archive}:inner/{cif.name}" for cif in CIFS]
    result = predict_table(table, conductivity)
    assert (result["conductivity_model"] == "structure").all()
    assert result["formula"].tolist() == [structure_formula(read_cif(c)) for c in CIFS]  # as from a folder
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


def test_zip_member_errors_name_the_member_and_leave_no_temporary_files(tmp_path: Path, conductivity: dict) -> None:
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(CIFS[0], f"good/{CIFS[0].name}")
        zf.writestr("bad/broken.cif", "not a crystal\n")
    before = set(Path(tempfile.gettempdir()).glob("sse-screen-*"))
    result = predict_table(read_candidates(archive), conductivity)
    assert result["cif_path"].tolist() == [f"{archive}:bad/broken.cif", f"{archive}:good/{CIFS[0].name}"]
    assert result["error"].tolist() == ["CIF: mixed.zip:bad/broken.cif: not a CIF (no cell lengths or atom sites)", ""]
    assert set(Path(tempfile.gettempdir()).glob("sse-screen-*")) <= before


def test_formula_from_a_cif_is_the_composition_per_formula_unit() -> None:
    """Partial occupancies: divided by Z (gcd of the whole amounts), not the raw cell (Li24.19992Si0.2P3.8S20Br4)."""
    from sse_screen.features.canonical import canonical_keys

    cifs = {p.stem: p for p in (data_dir() / "obelix" / "randomized_cifs").glob("*.cif")}
    expected = {
        "09w": "Li6.04998Si0.05P0.95S5Br",  # cell Li24.19992Si0.2P3.8S20Br4, Z = 4
        "122": "Li6PS5Cl",  # ordered cell Li24P4S20Cl4
        "13q": "Li10SnP2S12",  # pymatgen's reduced formula, without its brackets (Li10Sn(PS6)2)
        "4ie": "Li5.91La3Zr2Ga0.57O11.796F0.204",  # cell Li47.28La24Zr16Ga4.56O94.368F1.632, Z = 8
    }
    for stem, formula in expected.items():
        structure = read_cif(cifs[stem])
        assert structure_formula(structure) == formula
        # the same composition as the structure's, by the one canonical key
        assert canonical_keys([formula])[0] == canonical_keys([structure.composition])[0]
