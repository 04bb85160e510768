"""Candidate generation: the moves a chemist makes, charge compensated, checked, deduplicated; and the CLI around it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sse_screen.features.canonical import canonical_keys
from sse_screen.features.formula import parse_formula
from sse_screen.screening.checks import DEFAULT_EXCLUSIONS, run_checks
from sse_screen.screening.generate import DEFAULT_MAX_PER_PARENT, GENERATED_COLUMNS, generate_candidates
from sse_screen.screening.oxidation import OxidationError, assign_oxidation_states
from sse_screen.screening.substitution import PROBABILITY_SOURCE, closed_shell, replacements

ROOT = Path(__file__).resolve().parents[1]
PARENTS = ["Li7La3Zr2O12", "Li6PS5Cl", "Li3YCl6", "LiTi2(PO4)3", "Li3PS4"]


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return generate_candidates(PARENTS)


def _row(table: pd.DataFrame, formula: str) -> pd.Series:
    key = canonical_keys([formula])[0]
    hit = table[canonical_keys(table["formula"]) == key]
    assert len(hit) == 1, f"{formula} not generated once"
    return hit.iloc[0]


def test_parent_oxidation_states_come_from_the_charge_balance_solver() -> None:
    assert assign_oxidation_states(parse_formula("Li7La3Zr2O12")) == {"Li": 1, "La": 3, "Zr": 4, "O": -2}
    assert assign_oxidation_states(parse_formula("Li6PS5Cl")) == {"Li": 1, "P": 5, "S": -2, "Cl": -1}
    assert assign_oxidation_states(parse_formula("LiBH4")) == {"Li": 1, "B": 3, "H": -1}
    with pytest.raises(OxidationError, match="no neutral assignment"):
        assign_oxidation_states(parse_formula("LiPO4"))


def test_the_chemists_moves_with_charge_compensation(generated: pd.DataFrame) -> None:
    generated = generate_candidates(["Li7La3Zr2O12", "Li6PS5Cl", "Li3YCl6"], dopants=["Ta", "Al", "Zr", "Br", "Cl"])
    ta = _row(generated, "Li6.5La3Zr1.5Ta0.5O12")  # Ta5+ on Zr4+ at x = 0.5: Li(7-x)
    assert ta["move"] == "Ta on Zr, x=0.5, Li compensates"
    assert ta["dopant_fraction"] == 0.25 and ta["compensation"] == "Li" and ta["dopant_state"] == 5
    al = _row(generated, "Li5.95Al0.35La3Zr2O12")  # Al3+ on Li+: Li(7-3x)Al(x)
    assert al["move"] == "Al on Li, x=0.35, Li compensates"
    cl = _row(generated, "Li5.5PS4.5Cl1.5")  # Cl- on S2-: Li(6-x)PS(5-x)Cl(1+x)
    assert cl["move"] == "Cl on S, x=0.5, Li compensates"
    br = _row(generated, "Li6PS5Cl0.5Br0.5")  # a mixed-halide solid solution
    assert br["move"] == "Br on Cl, x=0.5, solid solution" and br["compensation"] == "none"
    assert "OBELiX" in br["known_as"] and "log10 sigma" in br["known_as"]  # measured: the bundled data says so
    zr = _row(generated, "Li2.5Y0.5Zr0.5Cl6")  # Zr4+ on Y3+, a known halide electrolyte
    assert zr["move"] == "Zr on Y, x=0.5, Li compensates"
    assert set(generated["dopant"]) <= {"", "Ta", "Al", "Zr", "Br", "Cl"}


def test_every_candidate_passes_the_checks_and_is_distinct(generated: pd.DataFrame) -> None:
    assert list(generated.columns) == list(GENERATED_COLUMNS)
    assert generated.attrs["failed_checks"] == 0
    checks = run_checks(generated["formula"])
    assert (checks["status"] == "ok").all(), generated["formula"][checks["status"] != "ok"].tolist()[:5]
    assert not checks["warnings"].str.contains("not charge balanced").any()
    assert checks["composition_key"].is_unique
    assert (generated["parent_error"] == "").all()
    assert generated["parent"].drop_duplicates().tolist() == PARENTS  # grouped by parent, in input order
    variants = generated[generated["move"] != "parent"]
    assert len(variants) > 500 and variants["dopant_fraction"].between(0, 1, inclusive="right").all()
    assert (variants["probability_source"] == PROBABILITY_SOURCE).all()
    assert variants["substitution_probability"].between(0, 1).all() and variants["plausibility"].gt(0).all()
    for _, part in variants.groupby("parent", sort=False):  # single moves, then co-doped ones, by plausibility
        codoped = part["codopant"] != ""
        assert codoped.is_monotonic_increasing and codoped.any() and not codoped.all()
        assert part.loc[~codoped, "plausibility"].is_monotonic_decreasing
        assert part.loc[codoped, "plausibility"].is_monotonic_decreasing
    assert len(variants) <= 5 * DEFAULT_MAX_PER_PARENT
    assert not variants["formula"].str.contains("Pb|Cd|Tl|Hg|Pu|Th|U[0-9A-Z]").any()  # default exclusions


def test_codoping_two_moves_with_one_joint_compensation() -> None:
    out = generate_candidates(["Li7La3Zr2O12", "LiTi2(PO4)3"], dopants=["Al", "Ta", "Ge"], max_per_parent=None)
    pair = _row(out, "Li6.54Al0.07La3Zr1.75Ta0.25O12")  # Al3+ on Li+ (-3 Li each) + Ta5+ on Zr4+ (-1 Li each)
    assert pair["move"] == "Ta on Zr, x=0.25 + Al on Li, x=0.07, Li compensates"
    assert (pair["site"], pair["dopant"], pair["dopant_state"], pair["dopant_fraction"]) == ("Zr", "Ta", 5, 0.125)
    assert (pair["codopant_site"], pair["codopant"], pair["codopant_state"], pair["codopant_fraction"]) == (
        "Li", "Al", 3, 0.01,
    )  # fmt: skip
    single = out[(out["codopant"] == "") & (out["move"] != "parent")].groupby(["site", "dopant"])["plausibility"]
    assert pair["plausibility"] == pytest.approx(single.first()[("Zr", "Ta")] * single.first()[("Li", "Al")])
    lagp = _row(out, "Li1.5Ge1.5Al0.5(PO4)3")  # one site shared: Ge on 3/4 of the Ti sites, Al on the rest
    assert lagp["move"] == "Ge on Ti, x=1.5 + Al on Ti, x=0.5, Li compensates"
    zero = _row(out, "LiAl0.25Ta0.25Ti1.5(PO4)3")  # Al3+ and Ta5+ on Ti4+ cancel: no compensation
    assert zero["move"] == "Al on Ti, x=0.25 + Ta on Ti, x=0.25, co-dopants compensate each other"
    assert zero["compensation"] == "none"
    codoped = out[out["codopant"] != ""]
    assert len(codoped) > 100 and (codoped["dopant"] != codoped["codopant"]).all()
    # charge balance by construction: the parent's states, each dopant's state, the mobile ion's +1 sum to zero
    parent_states = {"Li": 1, "La": 3, "Zr": 4, "O": -2, "Ti": 4, "P": 5, "Al": 3, "Ta": 5, "Ge": 4}
    for formula in codoped["formula"]:
        amounts = parse_formula(formula)
        assert sum(parent_states[el] * a for el, a in amounts.items()) == pytest.approx(0.0, abs=1e-6), formula
    checks = run_checks(codoped["formula"])
    assert (checks["status"] == "ok").all() and out.attrs["failed_checks"] == 0
    capped = generate_candidates(["Li7La3Zr2O12"], dopants=["Al", "Ta", "Ge"], max_per_parent=30)
    assert len(capped[capped["move"] != "parent"]) == 30
    assert (capped["codopant"] == "").all()  # the budget goes to the single moves first
    alone = generate_candidates(["Li7La3Zr2O12"], dopants=["Al", "Ta"], codoping=False)
    assert (alone["codopant"] == "").all() and alone["codopant_fraction"].isna().all()


def test_plausibility_prefers_closed_shell_ions_of_the_right_size() -> None:
    assert closed_shell("Ta", 5) and closed_shell("Ga", 3) and closed_shell("Zn", 2) and closed_shell("La", 3)
    assert not closed_shell("Fe", 3) and not closed_shell("Cr", 3)
    forbidden = {"Li", "La", "Zr", "O", *DEFAULT_EXCLUSIONS}
    on_zr = [r.symbol for r in replacements("Zr", 4, forbidden=forbidden, per_site=10)]
    assert {"Hf", "Sn", "Ti", "Ta", "Nb"} <= set(on_zr) and "Fe" not in on_zr
    on_ti = [r.symbol for r in replacements("Ti", 4, forbidden={"Li", "Ti", "P", "O", *DEFAULT_EXCLUSIONS}, per_site=5)]
    assert {"Ta", "Nb"} <= set(on_ti)
    halides = [r.symbol for r in replacements("Cl", -1, forbidden={"Li", "Y", "Cl"}, per_site=1)]
    assert {"Br", "I", "F"} <= set(halides)  # solid-solution anions always come along


def test_bad_parents_are_rows_with_a_reason_never_an_exception() -> None:
    out = generate_candidates(["Xx2O", "NaCl", "Li2PbO3", "LiPO4", "", None, "Li3PS4"])
    errors = out.loc[out["parent_error"] != "", ["formula", "parent_error"]]
    assert errors["parent_error"].tolist() == [
        "cannot use parent 'Xx2O': unknown element symbol 'Xx' (input: 'Xx2O')",
        "parent 'NaCl' contains no Li (mobile ion)",
        "parent 'Li2PbO3' contains excluded elements: Pb (toxic)",
        "parent 'LiPO4': no neutral assignment of oxidation states with the common anion states (O-2, S-2, N-3, "
        "halide -1)",
        "empty parent formula",
        "parent is not a formula",
    ]
    assert errors["formula"].tolist()[:4] == ["Xx2O", "NaCl", "Li2PbO3", "LiPO4"]
    assert (out.loc[out["parent_error"] == "", "parent"] == "Li3PS4").all()


def test_limits_allow_list_exclusions_fractions_and_dedupe_across_parents() -> None:
    full = generate_candidates(["Li6PS5Cl"])
    capped = generate_candidates(["Li6PS5Cl"], max_candidates=10)
    variants = capped[capped["move"] != "parent"]
    assert len(variants) == 10
    top = full[full["move"] != "parent"]["plausibility"].nlargest(10).to_numpy()
    np.testing.assert_allclose(np.sort(variants["plausibility"].to_numpy()), np.sort(top))
    no_br = generate_candidates(["Li6PS5Cl"], exclude=["Br"])
    assert not no_br["formula"].str.contains("Br").any() and len(no_br) > 100  # the list replaces the default
    grid = generate_candidates(["Li3YCl6"], fractions=[0.5], dopants=["Zr"], analogues=False)
    assert grid.loc[grid["move"] != "parent", "dopant_fraction"].unique().tolist() == [0.5]
    # a second parent that is one of the first's variants adds no repeated composition
    both = generate_candidates(["Li6PS5Cl", "Li5.5PS4.5Cl1.5"])
    assert canonical_keys(both["formula"]).tolist() == list(dict.fromkeys(canonical_keys(both["formula"])))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        generate_candidates(["Li3PS4"], fractions=[0.0, 0.2])
    with pytest.raises(ValueError, match="unknown element symbols: Xq"):
        generate_candidates(["Li3PS4"], dopants=["Xq"])


def cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sse_screen.screening.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=dict(os.environ),
    )


def test_cli_generate_writes_parquet_and_csv_from_a_list_or_a_file(tmp_path: Path) -> None:
    out = tmp_path / "candidates.parquet"
    run = cli("generate", "Li6PS5Cl,Xx2O", "-o", out, "--max-candidates", "25", "--dopants", "Br,I,Si,Ge,Cl")
    assert run.returncode == 0, run.stderr
    assert "generated 25 candidates from 1 parents" in run.stderr
    assert "parent not used: cannot use parent 'Xx2O': unknown element symbol 'Xx'" in run.stderr
    table = pd.read_parquet(out)
    assert list(table.columns) == list(GENERATED_COLUMNS) and len(table) == 27
    parents = tmp_path / "parents.csv"
    parents.write_text("formula,note\nLi3YCl6,halide\nLi3InCl6,halide\n")
    csv = tmp_path / "candidates.csv"
    run = cli("generate", parents, "-o", csv, "--fractions", "0.1,0.5", "--exclude", "Zr", "-q", "--no-codoping")
    assert run.returncode == 0 and run.stderr == ""
    table = pd.read_csv(csv, keep_default_na=False)
    assert set(table["parent"]) == {"Li3YCl6", "Li3InCl6"}
    framework = table[(table["site"] != "Li") & (table["move"] != "parent")]
    assert set(framework["dopant_fraction"].astype(str)) <= {"0.1", "0.5", "0.9", "1.0"}
    assert (table["codopant"] == "").all()
    assert not table["formula"].str.contains("Zr").any()


def test_cli_generate_streams_a_parquet_dataset_that_pandas_reads_as_one_table(tmp_path: Path) -> None:
    folder = tmp_path / "candidates"
    run = cli("generate", "Li3YCl6,NaCl,Li3InCl6,Li3YCl6", "-o", folder, "--max-per-parent", "300")
    assert run.returncode == 0, run.stderr
    assert "into " + str(folder) + "/ (4 Parquet parts" in run.stderr
    assert "parent not used: parent 'NaCl' contains no Li (mobile ion)" in run.stderr
    assert sorted(p.name for p in folder.iterdir()) == [f"part-{i:05d}.parquet" for i in range(4)]
    table = pd.read_parquet(folder)
    assert list(table.columns) == list(GENERATED_COLUMNS)
    assert pd.Series(
        canonical_keys(table.loc[table["parent_error"] == "", "formula"])
    ).is_unique  # deduplicated across parts
    batch = generate_candidates(["Li3YCl6", "NaCl", "Li3InCl6", "Li3YCl6"], max_per_parent=300)
    assert table["formula"].tolist() == batch["formula"].tolist()  # the same rows as one call
    assert table["move"].tolist() == batch["move"].tolist() and (table["parent"] == "Li3YCl6").sum() == 301
    again = cli("generate", "Li3PS4", "-o", folder)
    assert again.returncode == 2 and "already holds Parquet parts" in again.stderr
    ranked = cli("rank", folder, "-o", tmp_path / "ranked", "--no-explain")  # the dataset path of rank, as it is
    assert ranked.returncode == 0, ranked.stderr
    out = pd.read_parquet(tmp_path / "ranked")
    assert len(out) == len(table) and {"move", "codopant", "status"} <= set(out.columns)
    assert (out.loc[out["parent"] == "NaCl", "status"] == "rejected").all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fractions", "0.1,x"], "--fractions takes numbers separated by commas"),
        (["--fractions", "0.1,1.5"], "fractions must lie strictly between 0 and 1"),
        (["--dopants", "Ta,Qq"], "unknown element symbols: Qq"),
    ],
)
def test_cli_generate_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    run = cli("generate", "Li3PS4", "-o", tmp_path / "c.csv", *args)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"sse-screen generate: error: {run.stderr.split('error: ')[1].strip()}"]
    assert message in run.stderr


def test_cli_rank_generate_carries_the_generated_columns(tmp_path: Path) -> None:
    out = tmp_path / "ranked.csv"
    run = cli("rank", "--generate", "Li6PS5Cl,NaCl", "--generate-max-candidates", "12", "--no-explain", "-o", out)
    assert run.returncode == 0, run.stderr
    ranked = pd.read_csv(out, keep_default_na=False)
    assert {"move", "parent", "dopant_fraction", "substitution_probability", "known_as"} <= set(ranked.columns)
    assert (ranked["status"] == "ranked").sum() == 13  # the parent and its 12 most plausible variants
    bad = ranked[ranked["parent"] == "NaCl"].iloc[0]
    assert bad["status"] == "rejected" and bad["reason"] == "contains no Li (mobile ion)"
    assert bad["parent_error"] == "parent 'NaCl' contains no Li (mobile ion)"
    both = cli("rank", str(ROOT / "examples" / "candidates.csv"), "--generate", "Li3PS4")
    assert both.returncode == 2 and "either an INPUT file or --generate PARENTS" in both.stderr


def test_cif_parents_give_disordered_structures_that_rank_reads(tmp_path: Path) -> None:
    from sse_screen.features.canonical import canonical_key
    from sse_screen.features.structure import read_cif
    from sse_screen.screening.structures import read_structures

    cif = ROOT / "data" / "obelix" / "randomized_cifs" / "ei3.cif"  # Li3YCl6
    out = generate_candidates(
        [str(cif), "Li3PS4", str(tmp_path / "missing.cif")], dopants=["Zr", "Br"], cif_dir=tmp_path
    )
    assert out.loc[out["move"] == "parent", "cif_path"].tolist() == [str(cif.resolve()), ""]
    assert "missing.cif: file not found" in out["parent_error"].iloc[-1]
    zr = _row(out, "Li2.5Y0.5Zr0.5Cl6")
    structure = read_cif(zr["cif_path"])
    assert canonical_key(structure.composition.get_el_amt_dict()) == canonical_keys(["Li2.5Y0.5Zr0.5Cl6"])[0]
    mixed = [s.species.get_el_amt_dict() for s in structure if not s.is_ordered]
    assert {"Y": 0.5, "Zr": 0.5} in mixed  # Zr on half of every Y site
    assert (out.loc[out["parent"] == "Li3PS4", "cif_path"] == "").all()  # formula parents: no structure
    with_cif = out[out["cif_path"] != ""]
    assert len(with_cif) > 10 and with_cif["cif_path"].map(lambda p: Path(p).is_file()).all()
    structures, errors, _ = read_structures(with_cif.reset_index(drop=True))
    assert errors == [None] * len(with_cif) and all(s is not None for s in structures)
