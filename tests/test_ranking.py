"""Ranking: score, Pareto fronts against a brute-force reference, ordering rules, duplicates, uncertainty modes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sse_screen.screening.checks import CheckConfig
from sse_screen.screening.ranking import (
    DEFAULT_OBJECTIVES,
    OUTPUT_COLUMNS,
    Objective,
    desirability,
    pareto_rank,
    rank_table,
    score,
)


def brute_force_fronts(values: np.ndarray) -> np.ndarray:
    """O(n^2) reference: peel the rows no other remaining row dominates."""
    no_worse = np.all(values[:, None, :] <= values[None, :, :], axis=2)
    better = np.any(values[:, None, :] < values[None, :, :], axis=2)
    dominates = no_worse & better  # [i, j]: i dominates j
    ranks = np.zeros(len(values), dtype=np.int64)
    remaining = np.ones(len(values), dtype=bool)
    front = 1
    while remaining.any():
        dominated = dominates[np.ix_(remaining, remaining)].any(axis=0)
        idx = np.flatnonzero(remaining)[~dominated]
        ranks[idx] = front
        remaining[idx] = False
        front += 1
    return ranks


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_pareto_rank_matches_brute_force(m: int) -> None:
    rng = np.random.default_rng(m)
    for values in (
        rng.random((400, m)),
        rng.integers(0, 5, (400, m)).astype(float),  # many ties and identical rows
        -(rng.random((300, m)) ** 3),
    ):
        np.testing.assert_array_equal(pareto_rank(values), brute_force_fronts(values))


def test_pareto_rank_infinite_values_are_worst_and_nan_is_refused() -> None:
    values = np.array([[1.0, np.inf], [2.0, 3.0], [np.inf, np.inf], [1.0, 2.0]])
    np.testing.assert_array_equal(pareto_rank(values), [2, 2, 3, 1])
    with pytest.raises(ValueError, match="NaN"):
        pareto_rank(np.array([[np.nan, 1.0]]))
    assert pareto_rank(np.zeros((0, 3))).shape == (0,)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_max_fronts_is_exact_up_to_the_cap(m: int) -> None:
    values = np.random.default_rng(7).random((2000, m))
    full = pareto_rank(values)
    capped = pareto_rank(values, max_fronts=4)
    np.testing.assert_array_equal(capped, np.minimum(full, 5))


def test_desirability_is_the_documented_logistic() -> None:
    stability = DEFAULT_OBJECTIVES[0]
    np.testing.assert_allclose(
        desirability(np.array([0.05, 0.0, 0.3]), stability), [0.5, 1 / (1 + np.exp(-2)), 0], atol=1e-4
    )
    gap = Objective(name="gap", column="band_gap_ev", maximize=True, center=2.0, scale=0.5)
    np.testing.assert_allclose(desirability(np.array([2.0, 3.0]), gap), [0.5, 1 / (1 + np.exp(-2))])


def test_score_is_weighted_geometric_mean_of_present_objectives() -> None:
    t = pd.DataFrame({"e_hull_ev_per_atom": [0.05], "band_gap_ev": [3.0]})
    d_gap = 1 / (1 + np.exp(-2))
    expected = np.exp((1.0 * np.log(0.5) + 0.5 * np.log(d_gap)) / 1.5)
    np.testing.assert_allclose(score(t), [expected])
    np.testing.assert_allclose(score(t, weights={"band_gap": 0}), [0.5])
    with pytest.raises(ValueError, match="Unknown objective"):
        score(t, weights={"beauty": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        score(t, weights={"band_gap": -1.0})


def candidates() -> pd.DataFrame:
    """Real compositions with stand-in predictions (the models' columns and units)."""
    return pd.DataFrame(
        {
            "formula": [
                "Li7La3Zr2O12",  # 0 stable, wide gap
                "Li10GeP2S12",  # 1 metastable, narrower gap
                "LiO4",  # 2 cannot be charge balanced (LiO3 is an ozonide)
                "Li3PS4",  # 3
                "Xx2O",  # 4 unknown element
                "NaCl",  # 5 no Li
                "Li6PS5Cl",  # 6
                "Li3P1S4",  # 7 duplicate of row 3
                "Li2CdCl4",  # 8 toxic
                "Li3YCl6",  # 9
            ],
            "e_hull_ev_per_atom": [0.0, 0.06, 0.4, 0.03, np.nan, 0.0, 0.02, 0.03, 0.0, 0.04],
            "e_hull_std_ev_per_atom": [0.01, 0.02, 0.1, 0.1, np.nan, 0.01, 0.01, 0.1, 0.01, 0.01],
            "band_gap_ev": [5.5, 2.6, 1.0, 3.0, np.nan, 7.0, 3.0, 3.0, 4.0, 5.0],
            "band_gap_std_ev": [0.3] * 10,
            "error": ["", "", "", "", "unknown element symbol 'Xx'", "", "", "", "", ""],
            "note": [f"row {i}" for i in range(10)],
        }
    )


def test_statuses_reasons_and_ranks() -> None:
    out = rank_table(candidates())
    assert list(out.columns[-len(OUTPUT_COLUMNS) :]) == list(OUTPUT_COLUMNS)
    assert out["note"].tolist() == [f"row {i}" for i in range(10)]  # extra columns carried through, order kept
    status = out["status"].tolist()
    assert status == ["ranked", "ranked", "rejected", "ranked", "invalid", "rejected", "ranked", "rejected",
                      "rejected", "ranked"]  # fmt: skip
    assert out.loc[4, "reason"] == "unknown element symbol 'Xx'"
    assert "cannot be charge balanced" in out.loc[2, "reason"]
    assert out.loc[5, "reason"] == "contains no Li (mobile ion)"
    assert out.loc[8, "reason"] == "contains Cd (toxic, excluded)"
    ranked = out["status"] == "ranked"
    assert (out.loc[ranked, "reason"] == "").all()
    assert sorted(out.loc[ranked, "rank"].tolist()) == list(range(1, ranked.sum() + 1))
    assert out.loc[~ranked, "rank"].isna().all() and out.loc[~ranked, "pareto_rank"].isna().all()
    assert np.isnan(out.loc[4, "score"])
    # rank follows the score, best first
    by_rank = out[ranked].sort_values("rank")
    assert by_rank["score"].is_monotonic_decreasing


def test_duplicates_are_ranked_once_and_point_to_the_first_row() -> None:
    table = candidates()
    table.index = [f"c{i}" for i in range(10)]
    out = rank_table(table)
    assert out.loc["c7", "status"] == "rejected"
    assert out.loc["c7", "reason"] == "duplicate of row c3 (same composition)"
    assert out.loc["c7", "duplicate_of"] == "c3"
    assert out["duplicate_of"].isna().sum() == 9
    assert out.loc["c7", "score"] == out.loc["c3", "score"]


def test_weights_change_the_order_as_expected() -> None:
    t = pd.DataFrame(
        {
            "formula": ["Li7La3Zr2O12", "Li10GeP2S12"],
            "e_hull_ev_per_atom": [0.0, 0.04],
            "band_gap_ev": [2.0, 5.0],
        }
    )
    stability_first = rank_table(t, weights={"stability": 5.0, "band_gap": 0.1, "cost": 0})
    gap_first = rank_table(t, weights={"stability": 0.1, "band_gap": 5.0, "cost": 0})
    assert stability_first["rank"].tolist() == [1, 2]
    assert gap_first["rank"].tolist() == [2, 1]
    assert stability_first["pareto_rank"].tolist() == [1, 1]  # a trade-off: both non-dominated


def test_conductivity_is_used_when_present_and_in_domain_is_reported() -> None:
    t = pd.DataFrame(
        {
            "formula": ["Li7La3Zr2O12", "Li10GeP2S12"],
            "e_hull_ev_per_atom": [0.0, 0.0],
            "band_gap_ev": [4.0, 4.0],
            "cost_usd_per_kg": [50.0, 50.0],
        }
    )
    assert rank_table(t)["rank"].tolist() == [1, 2]  # a tie: input order decides
    t["log10_sigma_s_per_cm"] = [-4.0, -2.0]
    t["in_domain"] = [True, False]
    out = rank_table(t)
    assert out["rank"].tolist() == [2, 1]
    assert out["warnings"][1] == "conductivity prediction outside the model's domain"
    assert out["pareto_rank"].tolist() == [2, 1]


def test_other_mobile_ion_gets_no_li_trained_conductivity() -> None:
    """With Na as the mobile ion the Li-trained conductivity must not rank: NaCl has the best (Li) sigma here."""
    from sse_screen.screening.mobile_ion import mobile_ion_notice

    t = pd.DataFrame(
        {
            "formula": ["NaCl", "Na3PS4", "Na3Zr2Si2PO12"],
            "e_hull_ev_per_atom": [0.0, 0.0, 0.0],
            "band_gap_ev": [5.0, 3.0, 4.0],
            "log10_sigma_s_per_cm": [-1.0, -4.0, -3.0],
            "log10_sigma_std": [0.5, 0.5, 0.5],
            "conductivity_model": ["composition"] * 3,
            "in_domain": [False, True, True],
            "error": ["", "", ""],
        }
    )
    na = CheckConfig(mobile_ion="Na")
    out = rank_table(t, config=na)
    assert out[["log10_sigma_s_per_cm", "log10_sigma_std"]].isna().all().all()
    assert out["conductivity_model"].tolist() == ["none: no Na model"] * 3
    assert out["in_domain"].isna().all() and (out["warnings"] == "").all()  # no per-row σ warnings left
    without_sigma = rank_table(t.drop(columns=["log10_sigma_s_per_cm", "log10_sigma_std"]), config=na)
    np.testing.assert_allclose(out["score"], without_sigma["score"])  # stability, band gap and cost still rank
    assert out["rank"].tolist() == without_sigma["rank"].tolist()
    assert out["pareto_rank"].tolist() == without_sigma["pareto_rank"].tolist()
    with_li_sigma = rank_table(t.assign(formula=["LiCl", "Li3PS4", "Li3Zr2Si2PO12"]))
    assert with_li_sigma["log10_sigma_s_per_cm"].notna().all()  # Li keeps its model
    assert mobile_ion_notice("Li") is None and "no conductivity model for Na" in mobile_ion_notice("Na")


def test_uncertainty_modes_reorder_uncertain_candidates() -> None:
    t = pd.DataFrame(
        {
            "formula": ["Li7La3Zr2O12", "Li10GeP2S12"],
            "e_hull_ev_per_atom": [0.04, 0.06],
            "e_hull_std_ev_per_atom": [0.005, 0.05],  # the second is uncertain
            "band_gap_ev": [4.0, 4.0],
            "cost_usd_per_kg": [50.0, 50.0],
        }
    )
    assert rank_table(t)["rank"].tolist() == [1, 2]
    assert rank_table(t, mode="pessimistic")["rank"].tolist() == [1, 2]
    assert rank_table(t, mode="optimistic")["rank"].tolist() == [2, 1]
    assert rank_table(t, mode="optimistic", k=0.1)["rank"].tolist() == [1, 2]


def test_limits_reject_and_missing_values_warn() -> None:
    config = CheckConfig(max_e_hull_ev_per_atom=0.05)
    out = rank_table(candidates(), config=config)
    assert out.loc[1, "status"] == "rejected"
    assert out.loc[1, "reason"] == "predicted energy above hull 0.06 eV/atom above the limit 0.05 eV/atom"
    t = candidates().iloc[[0, 3]].reset_index(drop=True)
    t.loc[1, "band_gap_ev"] = np.nan
    out = rank_table(t)
    assert out["status"].tolist() == ["ranked", "ranked"]
    assert out.loc[1, "warnings"] == "no band_gap value (counted as worst)"
    assert out["rank"].tolist() == [1, 2]


def test_order_by_pareto_and_deterministic_ties() -> None:
    t = pd.DataFrame(
        {
            "formula": ["Li3PS4", "Li7La3Zr2O12", "Li6PS5Cl", "Li3YCl6"],
            "e_hull_ev_per_atom": [0.01, 0.01, 0.0, 0.01],
            "band_gap_ev": [3.0, 3.0, 6.0, 3.0],
            "cost_usd_per_kg": [10.0, 10.0, 10.0, 10.0],
        }
    )
    out = rank_table(t, order_by="pareto")
    assert out["pareto_rank"].tolist() == [2, 2, 1, 2]
    assert out["rank"].tolist() == [2, 3, 1, 4]  # equal rows keep their input order
    assert rank_table(t)["rank"].tolist() == rank_table(t)["rank"].tolist()


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="No formula column"):
        rank_table(pd.DataFrame({"composition": ["LiCl"]}))
    with pytest.raises(ValueError, match="clash"):
        rank_table(pd.DataFrame({"formula": ["LiCl"], "rank": [1]}))
    with pytest.raises(ValueError, match="order_by"):
        rank_table(pd.DataFrame({"formula": ["LiCl"]}), order_by="name")  # type: ignore[arg-type]


def test_ranking_many_rows_by_distinct_composition() -> None:
    rng = np.random.default_rng(0)
    formulas = np.array(["Li7La3Zr2O12", "Li3PS4", "Li6PS5Cl", "LiO4", "Li3YCl6", "Xx"])[rng.integers(0, 6, 20000)]
    t = pd.DataFrame({"formula": formulas, "e_hull_ev_per_atom": 0.0, "band_gap_ev": 4.0})
    out = rank_table(t)
    assert (out["status"] == "ranked").sum() == 4  # each distinct valid composition once
    assert out.loc[out["status"] == "ranked", "rank"].sort_values().tolist() == [1, 2, 3, 4]


def test_cli_prints_the_mobile_ion_notice_once(tmp_path) -> None:
    """`sse-screen rank --mobile-ion Na` through the real command line and the shipped models."""
    import subprocess
    import sys
    from pathlib import Path

    source = tmp_path / "na.txt"
    source.write_text("Na3PS4\nNaCl\nNa3Zr2Si2PO12\nLi3PS4\n")
    out = tmp_path / "ranked.csv"
    command = [sys.executable, "-m", "sse_screen.screening.cli", "rank", str(source), "--mobile-ion", "Na"]
    run = subprocess.run(
        [*command, "-o", str(out), "--no-explain"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("no conductivity model for Na") == 1
    ranked = pd.read_csv(out, keep_default_na=False)
    na = ranked[ranked["formula"] != "Li3PS4"]
    assert (na["status"] == "ranked").all() and (na["log10_sigma_s_per_cm"] == "").all()
    assert (na["conductivity_model"] == "none: no Na model").all()


def test_conductivity_scores_its_predictive_distribution_so_a_wide_guess_does_not_top_a_known_conductor() -> None:
    """The page's old example: Li3OCl first on -2.0 +- 4.1 (a guess), ahead of Li10GeP2S12 at -2.1 +- 0.3."""
    t = pd.DataFrame(
        {
            "formula": ["Li3OCl", "Li10GeP2S12"],
            "e_hull_ev_per_atom": [0.0, 0.0],
            "band_gap_ev": [4.0, 4.0],
            "cost_usd_per_kg": [50.0, 50.0],
            "log10_sigma_s_per_cm": [-2.0, -2.1],
            "log10_sigma_std": [4.1, 0.3],
        }
    )
    assert rank_table(t)["rank"].tolist() == [2, 1]
    assert rank_table(t.drop(columns="log10_sigma_std"))["rank"].tolist() == [1, 2]  # the mean alone: the guess wins
    obj = next(o for o in DEFAULT_OBJECTIVES if o.name == "conductivity")
    assert obj.expected
    # the probit approximation against the exact expectation of the logistic over Normal(mean, std)
    rng = np.random.default_rng(0)
    for mean, std in ((-2.0, 4.1), (-6.0, 1.0), (-4.0, 0.0)):
        exact = desirability(mean + std * rng.standard_normal(200_000), obj).mean()
        assert desirability(np.array([mean]), obj, np.array([std]))[0] == pytest.approx(exact, abs=0.02)
