"""Structure featurizer on real OBELiX CIFs: values checked against pymatgen, partial occupancy, bad CIFs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.base import clone

from sse_screen.features.datasets import data_dir, load_obelix
from sse_screen.features.structure import FEATURES, SITE_FEATURES, StructureError, StructureFeaturizer, read_cif

CIFS = data_dir() / "obelix" / "randomized_cifs"
COLUMN = {name: i for i, name in enumerate(FEATURES)}


@pytest.fixture(scope="module")
def featurizer() -> StructureFeaturizer:
    return StructureFeaturizer(errors="nan").fit()


def test_ordered_structure_matches_pymatgen(featurizer: StructureFeaturizer) -> None:
    structure = read_cif(CIFS / "dth.cif")  # Li4GeO4, Cmcm, ordered
    assert structure.properties["space_group_number"] == 63
    row, errors = featurizer.featurize([structure])
    assert errors == [None]
    f = dict(zip(FEATURES, row[0], strict=True))
    assert f["space_group_number"] == 63 and f["crystal_system"] == 3  # orthorhombic
    assert f["volume_per_atom_a3"] == pytest.approx(structure.volume / len(structure))
    assert f["density_g_per_cm3"] == pytest.approx(structure.density, rel=1e-4)
    assert f["li_density_per_a3"] == pytest.approx(16 / structure.volume)
    assert f["volume_per_anion_a3"] == pytest.approx(structure.volume / 16)
    li = [i for i, site in enumerate(structure) if site.specie.symbol == "Li"]
    o = [i for i, site in enumerate(structure) if site.specie.symbol == "O"]
    d = structure.distance_matrix
    li_li = d[np.ix_(li, li)]
    assert f["li_li_min_distance_a"] == pytest.approx(li_li[li_li > 0].min(), abs=1e-6)
    assert f["li_anion_distance_a"] == pytest.approx(d[np.ix_(li, o)].min(axis=1).mean(), abs=1e-6)
    assert f["li_site_occupancy"] == 1.0


def test_partial_occupancy_counts_li_by_occupancy(featurizer: StructureFeaturizer) -> None:
    structure = read_cif(CIFS / "opo.cif")  # Li0.6[Li0.2Sn0.8S2]: Li shares sites with Sn
    assert not structure.is_ordered
    row, errors = featurizer.featurize([structure])
    assert errors == [None]
    f = dict(zip(FEATURES, row[0], strict=True))
    n_li = structure.composition["Li"]
    assert 0 < n_li < sum("Li" in site.species.get_el_amt_dict() for site in structure)
    assert f["li_density_per_a3"] == pytest.approx(n_li / structure.volume)
    assert f["atoms_per_cell"] == pytest.approx(structure.composition.num_atoms)
    assert 0 < f["li_site_occupancy"] < 1
    assert np.isfinite(row).all()


def test_lattice_parameters_give_the_same_cell_features(featurizer: StructureFeaturizer) -> None:
    table = load_obelix("train").dropna(subset=["cif_path"]).head(40)
    table = table[table["error"].isna()]
    from_cif, cif_errors = featurizer.featurize(table["cif_path"].tolist())
    from_lattice, lattice_errors = featurizer.featurize_lattice(table)
    ok = np.array([a is None and b is None for a, b in zip(cif_errors, lattice_errors, strict=True)])
    assert ok.sum() >= 35
    cell = [COLUMN[name] for name in FEATURES if name not in SITE_FEATURES]
    with np.errstate(invalid="ignore"):  # a NaN feature (no anion) divides 0/0
        ratio = from_cif[ok][:, cell] / from_lattice[ok][:, cell]
    assert np.nanmedian(np.abs(ratio - 1), axis=0).max() < 1e-3  # same compound, same cell
    assert np.isnan(from_lattice[:, [COLUMN[name] for name in SITE_FEATURES]]).all()


def _bad_occupancy_cif(tmp_path: Path) -> Path:
    lines = (CIFS / "dth.cif").read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.split()[:2] == ["Li", "Li0"])
    lines[i] = lines[i].rsplit(" ", 1)[0] + " x.y"
    path = tmp_path / "bad_occupancy.cif"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_inputs_get_clear_per_row_errors(featurizer: StructureFeaturizer, tmp_path: Path) -> None:
    not_cif = tmp_path / "notes.cif"
    not_cif.write_text("this is a lab notebook, not a crystal structure\n")
    no_li = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rows = [CIFS / "dth.cif", not_cif, _bad_occupancy_cif(tmp_path), no_li, None, tmp_path / "missing.cif"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is silently warned instead of reported
        matrix, errors = featurizer.featurize(rows)
    assert errors[0] is None and np.isfinite(matrix[0]).all()
    assert "not a CIF" in errors[1]
    assert "unreadable occupancy 'x.y'" in errors[2] and "Li0" in errors[2]
    assert "no Li" in errors[3]
    assert errors[4] == "no structure given"
    assert "file not found" in errors[5]
    assert np.isnan(matrix[1:]).all()
    with pytest.raises(StructureError, match=r"row 1: notes\.cif: not a CIF"):
        StructureFeaturizer().fit().transform(rows)


def test_conventions_labels_units() -> None:
    featurizer = StructureFeaturizer()
    assert clone(featurizer).get_params() == {"errors": "raise"}
    with pytest.raises(Exception, match="not fitted"):
        featurizer.featurize([None])
    featurizer.fit()
    names = list(featurizer.get_feature_names_out())
    assert names == list(featurizer.feature_units()) and len(names) == len(set(names))
    assert all(unit for _, unit in featurizer.feature_units().values())
    assert any("Shannon" in entry for entry in featurizer.citations())
    with pytest.raises(ValueError, match="Unknown errors"):
        StructureFeaturizer(errors="ignore").fit()


def test_matches_matminer_density_features() -> None:
    from matminer.featurizers.structure import DensityFeatures

    structures = [read_cif(CIFS / name) for name in ("dth.cif", "ro9.cif", "clt.cif")]  # ordered (matminer's limit)
    ours, _ = StructureFeaturizer().fit().featurize(structures)
    density = DensityFeatures(desired_features=["density", "vpa"])
    density.set_n_jobs(1)
    reference = density.featurize_many(structures, ignore_errors=False, pbar=False)
    assert ours[:, COLUMN["density_g_per_cm3"]] == pytest.approx([r[0] for r in reference], rel=1e-4)
    assert ours[:, COLUMN["volume_per_atom_a3"]] == pytest.approx([r[1] for r in reference], rel=1e-6)
