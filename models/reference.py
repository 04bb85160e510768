"""The known phases stability predictions are placed against, as an artefact inside the stability bundle.

A stability bundle carries ``reference_phases.npz`` (:class:`features.reference_phases.ReferencePhases`: the lowest
formation energy per composition of ``data/mp_e_form``, elements at 0 eV/atom; about 2 MB), recorded in its
``metadata.json`` under ``files.reference_phases`` with its SHA-256, format version, row count and the SHA-256 of the
CSV it was built from. At prediction time the hull comes only from that artefact (:func:`hull_from_bundle`); nothing
here reads ``data/`` except the training path (:func:`training_reference_hull`) and :func:`attach_reference` when it
builds a new artefact.

Add the artefact to an existing bundle (e.g. one trained before bundles carried it)::

    python -m sse_screen.models.reference --add-to models/shipped/stability
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import threading
from functools import cache
from pathlib import Path
from typing import Any

from sse_screen.features.reference_hull import ReferenceHull
from sse_screen.features.reference_phases import FORMAT_VERSION, ReferencePhases
from sse_screen.models.persistence import METADATA_FILE, Bundle, BundleError
from sse_screen.models.registry import ModelNotFoundError

__all__ = [
    "REFERENCE_FILE",
    "REFERENCE_KEY",
    "MissingReferenceError",
    "add_reference_command",
    "attach_reference",
    "hull_from_bundle",
    "hull_of",
    "reference_hull",
    "save_reference",
    "training_reference_hull",
]

#: File name of the artefact inside a bundle.
REFERENCE_FILE = "reference_phases.npz"
#: Key under ``metadata["files"]``.
REFERENCE_KEY = "reference_phases"
_HULLS: dict[str, ReferenceHull] = {}  # by artefact SHA-256: bundles with the same phases share one hull and cache
_LOCK = threading.Lock()


class MissingReferenceError(BundleError, ModelNotFoundError):
    """A stability bundle without its reference phases: the model cannot be served (the message says how to fix it)."""


def _source_csv() -> Path:
    from sse_screen.features.datasets import data_dir

    return data_dir() / "mp_e_form" / "mp_e_form.csv"


@cache
def training_reference_hull() -> ReferenceHull:
    """Known phases of ``data/mp_e_form`` (lowest-energy polymorph per composition): for training only."""
    import pandas as pd

    table = pd.read_csv(_source_csv(), keep_default_na=False)  # the formula "NaN" is sodium nitride
    return ReferenceHull(table["formula"].astype(str).tolist(), table["target"].to_numpy(dtype=float))


def reference_hull() -> ReferenceHull:
    """Alias of :func:`training_reference_hull` (the training data's known phases; never used to predict)."""
    return training_reference_hull()


def hull_of(model: Any) -> ReferenceHull:
    """A stability model's known phases: its ``reference_``, else (fitting) :func:`training_reference_hull`.

    A loaded model's ``reference_`` is its bundle's artefact; a model being fitted gets the training data's phases,
    keeps them and saves them with itself.
    """
    if getattr(model, "reference_", None) is None:
        model.reference_ = training_reference_hull()
    return model.reference_


def save_reference(bundle_dir: Path, model: Any) -> Path:
    """Write a model's known phases into its freshly saved bundle (:func:`attach_reference`); returns the bundle."""
    attach_reference(bundle_dir, hull_of(model).phases)
    return bundle_dir


def add_reference_command(bundle_dir: str | Path) -> str:
    """The command that adds the artefact to ``bundle_dir`` (quoted in errors)."""
    return f"python -m sse_screen.models.reference --add-to {bundle_dir}"


def attach_reference(
    bundle_dir: str | Path, phases: ReferencePhases | None = None, *, source_sha256: str | None = None
) -> dict[str, Any]:
    """Write ``reference_phases.npz`` into a bundle and record it in its ``metadata.json``.

    Args:
        bundle_dir: A saved bundle (holding ``metadata.json``).
        phases: The phases to write; None: build them from ``data/mp_e_form`` (what the stability model trains on).
        source_sha256: SHA-256 of the data the phases came from (computed from ``data/mp_e_form`` when
            ``phases`` is None).

    Returns:
        The metadata entry written under ``files.reference_phases``.

    Raises:
        BundleError: ``bundle_dir`` holds no bundle.
    """
    from sse_screen.models.persistence import sha256_file

    bundle_dir = Path(bundle_dir)
    meta_path = bundle_dir / METADATA_FILE
    if not meta_path.is_file():
        raise BundleError(f"no model bundle at {bundle_dir}: {METADATA_FILE} is missing")
    trained_on_data = training_reference_hull.cache_info().currsize and phases is training_reference_hull().phases
    if phases is None or trained_on_data:
        phases = training_reference_hull().phases
        source_sha256 = sha256_file(_source_csv())
    data = phases.to_bytes()
    (bundle_dir / REFERENCE_FILE).write_bytes(data)
    entry = {
        "file": REFERENCE_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "format_version": FORMAT_VERSION,
        "n_phases": len(phases),
        "source": "data/mp_e_form/mp_e_form.csv (lowest formation energy per composition, elements at 0 eV/atom)",
        "source_sha256": source_sha256 or "",
    }
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    metadata.setdefault("files", {})[REFERENCE_KEY] = entry
    # metadata last and atomically: a reader never sees an entry whose file is not complete
    with tempfile.NamedTemporaryFile("w", dir=bundle_dir, delete=False, suffix=".tmp", encoding="utf-8") as tmp:
        tmp.write(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    os.replace(tmp.name, meta_path)
    return entry


def hull_from_bundle(bundle: Bundle) -> ReferenceHull:
    """The reference hull a stability bundle carries (shared between bundles with the same artefact).

    Raises:
        BundleError: The bundle has no reference-phases artefact (with the command that adds it) or an unreadable one.
    """
    where = bundle.source.uri if bundle.source is not None else "<bundle directory>"
    data = bundle.files.get(REFERENCE_KEY)
    if data is None:
        raise MissingReferenceError(
            f"the {bundle.task} model at {where} carries no reference phases ({REFERENCE_FILE}), which its "
            f"reference-hull features need; add them with: {add_reference_command(where)}"
        )
    digest = hashlib.sha256(data).hexdigest()
    with _LOCK:
        hull = _HULLS.get(digest)
    if hull is None:
        try:
            hull = ReferenceHull.from_phases(ReferencePhases.from_bytes(data))
        except ValueError as exc:
            raise BundleError(
                f"{where}: {REFERENCE_FILE}: {exc}; rebuild it with: {add_reference_command(where)}"
            ) from None
        with _LOCK:
            hull = _HULLS.setdefault(digest, hull)
    return hull


def main(argv: list[str] | None = None) -> int:
    """``python -m sse_screen.models.reference --add-to BUNDLE``: add the reference phases to a bundle."""
    parser = argparse.ArgumentParser(
        prog="python -m sse_screen.models.reference",
        description="Write the reference phases (data/mp_e_form, lowest energy per composition) into a model bundle.",
    )
    parser.add_argument("--add-to", required=True, metavar="BUNDLE", help="bundle directory (holds metadata.json)")
    args = parser.parse_args(argv)
    try:
        entry = attach_reference(args.add_to)
    except (BundleError, OSError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    size = (Path(args.add_to) / REFERENCE_FILE).stat().st_size
    where = Path(args.add_to) / REFERENCE_FILE
    print(f"wrote {where}: {entry['n_phases']:,} phases, {size / 1e6:.2f} MB, sha256 {entry['sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
