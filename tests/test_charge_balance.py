"""Polyatomic anions, excess-anion errors and hydrides in the charge-balance check: one table of right and wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sse_screen.features.formula import parse_batch
from sse_screen.screening.charge_balance import charge_balance_verdicts
from sse_screen.screening.checks import CheckConfig, run_checks
from sse_screen.screening.polyanions import polyanion_salts

#: Salts of s-block cations with a polyatomic anion: pass, with no flag at all.
POLYANION_SALTS = {
    "Li2O2": "peroxide O2 2-",
    "LiO2": "superoxide O2 -",
    "LiO3": "ozonide O3 -",
    "LiN3": "azide N3 -",
    "Li2S2": "polysulfide S2 2-",
    "Li2S4": "polysulfide S4 2-",
    "Li2S6": "polysulfide S6 2-",
    "LiI3": "triiodide I3 -",
    "NaO2": "superoxide O2 -",
    "KO2": "superoxide O2 -",
    "BaO2": "peroxide O2 2-",
}
#: Balance only through O-1, S-1, ... next to a cation that is not s-block: rejected, the reason says so.
EXCESS_ANION = {
    "LiPO4": "(O above -2, as in peroxides or polysulfides), which exists only in salts of s-block cations, not next "
    "to P: with the common anion states the best assignment (Li +1; P +1/+2/+3/+4/+5; O -2) leaves -2 e per LiPO4",
    "Li6PS5Cl2": "(S above -2, as in peroxides or polysulfides), which exists only in salts of s-block cations, not "
    "next to P",
    "Li7PS6Cl": "not next to P",
    "Li4P2S9": "leaves -4 e per Li4P2S9 formula unit",
    "LiLaO3": "not next to La",
    "Li3PS5": "not next to P",
}
#: Wrong with any oxidation state (rejected before this change, still rejected).
IMPOSSIBLE = ("LiCl2", "Li5O", "Li3InCl7", "LiH2", "Li2Cl", "NaLi5")
#: Hydrides next to electropositive elements: no "less common oxidation states" flag.
HYDRIDES = ("LiBH4", "Li4(BH4)(NH2)3", "Li2(BH4)(NH2)", "LiAlH4", "Li3AlH6", "LiNH2BH3", "LiNH2", "Li2BH4NH2")
#: Real electrolytes: ranked with no flag.
ELECTROLYTES = (
    "Li6PS5Cl",
    "Li10GeP2S12",
    "Li7La3Zr2O12",
    "Li3YCl6",
    "Li3InCl6",
    "LiTi2(PO4)3",
    "Li3PS4",
    "Li6.4La3Zr1.4Ta0.6O12",
    "Li1.3Al0.3Ti1.7(PO4)3",
    "Li2B2S5",  # a thioborate with an S-S bridge: flagged (S-1), not rejected
)


def _verdicts(formulas: list[str]) -> tuple[list[bool], dict[int, str], list[str]]:
    passed, reasons, flags = charge_balance_verdicts(parse_batch(formulas))
    return passed.tolist(), reasons, list(flags)


def test_polyanion_salts_pass_without_a_flag() -> None:
    formulas = list(POLYANION_SALTS)
    assert list(polyanion_salts(parse_batch(formulas))) == list(POLYANION_SALTS.values())
    passed, reasons, flags = _verdicts(formulas)
    assert all(passed) and not reasons
    assert flags == [""] * len(formulas)
    assert (run_checks(["LiO3", "Li2O2", "LiN3"])["warnings"] == "").all()
    na = run_checks(["NaO2", "KO2"], config=CheckConfig(mobile_ion="Na"))
    assert na["status"].tolist() == ["ok", "rejected"] and na["reason"][1] == "contains no Na (mobile ion)"


def test_a_polyanion_needs_s_block_cations_only() -> None:
    batch = parse_batch(["LiAlO2.5", "Li2O3", "LiNaS2", "Li2SO2", "LiS3"])
    assert list(polyanion_salts(batch)) == ["", "", "polysulfide S2 2-", "", "polysulfide S6 2-"]


@pytest.mark.parametrize(("formula", "expected"), list(EXCESS_ANION.items()))
def test_excess_anion_compositions_are_rejected_with_the_reason(formula: str, expected: str) -> None:
    row = run_checks([formula]).iloc[0]
    assert row["status"] == "rejected"
    assert row["reason"].startswith("balances only with an anion state below the common one")
    assert expected in row["reason"]


def test_s_block_compositions_are_not_judged_as_excess_anion() -> None:
    out = run_checks(["NaN", "Li3N2"], config=CheckConfig(mobile_ion="Na"))
    assert out["reason"].tolist() == ["", "contains no Na (mobile ion)"]  # flagged as rare states, not rejected
    assert out["warnings"].str.startswith("balanced only with less common oxidation states").all()


def test_impossible_compositions_stay_rejected() -> None:
    out = run_checks(list(IMPOSSIBLE))
    assert (out["status"] == "rejected").all()
    assert out["reason"].str.contains("charge balanced|no element can be an anion").all()


def test_hydrides_are_not_flagged_as_uncommon() -> None:
    out = run_checks(list(HYDRIDES))
    assert (out["status"] == "ok").all(), out["reason"].tolist()
    assert out["warnings"].tolist() == [""] * len(HYDRIDES)


def test_real_electrolytes_stay_ranked() -> None:
    out = run_checks(list(ELECTROLYTES))
    assert (out["status"] == "ok").all(), out["reason"].tolist()
    assert (out["warnings"][:-1] == "").all()
    assert "less common oxidation states" in out["warnings"].iloc[-1]


def test_a_nominal_composition_off_by_vacancies_is_flagged_not_rejected() -> None:
    out = run_checks(["Li5.74La3Zr1.5Ta0.5O12", "Li6.6SiPO8"])  # -0.033 and -0.024 e per atom with O-2
    assert (out["status"] == "ok").all()
    assert out["warnings"].str.startswith("not charge balanced with the usual oxidation states").all()


def test_at_most_one_percent_of_known_electrolytes_rejected() -> None:
    """OBELiX (+ McHaffie et al. when data/mchaffie is present): the benchmark script's figure, asserted."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from known_electrolyte_checks import known_electrolytes

    table = known_electrolytes()
    out = run_checks(table["formula"])
    assert len(table) >= 599
    by_charge = out["reason"].str.contains("charge balanced|anion state below")
    assert by_charge.mean() <= 0.01, table["formula"][by_charge].tolist()
    assert (out["status"] == "rejected").mean() <= 0.01
