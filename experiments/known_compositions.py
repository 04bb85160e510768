"""Build the table of known compositions that predictions are shown next to (``screening/known/``).

What is known about a composition, from the bundled data sets, one row per canonical composition
(:func:`features.canonical.canonical_key`):

- measured room-temperature ionic conductivity: OBELiX (``obelix/all.csv``); several measurements of one
  composition give their median (log10 S/cm) and the count; censored values (``<1E-10``) are counted and stated,
  never turned into numbers; every DOI is kept;
- Materials Project energy above hull and PBE band gap: the ground-state polymorph of ``mp_li_ehull_gap``
  (current MP, with its MP ID) when the composition is there, else ``mp_e_hull`` train/val (legacy MP energies, the
  stability model's target) and the median over the polymorphs of ``mp_gap``.

Models and screening never read ``data/`` at prediction time (it is not what a user installs with a model); they
read the artefact this script writes: ``screening/known/known_compositions.parquet`` (a few MB) and
``known_compositions.json`` beside it (SHA-256 of every source file, row counts).

Usage::

    python -m sse_screen.experiments.known_compositions [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from sse_screen.features.canonical import canonical_keys
from sse_screen.features.datasets import data_dir, load_li_pool, load_mp_e_hull, load_mp_gap, load_obelix
from sse_screen.models.persistence import sha256_file

#: Where ``screening.known`` looks for the artefact (a sibling package folder, also in an installed wheel).
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent.parent / "screening" / "known"
PARQUET_NAME, MANIFEST_NAME = "known_compositions.parquet", "known_compositions.json"
SOURCE_FILES = (
    "obelix/all.csv",
    "mp_e_hull/train.csv",
    "mp_e_hull/val.csv",
    "mp_gap/mp_gap.csv",
    "mp_li_ehull_gap/Li-MP-final.csv",
)


def _with_keys(table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose formula parses, with ``composition_key`` = the canonical key (replacing the loader's own)."""
    keys = canonical_keys(table["formula"].astype(str).tolist())
    out = table.assign(composition_key=keys)
    return out[out["composition_key"].notna()]


def obelix_conductivity() -> pd.DataFrame:
    """Measured RT conductivity per composition from OBELiX: ``log10_sigma_s_per_cm`` (median of the uncensored
    measurements, NaN if all are censored), ``sigma_n`` (measurements) and ``sigma_source`` (text with DOIs)."""
    table = _with_keys(load_obelix("all"))
    rows = []
    for key, group in table.groupby("composition_key", sort=True):
        measured = group.loc[~group["censored"], "log10_sigma_s_per_cm"]
        censored = group[group["censored"]]
        what = f"median of {len(group)}" if len(group) > 1 else "1 measurement"
        if len(censored):
            bound = 10 ** censored["log10_sigma_upper"].min()
            what += f", {len(censored)} below {bound:.0e} S/cm (censored)"
        dois = sorted({str(d) for d in group["doi"].dropna()})
        source = f"OBELiX ({what})" + "".join(f"; doi:{d}" for d in dois)
        rows.append(
            {
                "composition_key": key,
                "log10_sigma_s_per_cm": float(np.median(measured)) if len(measured) else np.nan,
                "sigma_n": len(group),
                "sigma_source": source,
            }
        )
    return pd.DataFrame(rows)


def mchaffie_conductivity() -> pd.DataFrame | None:
    """The McHaffie et al. conductivity set: NOT in ``data/`` yet, so nothing is added (None).

    When it lands (e.g. ``data/mchaffie/`` with a PROVENANCE.md), return the same columns as
    :func:`obelix_conductivity` (``composition_key``, ``log10_sigma_s_per_cm``, ``sigma_n``, ``sigma_source`` with
    "McHaffie ..." and DOIs) and add its file to :data:`SOURCE_FILES`; :func:`build` merges the sources.
    """
    folder = data_dir() / "mchaffie"
    if folder.exists():
        raise NotImplementedError(f"{folder} exists but its loader is not written yet: see mchaffie_conductivity()")
    return None


#: Measured conductivity sources, merged in this order (the first source that knows a composition wins).
CONDUCTIVITY_SOURCES: tuple[Callable[[], pd.DataFrame | None], ...] = (obelix_conductivity, mchaffie_conductivity)


def materials_project() -> pd.DataFrame:
    """``e_hull_ev_per_atom``, ``band_gap_ev``, ``mp_id`` and ``mp_source`` per composition (module docstring)."""
    pool = _with_keys(load_li_pool()).sort_values(["composition_key", "e_hull_ev_per_atom", "mp_id"])
    pool = pool.drop_duplicates("composition_key")  # the ground-state polymorph
    current = pd.DataFrame(
        {
            "composition_key": pool["composition_key"],
            "e_hull_ev_per_atom": pool["e_hull_ev_per_atom"],
            "band_gap_ev": pool["band_gap_ev"],
            "mp_id": pool["mp_id"].astype(str),
            "mp_source": "Materials Project " + pool["mp_id"].astype(str) + " (MP2020 energies; E_hull and PBE gap)",
        }
    )
    hull = pd.concat([_with_keys(load_mp_e_hull(s)).assign(split=s) for s in ("train", "val")], ignore_index=True)
    hull = hull.groupby("composition_key", as_index=False).agg(
        e_hull_ev_per_atom=("e_hull_ev_per_atom", "min"), split=("split", "first")
    )
    gap = (
        _with_keys(load_mp_gap())
        .groupby("composition_key", as_index=False)
        .agg(band_gap_ev=("band_gap_ev", "median"), n_gap=("band_gap_ev", "size"))
    )
    legacy = hull.merge(gap, on="composition_key", how="outer")
    legacy = legacy[~legacy["composition_key"].isin(current["composition_key"])]
    hull_text = "Materials Project E_hull (legacy energies, mp_e_hull " + legacy["split"].fillna("") + ")"
    parts = np.where(legacy["e_hull_ev_per_atom"].notna(), hull_text, "").astype(object)
    gap_text = np.where(
        legacy["n_gap"] > 1,
        "Materials Project PBE gap (median of " + legacy["n_gap"].fillna(0).astype(int).astype(str) + " polymorphs)",
        "Materials Project PBE gap",
    )
    has_gap = legacy["band_gap_ev"].notna().to_numpy()
    for i in np.flatnonzero(has_gap):
        parts[i] = f"{parts[i]}; {gap_text[i]}" if parts[i] else gap_text[i]
    legacy = pd.DataFrame(
        {
            "composition_key": legacy["composition_key"],
            "e_hull_ev_per_atom": legacy["e_hull_ev_per_atom"],
            "band_gap_ev": legacy["band_gap_ev"],
            "mp_id": "",
            "mp_source": parts,
        }
    )
    return pd.concat([current, legacy], ignore_index=True)


def build() -> pd.DataFrame:
    """The known-composition table: one row per canonical key, sorted by key."""
    sigma = [s for s in (source() for source in CONDUCTIVITY_SOURCES) if s is not None]
    conductivity = pd.concat(sigma, ignore_index=True).drop_duplicates("composition_key")
    table = conductivity.merge(materials_project(), on="composition_key", how="outer")
    table["sigma_n"] = table["sigma_n"].fillna(0).astype("int32")
    for column in ("sigma_source", "mp_id", "mp_source"):
        table[column] = table[column].fillna("").astype(str)
    for column in ("log10_sigma_s_per_cm", "e_hull_ev_per_atom", "band_gap_ev"):
        table[column] = table[column].astype("float32" if column != "log10_sigma_s_per_cm" else "float64")
    return table.sort_values("composition_key").reset_index(drop=True)


def write(output_dir: Path) -> dict:
    """Build and write the Parquet artefact and its manifest; return the manifest."""
    table = build()
    output_dir.mkdir(parents=True, exist_ok=True)
    table.to_parquet(output_dir / PARQUET_NAME, index=False, compression="zstd")
    root = data_dir()
    manifest = {
        "built_by": "python -m sse_screen.experiments.known_compositions",
        "key": "sse_screen.features.canonical.canonical_key",
        "rows": len(table),
        "with_measured_conductivity": int((table["sigma_n"] > 0).sum()),
        "with_e_hull": int(table["e_hull_ev_per_atom"].notna().sum()),
        "with_band_gap": int(table["band_gap_ev"].notna().sum()),
        "sources_sha256": {name: sha256_file(root / name) for name in SOURCE_FILES},
        "not_included": {"mchaffie": "McHaffie et al. conductivities are not in data/ yet"},
    }
    (output_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    args = parser.parse_args(argv)
    manifest = write(args.output_dir)
    size = (args.output_dir / PARQUET_NAME).stat().st_size
    print(f"{manifest['rows']:,} compositions ({size / 1e6:.2f} MB) -> {args.output_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
