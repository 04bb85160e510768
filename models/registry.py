"""The one place that decides which model bundle a task is served with.

Loading order for a task (e.g. ``"stability"``):

1. the explicit ``model_uri`` argument (a CLI ``--model`` option or an API setting);
2. the environment variable ``SSE_SCREEN_<TASK>_MODEL_URI`` (e.g. ``SSE_SCREEN_STABILITY_MODEL_URI``);
3. the shipped default bundle in ``models/shipped/<task>/``.

A URI is either a local bundle directory or an MLflow URI (``models:/sse-screen-stability@champion``,
``models:/sse-screen-stability/3``, ``runs:/<run_id>/model``). A *configured* source (1 or 2) that fails to load
raises instead of silently falling back to the shipped default: serving a different model than the one asked for
would be a wrong answer that looks right. MLflow is imported lazily, only for MLflow URIs.

MLflow URIs are resolved *and downloaded* against :func:`mlflow_uris` (``MLFLOW_TRACKING_URI`` when set, else the
local store documented at :func:`tracking_uri`; the registry is ``MLFLOW_REGISTRY_URI`` when set, else the tracking
store), the one resolution shared with ``experiments.tracking``. MLflow's own globals are never consulted: its
``models:/`` download looks the version up in MLflow's *default* store (a stray ``./mlflow.db``), so the version is
resolved here and its artifact location downloaded directly.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sse_screen.models.persistence import (
    METADATA_FILE,
    Bundle,
    BundleError,
    ModelSource,
    check_task,
    load_bundle,
    shipped_model_dir,
)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

HOME_ENV = "SSE_SCREEN_HOME"
MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
#: Bounded MLflow client retries (env var -> value), applied unless the user set them.
CLIENT_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")
_LOGGED_MODEL_URI = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]+)/?$")
_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+?)/?$")


class ModelNotFoundError(RuntimeError):
    """No model could be loaded for a task; the message names every source that was tried."""


def sse_screen_home() -> Path:
    """Return the folder for local state: ``$SSE_SCREEN_HOME``, else ``$XDG_DATA_HOME/sse-screen``.

    ``$XDG_DATA_HOME`` defaults to ``~/.local/share``.
    """
    if home := os.environ.get(HOME_ENV):
        return Path(home).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home).expanduser() / "sse-screen"


def tracking_uri() -> str:
    """Return the MLflow tracking URI: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<home>/mlflow.db``.

    ``<home>`` is :func:`sse_screen_home`; ``experiments.tracking.setup_tracking`` puts the local store's
    artifacts in ``<home>/mlartifacts``. Never the deprecated ``./mlruns`` file store.
    """
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    return f"sqlite:///{(sse_screen_home() / 'mlflow.db').resolve()}"


def registry_uri(tracking: str | None = None) -> str:
    """Return the MLflow model-registry URI: ``MLFLOW_REGISTRY_URI`` when set, else the tracking URI.

    Args:
        tracking: The tracking URI in use; defaults to :func:`tracking_uri`.
    """
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking or tracking_uri()


def mlflow_uris(tracking: str | None = None) -> tuple[str, str]:
    """Return ``(tracking URI, registry URI)``: the one resolution used to train, register, resolve and download.

    Args:
        tracking: An explicit tracking URI (``--tracking-uri``); defaults to :func:`tracking_uri`.
    """
    tracking = tracking or tracking_uri()
    return tracking, registry_uri(tracking)


def configure_mlflow_client() -> None:
    """Set this process's MLflow client defaults: telemetry off and bounded retries against a dead server.

    Sets ``MLFLOW_DISABLE_TELEMETRY`` and ``DO_NOT_TRACK`` to ``true``, and :data:`CLIENT_ENV_DEFAULTS`
    (MLflow otherwise retries an unreachable server for minutes: 7 retries, backoff factor 2, 120 s timeout).
    A user's explicit setting wins. MLflow starts its telemetry client at import, so if it is already imported
    the client is re-initialised (which drops it when disabled).
    """
    for key, value in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", **CLIENT_ENV_DEFAULTS}.items():
        os.environ.setdefault(key, value)
    if "mlflow" in sys.modules:
        from mlflow.telemetry import set_telemetry_client

        set_telemetry_client()


def model_uri_env_var(task: str) -> str:
    """Return the environment variable that selects the model of ``task``, e.g. ``SSE_SCREEN_STABILITY_MODEL_URI``."""
    return f"SSE_SCREEN_{check_task(task).upper()}_MODEL_URI"


def _find_bundle_dir(root: Path) -> Path:
    """Return the single bundle directory (holding ``metadata.json`` and boosters) under ``root``."""
    found = sorted(p.parent for p in root.rglob(METADATA_FILE) if any(p.parent.glob("*.ubj")))
    if len(found) != 1:
        what = "no model bundle" if not found else f"{len(found)} model bundles"
        raise BundleError(f"the downloaded artifacts hold {what} (a directory with {METADATA_FILE} and *.ubj)")
    return found[0]


def _run_artifact_location(client: MlflowClient, run_id: str, path: str) -> str:
    """Where ``runs:/<run_id>/<path>`` lives: the run's logged model named ``path`` (MLflow 3), else a run artifact."""
    run = client.get_run(run_id)
    quoted = path.replace("'", "")
    logged = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{quoted}'"
    )
    if logged:
        return logged[0].artifact_location
    return f"{run.info.artifact_uri.rstrip('/')}/{path}"


def _load_mlflow(task: str, uri: str, origin: str) -> Bundle:
    configure_mlflow_client()
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    tracking, registry = mlflow_uris()
    client = MlflowClient(tracking_uri=tracking, registry_uri=registry)
    source = ModelSource(origin=origin, uri=uri)
    try:
        if match := _MODELS_URI.match(uri):
            name, alias = match["name"], match["alias"]
            if alias is not None:
                version = client.get_model_version_by_alias(name, alias)
            else:
                version = client.get_model_version(name, match["version"])
            source = ModelSource(
                origin=origin,
                uri=uri,
                registered_model=name,
                version=str(version.version),
                alias=alias,
                run_id=version.run_id,
            )
            # The exact version's artifact location, from *our* registry (an alias moved meanwhile cannot give us
            # a different model, and MLflow's default store is never consulted).
            download_uri = client.get_model_version_download_uri(name, str(version.version))
        elif logged := _LOGGED_MODEL_URI.match(uri):
            download_uri = client.get_logged_model(logged["model_id"]).artifact_location
        elif runs := _RUNS_URI.match(uri):
            source = ModelSource(origin=origin, uri=uri, run_id=runs["run_id"])
            download_uri = _run_artifact_location(client, runs["run_id"], runs["path"])
        else:
            download_uri = uri
        with tempfile.TemporaryDirectory(prefix="sse-screen-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=download_uri, dst_path=tmp, tracking_uri=tracking, registry_uri=registry
            )
            # Boosters are read into memory, so the temporary download can go.
            return load_bundle(_find_bundle_dir(Path(local)), task=task, source=source)
    except MlflowException as exc:
        raise BundleError(f"MLflow at {registry} could not provide {uri}: {exc.message}") from None


def _load(task: str, uri: str, origin: str) -> Bundle:
    if uri.startswith(MLFLOW_SCHEMES):
        return _load_mlflow(task, uri, origin)
    path = Path(uri.removeprefix("file://")).expanduser()
    return load_bundle(path, task=task, source=ModelSource(origin=origin, uri=str(path)))


def resolve_model(task: str, *, model_uri: str | None = None, shipped_root: str | Path | None = None) -> Bundle:
    """Load the bundle that serves ``task``: explicit URI, else env var, else the shipped default.

    Args:
        task: One of ``"stability"``, ``"band_gap"``, ``"conductivity"``.
        model_uri: Explicit model: a local bundle directory or an MLflow URI such as
            ``models:/sse-screen-stability@champion``.
        shipped_root: Folder holding the shipped bundles (one sub-folder per task); defaults to the
            package's ``models/shipped``. Tests point it elsewhere.

    Returns:
        The loaded bundle; ``bundle.source`` records where it came from (origin, URI, registered version,
        alias, run id).

    Raises:
        ValueError: Unknown task.
        ModelNotFoundError: The selected source could not be loaded; the message lists what was tried.
    """
    env_var = model_uri_env_var(task)
    tried: list[str] = []
    if model_uri:
        origin, uri = "argument", model_uri
    elif os.environ.get(env_var):
        origin, uri = f"env:{env_var}", os.environ[env_var]
        tried.append("no model_uri argument")
    else:
        origin, uri = "shipped", str(shipped_model_dir(task, root=shipped_root))
        tried += ["no model_uri argument", f"{env_var} not set"]
    try:
        return _load(task, uri, origin)
    except BundleError as exc:
        tried.append(f"{origin} {uri}: {exc}")
        raise ModelNotFoundError(f"No {task} model could be loaded. Tried: " + "; ".join(tried)) from None
