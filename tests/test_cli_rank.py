"""`sse-screen rank` as a chemist runs it: real files, the shipped models, outputs, ordering and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "candidates.csv"


def rank(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sse_screen.screening.cli", "rank", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def ranked(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("rank") / "ranked.csv"
    run = rank(EXAMPLE, "-o", out)
    assert run.returncode == 0, run.stderr
    assert "ranked" in run.stderr and "invalid" in run.stderr
    return pd.read_csv(out, keep_default_na=False)


def test_every_input_row_comes_back_with_a_status_and_reason(ranked: pd.DataFrame) -> None:
    source = pd.read_csv(EXAMPLE, keep_default_na=False, dtype=str)
    assert len(ranked) == len(source)
    assert sorted(ranked["input_row"]) == list(range(len(source)))
    back = ranked.sort_values("input_row")
    assert back["formula"].tolist() == source["formula"].tolist() and back["name"].tolist() == source["name"].tolist()
    status = dict(zip(ranked["formula"], ranked["status"], strict=True))
    reason = dict(zip(ranked["formula"], ranked["reason"], strict=True))
    for formula in ("Li2Xx3", "Li3PS4)", "Li0S", ""):
        assert status[formula] == "invalid" and reason[formula]
    for formula in ("Na3PS4", "Na3Zr2Si2PO12", "NaN"):
        assert status[formula] == "rejected" and reason[formula] == "contains no Li (mobile ion)"
    for formula in ("Li10GeP2S12", "Li6PS5Cl", "Li7La3Zr2O12", "Li1.3Al0.3Ti1.7(PO4)3", "Li6.4La3Zr1.4Ta0.6O12"):
        assert status[formula] == "ranked" and reason[formula] == ""


def test_ordering_rules(ranked: pd.DataFrame) -> None:
    order = ranked["status"].map({"ranked": 0, "rejected": 1, "invalid": 2}).tolist()
    assert order == sorted(order)  # ranked rows first, then rejected, then invalid
    ranks = ranked.loc[ranked["status"] == "ranked", "rank"].astype(int).tolist()
    assert ranks == list(range(1, len(ranks) + 1))
    scores = ranked.loc[ranked["status"] == "ranked", "score"].astype(float).tolist()
    assert scores == sorted(scores, reverse=True)
    assert (ranked.loc[ranked["status"] != "ranked", "rank"] == "").all()
    front = ranked.loc[ranked["status"] == "ranked", "pareto_rank"].astype(int)
    assert front.min() == 1
    drivers = ranked.loc[ranked["status"] == "ranked", "stability_drivers"]
    assert drivers.str.count(";").eq(2).all()  # three named features per ranked row


def test_weights_change_the_order_and_top_and_json(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    run = rank(EXAMPLE, "-o", out, "--weight", "stability=0", "--weight", "band_gap=0", "--weight", "cost=0",
               "--top", "5", "--no-explain")  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 5
    sigma = [r["log10_sigma_s_per_cm"] for r in rows]
    assert sigma == sorted(sigma, reverse=True)  # conductivity alone decides


def test_duplicates_limits_html_and_csv_neutralisation(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("formula,note\nLi3PS4,a\nLi6P2S8,same composition\n=1+1,spreadsheet formula\nLi7La3Zr2O12,b\n")
    out = tmp_path / "r.csv"
    run = rank(src, "-o", out, "--max-e-hull", "0.5")
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out, keep_default_na=False).sort_values("input_row")
    assert table["status"].tolist()[1] == "rejected" and table["reason"].tolist()[1].startswith("duplicate of row 0")
    assert table["formula"].tolist()[2] == "'=1+1" and table["status"].tolist()[2] == "invalid"
    html = tmp_path / "r.html"
    assert rank(src, "-o", html, "-q").returncode == 0
    text = html.read_text()
    assert "<svg" in text and "Li7La3Zr2O12" in text and "http://" not in text.split("<svg", 1)[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x00\x00binary", "binary"), ("formula\n\xe9\n".encode("latin-1"), "not UTF-8"),
     (b"comp\nLi2S\n", "no 'formula' column")],
)  # fmt: skip
def test_bad_files_exit_2_with_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    run = rank(src, "-o", tmp_path / "o.csv")
    assert run.returncode == 2 and message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_bad_weight_and_config_exit_2(tmp_path: Path) -> None:
    run = rank(EXAMPLE, "--weight", "colour=1")
    assert run.returncode == 2 and "Unknown objective" in run.stderr
    bad = tmp_path / "c.toml"
    bad.write_text("[rank]\nnot_an_option = 1\n")
    run = rank(EXAMPLE, "--config", bad)
    assert run.returncode == 2 and "not_an_option" in run.stderr
