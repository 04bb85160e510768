"""`sse-screen featurize` end to end, as a user runs it: a real process, real files, exit codes, stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "candidates.csv"


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sse_screen.screening.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_example_file_one_row_per_input_row_in_order(tmp_path: Path) -> None:
    out = tmp_path / "features.csv"
    result = run_cli("featurize", EXAMPLE, "-o", out)
    assert result.returncode == 0, result.stderr
    source = pd.read_csv(EXAMPLE, keep_default_na=False, dtype=str)
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == len(source)
    assert table["formula"].tolist() == source["formula"].str.strip().tolist()
    assert table["name"].tolist() == source["name"].tolist()
    assert list(table.columns[:3]) == ["formula", "name", "family"] and table.columns[-1] == "error"
    errors = dict(zip(table["formula"], table["error"], strict=True))
    assert errors["Li2Xx3"] == "unknown element symbol 'Xx'"
    assert errors["Li0S"].startswith("amount of Li is zero")  # then a hint: did you mean O?
    assert "closing bracket" in errors["Li3PS4)"]
    assert errors[""] == "empty formula"
    assert errors["NaN"] == ""  # sodium nitride, not a missing value
    good = table[table["error"] == ""]
    assert len(good) == len(table) - 4
    assert np.isfinite(good["MagpieData mean Electronegativity"].astype(float)).all()
    assert good.loc[good["formula"] == "Li3N", "Li atomic fraction"].astype(float).tolist() == [0.75]
    assert "4 rows have an error" in result.stderr


def test_txt_input_parquet_output_and_magpie_preset(tmp_path: Path) -> None:
    src = tmp_path / "c.txt"
    src.write_text("Li7La3Zr2O12\nLi3YCl6\n")
    out = tmp_path / "f.parquet"
    result = run_cli("featurize", src, "-o", out, "--preset", "magpie", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    table = pd.read_parquet(out)
    assert table.shape == (2, 1 + 132 + 1)
    assert table["MagpieData maximum Number"].tolist() == [57.0, 39.0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary", "binary file"),
        ("formula\nLi2S\n\xc5\n".encode("latin-1"), "not UTF-8"),
        (b"comp\nLi2S\n", "no 'formula' column"),
    ],
)
def test_unreadable_files_exit_2_with_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    result = run_cli("featurize", src, "-o", tmp_path / "out.csv")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.csv").exists()


def test_bad_output_suffix_and_missing_input_exit_2(tmp_path: Path) -> None:
    result = run_cli("featurize", EXAMPLE, "-o", tmp_path / "out.xlsx")
    assert result.returncode == 2 and "unsupported output type" in result.stderr
    result = run_cli("featurize", tmp_path / "missing.csv", "-o", tmp_path / "out.csv")
    assert result.returncode == 2 and "no such file" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["rank", "--help"], ["featurize", "--help"], ["predict", "--help"]])
def test_help_is_fast_and_lists_featurize(args: list[str]) -> None:
    """--help imports no heavy library (they load inside the commands); measured with python -X importtime."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sse_screen.screening.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0 and "usage: sse-screen" in result.stdout
    assert "featurize" in result.stdout or args != ["--help"]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()[1:]}
    heavy = {"pandas", "numpy", "pymatgen", "xgboost", "mlflow", "sklearn", "matplotlib", "rich", "fastapi", "scipy"}
    assert not imported & heavy


def test_featurize_on_bad_rows_prints_no_library_warning(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("formula\nLi6PS5Cl\nXx2\n\nLi0S\nLi3PS4)\nNaN\n")
    result = run_cli("featurize", src, "-o", tmp_path / "f.csv")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "featurized 2 of 6 rows into " + str(tmp_path / "f.csv") + "; 4 rows have an error (see the 'error' column)"
    ]
