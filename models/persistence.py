"""Safe persistence of trained model bundles: xgboost UBJ boosters plus a JSON metadata file.

A *bundle* is a directory::

    <bundle>/
        metadata.json      # task, features, target and unit, versions, data hash, metrics, uncertainty
        <name>.ubj         # one xgboost booster per entry of metadata["boosters"]

No pickle anywhere: a bundle can be inspected with a text editor and loaded by any xgboost of the same or a
newer major version. Shipped defaults live in ``models/shipped/<task>/`` (see :func:`shipped_model_dir`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import xgboost

Task = Literal["stability", "band_gap", "conductivity"]
TASKS: tuple[str, ...] = get_args(Task)

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"
BOOSTER_SUFFIX = ".ubj"
SHIPPED_ROOT = Path(__file__).resolve().parent / "shipped"

#: Keys the caller must provide in ``metadata`` (the rest is added by :func:`save_bundle`).
REQUIRED_METADATA: dict[str, type | tuple[type, ...]] = {
    "task": str,
    "features_preset": str,
    "feature_names": list,
    "target_name": str,
    "target_unit": str,
    "training_data_sha256": str,
    "metrics": dict,
}
_BOOSTER_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")
ModelType = Literal["property", "conductivity"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)
#: Metadata key naming the estimator class a bundle holds (written by every model's ``save``).
MODEL_TYPE_KEY = "model_type"


class BundleError(ValueError):
    """A model bundle is missing, malformed, for another task or from an incompatible version."""


@dataclass(frozen=True)
class ModelSource:
    """Where a loaded bundle came from, for ``GET /api/models`` and logs.

    Attributes:
        origin: How it was selected: ``"argument"``, ``"env:<VAR>"`` or ``"shipped"``.
        uri: The model URI or local path that was loaded.
        registered_model: Registered model name, for ``models:/`` URIs.
        version: Registered model version, for ``models:/`` URIs.
        alias: Registry alias used in the URI (e.g. ``"champion"``), if any.
        run_id: MLflow run that logged the model, if known.
    """

    origin: str
    uri: str
    registered_model: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None

    def describe(self) -> str:
        """Return a one-line human-readable description, e.g. for CLI output."""
        text = f"{self.uri} (from {self.origin})"
        if self.version is not None:
            text += f", version {self.version}"
        return text


@dataclass(frozen=True)
class Bundle:
    """A loaded model bundle.

    Attributes:
        boosters: Boosters by name (e.g. ``{"mean": ...}``), loaded from UBJ files.
        metadata: The parsed ``metadata.json``.
        source: Where the bundle was loaded from; set by the loader.
        files: Other files the bundle carries (``metadata["files"]``, e.g. ``reference_phases``), as bytes,
            their SHA-256 checked.
    """

    boosters: dict[str, xgboost.Booster]
    metadata: dict[str, Any]
    source: ModelSource | None = field(default=None, compare=False)
    files: dict[str, bytes] = field(default_factory=dict, compare=False)

    @property
    def task(self) -> str:
        """The bundle's task name (one of :data:`TASKS`)."""
        return self.metadata["task"]

    @property
    def feature_names(self) -> list[str]:
        """The feature columns the boosters expect, in order."""
        return list(self.metadata["feature_names"])


def sha256_file(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file: the *data version* recorded with every model.

    Args:
        path: File to hash (e.g. the training table).
        chunk_bytes: Read size in bytes.

    Returns:
        64 lowercase hex characters.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def check_task(task: str) -> str:
    """Return ``task`` unchanged if it is known, else raise ``ValueError``."""
    if task not in TASKS:
        raise ValueError(f"Unknown {task=}; expected one of {', '.join(TASKS)}")
    return task


def shipped_model_dir(task: str, *, root: str | Path | None = None) -> Path:
    """Return the directory of the shipped default bundle for ``task`` (it may not exist yet).

    Args:
        task: One of :data:`TASKS`.
        root: Folder holding one bundle per task; defaults to the package's ``models/shipped``.
    """
    return Path(root if root is not None else SHIPPED_ROOT) / check_task(task)


def model_type_of(metadata: dict[str, Any]) -> str | None:
    """Which estimator a bundle holds: ``"property"``, ``"conductivity"`` or None (raw boosters only).

    The explicit ``model_type`` wins. Bundles written before it existed follow the legacy rule: a
    ``conductivity_params`` key means a conductivity model, a ``params`` key a property model.

    Raises:
        BundleError: ``model_type`` is present but not one of :data:`MODEL_TYPES`.
    """
    if MODEL_TYPE_KEY in metadata:
        kind = metadata[MODEL_TYPE_KEY]
        if kind not in MODEL_TYPES:
            raise BundleError(f"metadata['{MODEL_TYPE_KEY}'] is {kind!r}; expected one of {', '.join(MODEL_TYPES)}")
        return kind
    if "conductivity_params" in metadata:
        return "conductivity"
    if "params" in metadata:
        return "property"
    return None


def _library_versions() -> dict[str, str]:
    import numpy
    import sklearn

    return {
        "python": platform.python_version(),
        "xgboost": xgboost.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _validate_caller_metadata(metadata: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise BundleError(f"metadata is missing required keys: {', '.join(missing)}")
    for key, kind in REQUIRED_METADATA.items():
        if not isinstance(metadata[key], kind):
            raise BundleError(f"metadata[{key!r}] must be {kind}, got {type(metadata[key]).__name__}")
    check_task(metadata["task"])
    if not all(isinstance(name, str) for name in metadata["feature_names"]):
        raise BundleError("metadata['feature_names'] must be a list of strings")


def save_bundle(
    path: str | Path,
    *,
    boosters: dict[str, xgboost.Booster],
    metadata: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Save boosters (UBJ) and metadata (JSON) as a bundle directory.

    Args:
        path: Bundle directory to create.
        boosters: Boosters by name; names become file names (letters, digits, ``_`` and ``-``).
        metadata: Must contain :data:`REQUIRED_METADATA`; may add anything JSON-serialisable
            (e.g. ``"uncertainty": {"conformal_q80": 0.07}``). ``schema_version``, ``created_at``,
            ``library_versions`` and ``boosters`` are filled in here.
        overwrite: Replace an existing bundle in ``path`` instead of refusing.

    Returns:
        The bundle directory.

    Raises:
        BundleError: Bad metadata, bad booster names, feature names that disagree with the boosters, or
            an existing bundle without ``overwrite``.
    """
    path = Path(path)
    _validate_caller_metadata(metadata)
    if not boosters:
        raise BundleError("a bundle needs at least one booster")
    for name, booster in boosters.items():
        if not _BOOSTER_NAME.match(name):
            raise BundleError(f"booster name {name!r} must match {_BOOSTER_NAME.pattern}")
        if not isinstance(booster, xgboost.Booster):
            raise BundleError(f"boosters[{name!r}] is {type(booster).__name__}, expected xgboost.Booster")
        names = booster.feature_names
        # an auxiliary booster may use the leading columns only (e.g. composition features of a formation-energy model)
        if names is not None and list(names) != list(metadata["feature_names"])[: len(names)]:
            raise BundleError(f"booster {name!r} was trained on other feature names than metadata says")
    if (path / METADATA_FILE).exists() and not overwrite:
        raise BundleError(f"{path} already holds a bundle; pass overwrite=True to replace it")

    path.mkdir(parents=True, exist_ok=True)
    files = {name: f"{name}{BOOSTER_SUFFIX}" for name in boosters}
    for name, booster in boosters.items():
        booster.save_model(str(path / files[name]))
    full = {
        **metadata,
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "library_versions": _library_versions(),
        "boosters": files,
    }
    # Metadata last: a bundle without metadata.json is never mistaken for a complete one.
    (path / METADATA_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _major(version: str) -> int:
    return int(version.split(".", 1)[0])


def load_bundle(path: str | Path, *, task: str | None = None, source: ModelSource | None = None) -> Bundle:
    """Load and validate a bundle directory.

    Args:
        path: Bundle directory (holding ``metadata.json``).
        task: If given, the bundle must be for this task.
        source: Provenance to attach to the returned bundle.

    Returns:
        The loaded :class:`Bundle`.

    Raises:
        BundleError: Missing directory or files, malformed metadata, wrong task, a bundle written by a newer
            schema or a newer xgboost major version than the one installed.
    """
    path = Path(path)
    meta_path = path / METADATA_FILE
    if not path.is_dir():
        raise BundleError(f"no model bundle at {path}: directory does not exist")
    if not meta_path.is_file():
        raise BundleError(f"no model bundle at {path}: {METADATA_FILE} is missing")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{meta_path} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise BundleError(f"{meta_path} must hold a JSON object")

    schema = metadata.get("schema_version")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise BundleError(
            f"{meta_path}: schema_version {schema!r} is not supported (this sse-screen reads <= {SCHEMA_VERSION});"
            " upgrade sse-screen"
        )
    _validate_caller_metadata(metadata)
    if task is not None and metadata["task"] != check_task(task):
        raise BundleError(f"{path} holds a {metadata['task']!r} model, not {task!r}")
    saved_xgb = metadata.get("library_versions", {}).get("xgboost")
    if saved_xgb and _major(saved_xgb) > _major(xgboost.__version__):
        raise BundleError(
            f"{path} was saved with xgboost {saved_xgb}, newer than the installed {xgboost.__version__}; "
            "upgrade xgboost"
        )
    files = metadata.get("boosters")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{meta_path}: 'boosters' must map booster names to file names")

    boosters: dict[str, xgboost.Booster] = {}
    for name, filename in files.items():
        file = path / filename
        if Path(filename).name != filename or not file.is_file():
            raise BundleError(f"{path}: booster file {filename!r} for {name!r} is missing")
        booster = xgboost.Booster()
        try:
            booster.load_model(str(file))
        except xgboost.core.XGBoostError as exc:
            raise BundleError(f"{file} is not a valid xgboost model: {exc}") from None
        boosters[name] = booster
    return Bundle(boosters=boosters, metadata=metadata, source=source, files=_load_files(path, metadata))


def _load_files(path: Path, metadata: dict[str, Any]) -> dict[str, bytes]:
    """Read the non-booster files of ``metadata["files"]`` (``{name: {"file": ..., "sha256": ...}}``), hash-checked."""
    files: dict[str, bytes] = {}
    for name, entry in (metadata.get("files") or {}).items():
        filename = entry.get("file", "") if isinstance(entry, dict) else ""
        file = path / filename
        if not filename or Path(filename).name != filename or not file.is_file():
            raise BundleError(f"{path}: file {filename!r} for {name!r} is missing")
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise BundleError(f"{file}: SHA-256 differs from metadata.json (the file was changed or is incomplete)")
        files[name] = data
    return files
