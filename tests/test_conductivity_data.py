"""McHaffie loader and the merged OBELiX + McHaffie conductivity table (no leakage, repeat rows kept together)."""

import numpy as np
import pytest

from sse_screen.features.conductivity_data import chemical_systems, conductivity_table, load_mchaffie
from sse_screen.features.ion_chemistry import FEATURES, ion_chemistry_features


@pytest.fixture(scope="module")
def table():
    with pytest.warns(UserWarning):
        return conductivity_table()


def test_mchaffie_loader_is_typed_and_flags_extrapolated_values():
    with pytest.warns(UserWarning, match="mchaffie"):
        raw = load_mchaffie()
    assert len(raw) == 571
    assert raw["extrapolated"].sum() == 135
    assert raw["lowest_measured_temperature_k"].notna().sum() == 135
    measured = raw[~raw["extrapolated"]]
    assert (measured["log10_sigma_lower"] == measured["log10_sigma_upper"]).all()
    assert not raw["censored"].any()


def test_merged_table_has_no_obelix_composition_twice_and_no_test_leak(table):
    obelix, extra = table[table["source"] == "obelix"], table[table["source"] == "mchaffie"]
    assert len(obelix) == 598 and len(extra) > 150
    assert not set(extra["composition_key"]) & set(obelix["composition_key"])
    test_keys = set(obelix.loc[obelix["split"] == "test", "composition_key"])
    with pytest.warns(UserWarning):
        strict = conductivity_table(exclude_test=True)
    assert not set(strict.loc[strict["source"] == "mchaffie", "composition_key"]) & test_keys
    # repeat measurements of one McHaffie composition are kept, and share a chemical system (one CV group)
    repeated = extra[extra["composition_key"].duplicated(keep=False)]
    assert len(repeated) > 0
    assert (repeated.groupby("composition_key")["chemsys"].nunique() == 1).all()
    assert table["family_group"].notna().all()


def test_chemical_systems_ignore_scale_and_order():
    assert list(chemical_systems(["Li10GeP2S12", "Li5Ge0.5PS6", "S12P2GeLi10", "Xx2"])) == ["Li-P-S-Ge"] * 3 + [""]


def test_ion_chemistry_features_are_scale_invariant_and_chemically_sensible():
    f = ion_chemistry_features(["Li6PS5Cl", "Li12P2S10Cl2", "LiBH4", "Li3InCl6", "Li7La3Zr2O12"])
    assert list(f.columns) == list(FEATURES)
    np.testing.assert_allclose(f.iloc[0].to_numpy(), f.iloc[1].to_numpy(), equal_nan=True)
    assert f.loc[0, "polyanion PS4"] == 1 and f.loc[0, "mixed anion"] == 1
    assert f.loc[2, "polyanion BH4"] == 1 and f.loc[2, "anion share H"] == 1
    assert f.loc[3, "anion share Cl"] == 1 and f.loc[3, "framework charge mean"] == 3
    assert f.loc[4, "charge balance residual"] == pytest.approx(0, abs=1e-9)
    assert f.loc[0, "anion polarisability"] > f.loc[4, "anion polarisability"]  # sulfides are softer than oxides
