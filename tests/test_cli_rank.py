"""`sse-screen rank` as a chemist runs it: real files, the shipped models, outputs, ordering and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "candidates.csv"


#: A list with every kind of row (1-based rows as in the file): 1 ranked, 2 invalid, 3 no Li, 4 ranked, 5 duplicate
#: of row 4, 6 empty, 7 toxic Pb, 8-9 ranked, 10 no Li.
MIXED = (
    "formula,name\nLi6PS5Cl,argyrodite\nXx2,unknown element\nNaCl,rock salt\nLi3PS4,beta\nLi6P2S8,same as row 4\n"
    ",empty\nLi2PbO3,lead\nLi7La3Zr2O12,LLZO\nLi10GeP2S12,LGPS\nNa3PS4,sodium\n"
)
#: Wide enough that no printed row wraps, so each row is one line.
WIDE = {"COLUMNS": "220"}


def rank(*args: str | Path, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sse_screen.screening.cli", "rank", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def printed_rows(stdout: str) -> list[list[str]]:
    """The body rows of the printed table, split on runs of spaces (formulas and numbers have none)."""
    rows = []
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if any(c == "ranked" or c.startswith(("rejected: ", "invalid: ")) for c in cells):
            rows.append(cells)
    return rows


def assert_clean_run(run: subprocess.CompletedProcess[str]) -> None:
    """Exit 0 and nothing on stderr but our own summary line: no traceback, no library warning."""
    assert run.returncode == 0, run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert "Warning" not in run.stderr and "warn" not in run.stderr.lower(), run.stderr


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
    # messages count rows from 1 like the file; duplicate_of is the input_row (0-based) of the first copy
    assert table["status"].tolist()[1] == "rejected" and table["reason"].tolist()[1].startswith("duplicate of row 1 ")
    assert int(table["duplicate_of"].tolist()[1]) == table["input_row"].tolist()[0] == 0
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


def test_printed_table_with_rejected_and_invalid_rows(tmp_path: Path) -> None:
    """The issue's reproduction: printing a table with a non-ranked row crashed on pd.NA (exit 1)."""
    src = tmp_path / "short.csv"
    src.write_text("formula\nLi6PS5Cl\nXx2\nNaCl\n")
    run = rank(src, env=WIDE)
    assert_clean_run(run)
    rows = printed_rows(run.stdout)
    assert rows[0][:2] == ["1", "Li6PS5Cl"] and rows[0][-1] == "ranked" and rows[1][0] == "NaCl"
    assert rows[1][-1] == "rejected: contains no Li (mobile ion)"
    assert rows[2] == ["Xx2", "invalid: unknown element symbol 'Xx'"]  # no predictions: empty cells, not nan
    assert "sse-screen ranking of short.csv" in run.stdout and "not shown" not in run.stdout
    assert run.stderr.strip() == "1 ranked, 1 rejected, 1 invalid"


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "rank.toml"
    config.write_text('[rank]\nmobile_ion = "Na"\nmode = "optimistic"\n[rank.weights]\ncost = 0\n')
    return config


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--top", "30"], ["5 more rows not shown (1 rejected, 4 invalid): --top 35 prints them all"]),
        (["--top", "50", "-q"], ["rejected: duplicate of row 4 (same composition)", "invalid: empty formula"]),
        (["--mobile-ion", "Na"], ["rejected: contains no Na (mobile ion)"]),
        (["--mode", "pessimistic", "--weight", "cost=0", "--weight", "band_gap=2", "--order-by", "pareto",
          "--no-explain"], ["rejected: contains Pb (toxic, excluded)"]),
        (["--max-e-hull", "0.05", "--min-band-gap", "1", "--max-cost", "1000"], ["above the limit 0.05 eV/atom"]),
        (["--config", "CONFIG"], ["rejected: contains no Na (mobile ion)"]),
    ],
    ids=["top-30-example", "top-50-quiet", "mobile-ion-na", "mode-weights-pareto", "limits", "config"],
)  # fmt: skip
def test_every_rank_option_through_the_printed_table(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    src = tmp_path / "mixed.csv"
    src.write_text(MIXED)
    source = EXAMPLE if args[:2] == ["--top", "30"] else src
    n_rows = len(pd.read_csv(source, keep_default_na=False))
    args = [str(_config(tmp_path)) if a == "CONFIG" else a for a in args]
    run = rank(source, *args, env=WIDE)
    assert_clean_run(run)
    rows = printed_rows(run.stdout)
    top = int(args[args.index("--top") + 1]) if "--top" in args else 20
    assert len(rows) == min(top, n_rows)
    ranked = [r for r in rows if r[0].isdigit()]
    assert [int(r[0]) for r in ranked] == list(range(1, len(ranked) + 1)) and rows[: len(ranked)] == ranked
    for row in rows[len(ranked) :]:  # every row that is not ranked says why
        assert row[-1].split(": ", 1)[0] in {"rejected", "invalid"} and row[-1].split(": ", 1)[1]
    text = " ".join(run.stdout.split())
    for phrase in expected:
        assert phrase in text
    if "-q" in args:
        assert run.stderr == ""
    if "--order-by" in args:
        fronts = [int(r[3]) for r in ranked]  # rank, formula, score, front, ...
        assert fronts == sorted(fronts)
    if "Na" in args or "--config" in args:
        assert {"NaCl", "Na3PS4"} <= {r[1] for r in ranked}


def test_predict_and_rank_on_a_list_with_bad_rows_print_no_library_warning(tmp_path: Path) -> None:
    src = tmp_path / "mixed.txt"
    src.write_text("formula\n" + "\n".join(line.split(",")[0] for line in MIXED.splitlines()[1:]) + "\n")
    run = subprocess.run(
        [sys.executable, "-m", "sse_screen.screening.cli", "predict", src, "-o", tmp_path / "p.csv"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert_clean_run(run)
    table = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert len(table) == 10 and table["formula"].iloc[0] == "Li6PS5Cl"  # the header line is not a candidate
    html = tmp_path / "r.html"
    run = rank(src, "-o", html)
    assert_clean_run(run)
    assert "<h1>sse-screen ranking of mixed.txt</h1>" in html.read_text()


def test_top_must_be_positive() -> None:
    run = rank(EXAMPLE, "--top", "0")
    assert run.returncode == 2 and "--top takes a number of rows >= 1" in run.stderr
