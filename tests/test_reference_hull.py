"""Reference-hull features on hand-made systems with known answers, and on the bundled MP data."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.reference_hull import (
    NUMERIC_FEATURE_NAMES,
    ReferenceHull,
    ReferenceHullFeaturizer,
)

DATA = Path(__file__).resolve().parents[1] / "data"

# Li-O, formation energies in eV/atom (x_O = O atom fraction):
#   Li2O  (1/3, -2.0)  on the hull
#   Li2O2 (1/2, -1.7)  on the hull (the Li2O-O tie line gives -1.5 there)
#   LiO3  (3/4, -0.5)  above the hull, whose value there is -0.85 (Li2O2-O tie line)
# A second, higher Li2O2 polymorph (-1.0) must be ignored (lowest per composition).
LI_O = pd.DataFrame(
    {
        "formula": ["Li2O", "Li4O4", "Li2O2", "LiO3", "Li", "O2"],
        "target": [-2.0, -1.0, -1.7, -0.5, 0.3, 0.1],  # elemental rows are ignored: elements are 0 by definition
    }
)


@pytest.fixture(scope="module")
def li_o() -> ReferenceHull:
    return ReferenceHull(LI_O["formula"].tolist(), LI_O["target"].to_numpy())


def one(hull: ReferenceHull, formula: str, **kwargs):
    (result,) = hull.query([formula], **kwargs)
    return result


def test_polymorphs_and_elements_aggregated(li_o: ReferenceHull) -> None:
    assert len(li_o) == 3  # Li2O, Li2O2, LiO3; elements dropped
    assert li_o.known_formation_energy("Li4O4") == pytest.approx(-1.7)
    assert math.isnan(li_o.known_formation_energy("Li3O"))


def test_known_vertex_without_leave_self_out_is_its_own_energy(li_o: ReferenceHull) -> None:
    r = one(li_o, "Li2O2", leave_self_out=False)
    assert r.e_hull_ref == pytest.approx(-1.7)
    assert r.decomposition_str == "Li2O2"
    assert r.e_form_known == pytest.approx(-1.7)
    assert r.n_known_phases == 3


def test_leave_self_out_rebuilds_hull_without_the_vertex(li_o: ReferenceHull) -> None:
    r = one(li_o, "Li2O2")
    # without Li2O2 the hull at x_O = 1/2 is the Li2O-O tie line: 3/4 of the atoms in Li2O -> 0.75 * -2.0
    assert r.e_hull_ref == pytest.approx(-1.5)
    assert r.decomposition == pytest.approx({"Li2O": 0.75, "O2": 0.25})
    assert r.decomposition_str == "Li2O + O2"
    assert math.isnan(r.e_form_known)  # own energy hidden under leave-self-out
    assert r.n_known_phases == 2
    assert r.n_known_phases_same_elements == 2
    # the energy above hull recovered from the known energy matches the hand-made geometry: 0.2 below the tie line
    assert li_o.known_formation_energy("Li2O2") - r.e_hull_ref == pytest.approx(-0.2)


def test_leave_self_out_of_a_non_vertex_keeps_the_hull(li_o: ReferenceHull) -> None:
    r = one(li_o, "LiO3")
    assert r.e_hull_ref == pytest.approx(-0.85)
    assert r.decomposition == pytest.approx({"Li2O2": 0.5, "O2": 0.5})
    assert li_o.known_formation_energy("LiO3") - r.e_hull_ref == pytest.approx(0.35)


def test_unknown_composition_between_element_and_compound(li_o: ReferenceHull) -> None:
    r = one(li_o, "Li3O")
    assert r.e_hull_ref == pytest.approx(-1.5)
    assert r.decomposition == pytest.approx({"Li2O": 0.75, "Li": 0.25})
    assert r.n_known_phases == 3  # nothing to leave out: the query is not a known phase
    assert math.isnan(r.e_form_known)


def test_elements_absent_from_the_reference_are_zero_energy_vertices(li_o: ReferenceHull) -> None:
    cs_li = one(li_o, "CsLi")
    assert cs_li.e_hull_ref == pytest.approx(0.0)
    assert set(cs_li.decomposition) == {"Cs", "Li"}
    assert cs_li.n_known_phases == 0
    # Li:Cs:O = 1:1:2 -> Li-O part (3/4 of the atoms, x_O = 2/3) on the Li2O2-O tie line (-1.7 * 2/3) plus Cs
    r = one(li_o, "LiCsO2")
    assert r.e_hull_ref == pytest.approx(0.75 * -1.7 * 2 / 3)
    assert r.decomposition == pytest.approx({"Li2O2": 0.5, "O2": 0.25, "Cs": 0.25})
    assert r.n_known_phases == 3
    assert r.n_known_phases_same_elements == 0


def test_element_query_is_zero(li_o: ReferenceHull) -> None:
    r = one(li_o, "Li")
    assert r.e_hull_ref == 0.0
    assert r.decomposition_str == "Li"


def test_bad_formulas_get_an_error_row_in_place(li_o: ReferenceHull) -> None:
    table = li_o.features(["Li2O2", "Xx2O", "", "LiO3"])
    assert len(table) == 4
    assert table["error"].tolist()[0] == "" and table["error"].tolist()[3] == ""
    assert "Xx2O" in table["error"][1] and table["error"][2] != ""
    assert np.isnan(table.loc[1, "e_hull_ref_ev_per_atom"])
    assert table.loc[3, "e_hull_ref_ev_per_atom"] == pytest.approx(-0.85)  # order kept around the bad rows


def test_grouped_query_matches_one_by_one(li_o: ReferenceHull) -> None:
    formulas = ["LiO3", "Li2O2", "Li3O", "Li2O", "LiCsO2", "Li2O2"]
    together = li_o.features(formulas)
    alone = pd.concat([li_o.features([f]) for f in formulas], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)


def test_transformer_follows_sklearn_conventions() -> None:
    featurizer = ReferenceHullFeaturizer(reference=LI_O)
    assert clone(featurizer).get_params()["leave_self_out"] is True
    X = featurizer.fit(None).transform(pd.Series(["Li2O2", "Li3O"]))
    assert X.shape == (2, len(NUMERIC_FEATURE_NAMES))
    assert X[0, 0] == pytest.approx(-1.5) and X[1, 0] == pytest.approx(-1.5)
    assert list(featurizer.get_feature_names_out()) == list(NUMERIC_FEATURE_NAMES)
    with pytest.raises(ValueError, match="Xx2O"):
        featurizer.transform(["Xx2O"])


def test_reproduces_mp_energy_above_hull_in_li_p_s_o() -> None:
    """Known energy minus leave-self-out reference hull reproduces the mp_e_hull target (same legacy MP data)."""
    allowed = {"Li", "P", "S", "O"}

    def in_system(formula: str) -> bool:
        return set(re.findall(r"[A-Z][a-z]?", formula)) <= allowed

    ref = pd.read_csv(DATA / "mp_e_form" / "mp_e_form.csv", keep_default_na=False)
    ref = ref[ref["formula"].map(in_system)]
    hull = ReferenceHull(ref["formula"].tolist(), ref["target"].to_numpy())
    train = pd.read_csv(DATA / "mp_e_hull" / "train.csv", keep_default_na=False)
    rows = train[train["formula"].map(in_system)]
    rows = rows[[not math.isnan(hull.known_formation_energy(f)) for f in rows["formula"]]]
    assert len(rows) >= 20
    table = hull.features(rows["formula"].tolist())
    known = np.array([hull.known_formation_energy(f) for f in rows["formula"]])
    e_hull = np.clip(known - table["e_hull_ref_ev_per_atom"].to_numpy(), 0, None)
    agree = np.abs(e_hull - rows["target"].to_numpy()) <= 0.025
    # not 100%: the unseen test compositions were removed from mp_e_form (fewer hull vertices), and a few
    # targets come from a different MP snapshot than the formation energies
    assert agree.mean() >= 0.8
