"""Known compositions: the measured / Materials Project values shown next to predictions, from the bundled artefact."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sse_screen.features.datasets import data_dir, load_mp_e_hull
from sse_screen.models.persistence import sha256_file
from sse_screen.screening.known import KNOWN_COLUMNS, KNOWN_DIR, KNOWN_PARQUET, attach_known, known_table


def test_known_values_by_canonical_composition() -> None:
    table = pd.DataFrame(
        {"formula": ["Li6PS5Cl", "Li10GeP2S12", "Li5Ge0.5PS6", "NaCl", "Xx2O", "", "Li9Zz"], "note": list("abcdefg")}
    )
    out = attach_known(table)
    assert list(out.columns) == ["formula", "note", *KNOWN_COLUMNS] and out["note"].tolist() == list("abcdefg")
    argyrodite = out.iloc[0]
    # measured, not predicted: the OBELiX median of its measurements, with every DOI
    assert -3.2 < argyrodite["known_log10_sigma_s_per_cm"] < -2.5
    assert argyrodite["known_sigma_source"].startswith("OBELiX (median of ")
    assert argyrodite["known_sigma_source"].count("doi:10.") >= 2
    assert argyrodite["known_e_hull_ev_per_atom"] >= 0 and argyrodite["known_band_gap_ev"] > 0
    assert "mp-" in argyrodite["known_source"]
    # one composition, two notations: the same known values
    known = list(KNOWN_COLUMNS)
    pd.testing.assert_series_equal(out.iloc[1][known], out.iloc[2][known], check_names=False)
    nacl = out.iloc[3]
    assert np.isnan(nacl["known_log10_sigma_s_per_cm"]) and nacl["known_sigma_source"] == ""
    assert nacl["known_band_gap_ev"] > 3 and "Materials Project" in nacl["known_source"]
    for row in out.iloc[4:].itertuples():  # unparseable, empty, unknown: nothing known, nothing invented
        assert np.isnan(row.known_log10_sigma_s_per_cm) and row.known_sigma_source == "" and row.known_source == ""
    with pytest.raises(ValueError, match="known_source"):
        attach_known(out)


def test_fingerprint_prefilter_finds_what_direct_lookup_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long lists are prefiltered by fingerprint, short ones looked up key by key: the same known values."""
    import sse_screen.screening.known as known

    mp = load_mp_e_hull("train")["formula"].to_numpy()
    picked = [str(f) for f in mp[np.random.default_rng(0).choice(len(mp), 300, replace=False)]]
    formulas = [*picked, "Li6PS5Cl", "Li5Ge0.5PS6", "Li2(SO4)", "Li9Zz", "", "LiCoO2", "Li6.1PS5.1Cl0.9"]
    table = pd.DataFrame({"formula": formulas})
    direct = known.attach_known(table)
    monkeypatch.setattr(known, "DIRECT_LOOKUP_FORMULAS", 0)
    prefiltered = known.attach_known(table)
    pd.testing.assert_frame_equal(direct, prefiltered)
    assert direct["known_source"][:300].str.contains("Materials Project").all()  # MP rows are known by both routes


def test_censored_measurements_are_stated_not_invented() -> None:
    table = known_table()
    censored = table[table["sigma_source"].str.contains("censored")]
    assert len(censored)
    only_censored = censored[censored["sigma_source"].str.contains(r"^OBELiX \(1 measurement", regex=True)]
    assert only_censored["log10_sigma_s_per_cm"].isna().all()


def test_artefact_is_small_and_built_from_the_bundled_data(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = json.loads((KNOWN_DIR / "known_compositions.json").read_text())
    assert KNOWN_PARQUET.stat().st_size < 5_000_000
    for name, digest in manifest["sources_sha256"].items():
        assert sha256_file(data_dir() / name) == digest, f"{name} changed: rebuild the known-composition table"
    assert manifest["rows"] == len(known_table())
    # the OBELiX part agrees with a fresh build from data/ (a minute for the MP part: not repeated here)
    from sse_screen.experiments.known_compositions import obelix_conductivity

    fresh = obelix_conductivity().set_index("composition_key")
    stored = known_table().loc[fresh.index]
    np.testing.assert_allclose(stored["log10_sigma_s_per_cm"], fresh["log10_sigma_s_per_cm"])
    assert stored["sigma_source"].tolist() == fresh["sigma_source"].tolist()
    # prediction time never reads data/
    monkeypatch.setenv("SSE_SCREEN_DATA_DIR", "/nonexistent/sse-screen-data")
    known_table.cache_clear()
    try:
        assert attach_known(pd.DataFrame({"formula": ["Li6PS5Cl"]}))["known_sigma_source"][0].startswith("OBELiX")
    finally:
        known_table.cache_clear()
