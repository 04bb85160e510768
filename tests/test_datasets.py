"""Loader behaviour on the real bundled files (counts from each folder's PROVENANCE.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sse_screen.features import datasets
from sse_screen.features.datasets import (
    aggregate_by_composition,
    find_duplicates,
    load_li_pool,
    load_mp_e_form,
    load_mp_e_hull,
    load_mp_gap,
    load_obelix,
)

UNPARSEABLE = "Li3(Mo8S8O8(OH)8(HWO5(H2O)))*(H2O)18"
pytestmark = pytest.mark.filterwarnings("ignore:.*cannot parse their formula:UserWarning")


@pytest.mark.parametrize(
    ("load", "n_rows", "target"),
    [
        (lambda: load_mp_e_hull("train"), 39_663, "e_hull_ev_per_atom"),
        (lambda: load_mp_e_hull("val"), 8_499, "e_hull_ev_per_atom"),
        (load_li_pool, 4_010, "e_hull_ev_per_atom"),
        (lambda: load_obelix("all"), 599, "log10_sigma_s_per_cm"),
        (lambda: load_obelix("train"), 478, "log10_sigma_s_per_cm"),
        (lambda: load_obelix("test"), 121, "log10_sigma_s_per_cm"),
        (load_mp_e_form, 119_533, "e_form_ev_per_atom"),
        (load_mp_gap, 106_113, "band_gap_ev"),
    ],
)
def test_row_counts_and_dtypes(load, n_rows, target):
    table = load()
    assert len(table) == n_rows
    assert table.attrs["target"] == target
    assert table[target].dtype == np.float64
    for column in ("formula", "reduced_formula", "composition_key", "error"):
        assert isinstance(table[column].dtype, pd.StringDtype)
    assert table.index.equals(pd.RangeIndex(n_rows))


def test_sodium_nitride_formula_is_not_read_as_missing():
    table = load_mp_e_hull("train")
    row = table[table["formula"] == "NaN"]
    assert len(row) == 1
    assert row["reduced_formula"].iloc[0] == "NaN"
    assert row["composition_key"].iloc[0] == "N0.5Na0.5"  # the canonical key (features.canonical)
    assert table["formula"].notna().all() and table["reduced_formula"].notna().all()
    assert table["error"].isna().all()


def test_mp_e_hull_train_and_val_share_no_composition():
    train, val = load_mp_e_hull("train"), load_mp_e_hull("val")
    for key in ("reduced_formula", "composition_key"):
        assert not set(train[key]) & set(val[key])
    assert find_duplicates(train).empty and find_duplicates(val).empty
    assert find_duplicates(train, "reduced_formula").empty
    # On integer MP formulas the stricter key groups exactly as pymatgen's reduced formula does.
    assert train["composition_key"].nunique() == train["reduced_formula"].nunique() == len(train)


@pytest.mark.parametrize(("loader", "bad"), [(load_mp_e_hull, "test"), (load_obelix, "val")])
def test_unknown_split_raises(loader, bad):
    with pytest.raises(ValueError, match=f"Unknown split='{bad}'"):
        loader(bad)


def test_missing_data_dir_gives_a_clear_error(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="SSE_SCREEN_DATA_DIR"):
        load_li_pool()
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert datasets.data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match=r"Li-MP-final\.csv"):
        load_li_pool()


def test_default_data_dir_is_the_repository_data_folder(monkeypatch):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    assert datasets.data_dir() == Path(datasets.__file__).resolve().parent.parent / "data"


def test_cached_tables_are_returned_as_copies():
    first = load_li_pool()
    first.loc[0, "band_gap_ev"] = -1.0
    first["formula"] = "X"
    second = load_li_pool()
    assert second.loc[0, "band_gap_ev"] > 0
    assert (second["formula"] != "X").all()


def test_obelix_censored_rows_keep_an_interval_and_no_invented_value():
    table = load_obelix("all")
    censored = table[table["censored"]]
    assert len(censored) == 37
    assert censored["log10_sigma_upper"].value_counts().to_dict() == {-10.0: 36, -8.0: 1}
    assert (censored["log10_sigma_lower"] == -math.inf).all()
    assert censored[["sigma_s_per_cm", "log10_sigma_s_per_cm"]].isna().all().all()

    measured = table[~table["censored"]]
    assert len(measured) == 562
    assert np.isfinite(measured["log10_sigma_s_per_cm"]).all()
    assert (measured["log10_sigma_lower"] == measured["log10_sigma_s_per_cm"]).all()
    assert (measured["log10_sigma_upper"] == measured["log10_sigma_s_per_cm"]).all()
    assert np.allclose(10 ** measured["log10_sigma_s_per_cm"], measured["sigma_s_per_cm"])
    assert measured["sigma_s_per_cm"].between(4.2e-18, 2.5e-2).all()


def test_obelix_unparseable_formula_is_reported_not_dropped():
    with pytest.warns(UserWarning, match="1 row"):
        table = load_obelix("all")
    bad = table[table["error"].notna()]
    assert bad["formula"].tolist() == [UNPARSEABLE]
    assert bad["id"].tolist() == ["na5"]
    assert "cannot parse" in bad["error"].iloc[0]
    assert pd.isna(bad["reduced_formula"].iloc[0]) and pd.isna(bad["composition_key"].iloc[0])
    assert bad["log10_sigma_s_per_cm"].notna().all()  # the measurement itself is kept
    assert load_obelix("train")["error"].isna().all()


def test_obelix_columns_are_typed_and_cleaned():
    table = load_obelix("all")
    assert table["id"].is_unique
    assert table["Z"].dtype == np.int64 and table["space_group_number"].between(1, 230).all()
    for column in ("a_angstrom", "b_angstrom", "c_angstrom", "alpha_deg", "beta_deg", "gamma_deg"):
        assert table[column].dtype == np.float64 and table[column].notna().all()
    assert (table["space_group"] == table["space_group"].str.strip()).all()
    assert table["doi"].notna().all()
    assert table["family"].isna().sum() == 33
    assert table[["sigma_total_s_per_cm", "sigma_bulk_s_per_cm"]].notna().sum().tolist() == [29, 28]

    with_cif = table[table["cif_path"].notna()]
    assert len(with_cif) == 321 and with_cif["cif_close_match"].sum() == 61
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in with_cif["cif_path"])
    assert all(Path(p).stem == i for p, i in zip(with_cif["cif_path"], with_cif["id"], strict=True))


def test_obelix_split_files_partition_all():
    table = load_obelix("all")
    train, test = load_obelix("train"), load_obelix("test")
    assert table["split"].value_counts().to_dict() == {"train": 478, "test": 121}
    assert set(train["id"]) == set(table.loc[table["split"] == "train", "id"])
    assert (train["split"] == "train").all() and (test["split"] == "test").all()
    merged = table.set_index("id").loc[train["id"], train.columns.drop("id")].reset_index()
    pd.testing.assert_frame_equal(merged, train, check_like=False)
    # The official split shares no reduced formula, but two compositions written with other multipliers
    # (Li3.4Ge0.4P0.6S4 vs Li10.2Ge1.2P1.8S12, Li3.35Ge0.35P0.65S4 vs Li10.05Ge1.05P1.95S12).
    assert not set(train["reduced_formula"].dropna()) & set(test["reduced_formula"].dropna())
    assert len(set(train["composition_key"].dropna()) & set(test["composition_key"].dropna())) == 2


def test_duplicates_report_finds_obelix_repeats():
    table = load_obelix("all")
    # 85 rows repeat an identical formula string (PROVENANCE.md).
    assert table["formula"].duplicated().sum() == 85
    dups = find_duplicates(table, "reduced_formula")
    assert len(dups) == 61 and dups["n_rows"].sum() - len(dups) == 94
    assert list(dups.columns) == [
        "reduced_formula",
        "n_rows",
        "formulas",
        "log10_sigma_s_per_cm",
        "log10_sigma_s_per_cm_range",
        "ids",
        "n_censored",
    ]
    llzo = dups.set_index("reduced_formula").loc["Li7La3Zr2O12"]
    assert llzo["n_rows"] == len(llzo["ids"]) == len(llzo["log10_sigma_s_per_cm"]) == 5
    assert dups["reduced_formula"].notna().all()
    assert (dups["n_rows"].diff().dropna() <= 0).all()

    by_key = find_duplicates(table)  # default: the canonical composition key
    assert by_key.columns[0] == "composition_key"
    assert len(by_key) == 66 and by_key["n_rows"].sum() - len(by_key) == 99
    assert {"Li3.4Ge0.4P0.6S4", "Li10.2Ge1.2P1.8S12"} in by_key["formulas"].map(set).tolist()


def test_aggregate_by_composition_on_li_pool_polymorphs():
    pool = load_li_pool()
    assert len(find_duplicates(pool)) == len(find_duplicates(pool, "reduced_formula")) == 2
    lowest = aggregate_by_composition(pool, "e_hull_ev_per_atom", how="min")
    median = aggregate_by_composition(pool, "band_gap_ev", how="median")
    for agg in (lowest, median):
        assert len(agg) == 4_008 and agg["reduced_formula"].is_unique and agg["composition_key"].is_unique
        assert agg["n_rows"].sum() == 4_010
    grouped = pool.groupby("reduced_formula")
    assert lowest.set_index("reduced_formula")["e_hull_ev_per_atom"].equals(
        grouped["e_hull_ev_per_atom"].min().loc[lowest["reduced_formula"]]
    )
    assert np.allclose(
        median.set_index("reduced_formula")["band_gap_ev"],
        grouped["band_gap_ev"].median().loc[median["reduced_formula"]],
    )


def test_aggregate_refuses_rows_without_a_composition_and_unknown_how():
    with pytest.raises(ValueError, match="no composition_key"):
        aggregate_by_composition(load_obelix("all"), "log10_sigma_s_per_cm")
    with pytest.raises(ValueError, match="Unknown how='mean'"):
        aggregate_by_composition(load_li_pool(), "band_gap_ev", how="mean")


def test_mp_polymorph_sets_aggregate_to_one_row_per_composition():
    e_form = load_mp_e_form(aggregate="min")
    assert len(e_form) == 86_692 and e_form["n_rows"].sum() == 119_533
    assert e_form["e_form_ev_per_atom"].between(-4.62, 2.5).all()
    gap = load_mp_gap(aggregate="median")
    assert len(gap) == 78_164 and gap["n_rows"].sum() == 106_113
    assert (load_mp_gap()["error"].isna()).all()


def test_composition_key_is_the_canonical_key_and_merges_scaled_formulas():
    from sse_screen.features.canonical import canonical_keys

    table = load_obelix("all")
    ok = table["composition_key"].notna()
    assert table.loc[ok, "composition_key"].tolist() == canonical_keys(table.loc[ok, "formula"].tolist()).tolist()
    keys = table.set_index("formula")["composition_key"]
    assert keys["Li3.4Ge0.4P0.6S4"] == keys["Li10.2Ge1.2P1.8S12"] == "Li0.404762P0.071429S0.47619Ge0.047619"
    measured = table[ok & table["log10_sigma_s_per_cm"].notna()]
    merged = aggregate_by_composition(measured, "log10_sigma_s_per_cm", how="median")
    assert merged["composition_key"].is_unique
    assert len({"Li3.4Ge0.4P0.6S4", "Li10.2Ge1.2P1.8S12"} & set(merged["formula"])) == 1
