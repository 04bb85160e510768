"""MLflow tracking for training scripts: where to track, a preflight check, run logging and registration.

A training script does::

    experiment_id = setup_tracking("sse-screen-stability")   # preflight first: fails fast, trains nothing
    with mlflow.start_run(experiment_id=experiment_id):
        ...fit, evaluate, save_bundle(...)...
        result = log_and_register(task="stability", estimator=model, metrics={"val_mae": 0.1}, ...)

Tracking store: ``MLFLOW_TRACKING_URI`` when set (a team's ``mlflow server``), else the local sqlite store
``$SSE_SCREEN_HOME/mlflow.db`` (default ``~/.local/share/sse-screen/mlflow.db``) with artifacts in the sibling
folder ``mlartifacts/``; never ``./mlruns``. Telemetry is disabled. Registered models are named
``sse-screen-<task>``; a new version gets the alias ``champion`` only when it beats the current champion's
validation metric, else ``candidate``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sse_screen.models.persistence import load_bundle, sha256_file
from sse_screen.models.registry import configure_mlflow_client, tracking_uri

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from mlflow.tracking import MlflowClient

__all__ = [
    "RegistrationError",
    "RegistrationResult",
    "TrackingUnavailable",
    "log_and_register",
    "preflight",
    "registered_model_name",
    "setup_tracking",
    "tracking_uri",
]

CHAMPION = "champion"
CANDIDATE = "candidate"
PYFUNC_MODEL_FILE = Path(__file__).resolve().with_name("pyfunc_model.py")


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached or written; the message says what to do. Nothing was trained."""


class RegistrationError(RuntimeError):
    """Registering or promoting a model version failed; the version created (if any) was deleted."""


@dataclass(frozen=True)
class RegistrationResult:
    """Outcome of :func:`log_and_register`.

    Attributes:
        registered_model: Registered model name, e.g. ``"sse-screen-stability"``.
        version: The new version number (as MLflow returns it, a string).
        alias: ``"champion"`` or ``"candidate"``.
        run_id: The run that logged the model.
        model_uri: ``models:/<name>/<version>``.
        metric: The selection metric's name and value on validation data.
        previous_champion: Version that held ``champion`` before, if any.
    """

    registered_model: str
    version: str
    alias: str
    run_id: str
    model_uri: str
    metric: tuple[str, float]
    previous_champion: str | None


def registered_model_name(task: str) -> str:
    """Return the registry name of a task's model, e.g. ``"sse-screen-stability"``."""
    return f"sse-screen-{task.replace('_', '-')}"


def _sqlite_path(uri: str) -> Path:
    """Return the database file of a ``sqlite:///`` URI (absolute paths have a fourth slash)."""
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def preflight(uri: str | None = None, *, timeout_s: float = 3.0, attempts: int = 3) -> str:
    """Check the tracking store before any training, and fail fast with a clear message.

    For ``http(s)`` URIs the server's ``/health`` endpoint must answer 200 within ``timeout_s`` in one of
    ``attempts`` tries (1 s apart); for ``sqlite`` URIs the database folder must be creatable and writable.
    Other schemes get a cheap client call.

    Args:
        uri: Tracking URI; defaults to :func:`tracking_uri`.
        timeout_s: Per-request timeout in seconds.
        attempts: Number of tries for http(s) servers.

    Returns:
        The URI that was checked.

    Raises:
        TrackingUnavailable: The store is unreachable or not writable.
    """
    uri = uri or tracking_uri()
    if uri.startswith(("http://", "https://")):
        reason = ""
        for attempt in range(attempts):
            try:
                with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as response:
                    if response.status == 200:
                        return uri
                    reason = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                reason = str(getattr(exc, "reason", exc))
            if attempt + 1 < attempts:
                time.sleep(1.0)
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} is not reachable ({reason}; {attempts} attempts). "
            "Start it, or point MLFLOW_TRACKING_URI at a running server (unset it to use the local store). "
            "Nothing was trained or registered."
        )
    if uri.startswith("sqlite:///"):
        folder = _sqlite_path(uri).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingUnavailable(f"cannot create the tracking folder {folder}: {exc.strerror}") from None
        if not os.access(folder, os.W_OK):
            raise TrackingUnavailable(f"the tracking folder {folder} is not writable; set SSE_SCREEN_HOME")
        return uri
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # any failure here means "cannot track": report it, not a traceback
        raise TrackingUnavailable(f"MLflow tracking store {uri} is not usable: {exc}") from None
    return uri


def setup_tracking(experiment_name: str, *, uri: str | None = None) -> str:
    """Configure MLflow for a training script and return the experiment id.

    Disables telemetry and bounds the client's retries (``models.registry.configure_mlflow_client``), runs
    :func:`preflight`, sets the tracking and registry URI and selects (creating if needed) the experiment.
    For a sqlite store used without a server the experiment's artifacts go to the folder
    ``mlartifacts/<experiment>`` next to the database, not to MLflow's default ``./mlruns``.

    Args:
        experiment_name: MLflow experiment, e.g. ``"sse-screen-stability"``.
        uri: Tracking URI; defaults to :func:`tracking_uri`.

    Raises:
        TrackingUnavailable: From :func:`preflight`.
    """
    configure_mlflow_client()
    uri = preflight(uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        location = None
        if uri.startswith("sqlite:///"):  # no server: MLflow would default to ./mlruns in the working dir
            location = (_sqlite_path(uri).parent / "mlartifacts" / experiment_name).resolve().as_uri()
        experiment_id = mlflow.create_experiment(experiment_name, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _loggable_params(params: dict[str, Any], *, max_chars: int = 500) -> dict[str, Any]:
    """Keep scalar params as they are and shorten the text of the rest (nested estimators, arrays)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = repr(value)[:max_chars]
    return out


def _pip_requirements() -> list[str]:
    import mlflow
    import numpy
    import pandas
    import xgboost

    return [
        f"mlflow=={mlflow.__version__}",
        f"xgboost=={xgboost.__version__}",
        f"numpy=={numpy.__version__}",
        f"pandas=={pandas.__version__}",
    ]


def _champion_metric(client: MlflowClient, name: str, metric: str) -> tuple[str, float] | None:
    """Return (version, metric value) of the current champion, read from its run; None if no champion."""
    version = client.get_registered_model(name).aliases.get(CHAMPION)
    if version is None:
        return None
    champion = client.get_model_version(name, str(version))
    metrics = client.get_run(champion.run_id).data.metrics if champion.run_id else {}
    if metric not in metrics:
        raise RegistrationError(
            f"champion {name} version {champion.version} has no metric {metric!r} in its run "
            f"{champion.run_id}; cannot compare. Use the same selection metric, or move the alias by hand."
        )
    return str(champion.version), float(metrics[metric])


def _register(
    client: MlflowClient, *, name: str, model_info: Any, metric: tuple[str, float], greater_is_better: bool
) -> RegistrationResult:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description="sse-screen model; serve it as models:/NAME@champion")
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    version = client.create_model_version(
        name,
        source=model_info.model_uri,
        run_id=model_info.run_id,
        model_id=model_info.model_id,
        tags={metric[0]: repr(metric[1])},
    ).version
    try:
        current = _champion_metric(client, name, metric[0])
        better = current is None or (metric[1] > current[1] if greater_is_better else metric[1] < current[1])
        alias = CHAMPION if better else CANDIDATE
        client.set_registered_model_alias(name, alias, version)
        client.set_model_version_tag(name, version, "selection_metric", metric[0])
    except BaseException as exc:
        # No half-registered version: remove what we created, then report.
        with contextlib.suppress(Exception):  # the original failure is the one to report
            client.delete_model_version(name, version)
        if isinstance(exc, RegistrationError) or not isinstance(exc, Exception):
            raise
        raise RegistrationError(f"registering {name} version {version} failed and was undone: {exc}") from exc
    return RegistrationResult(
        registered_model=name,
        version=str(version),
        alias=alias,
        run_id=model_info.run_id,
        model_uri=f"models:/{name}/{version}",
        metric=metric,
        previous_champion=current[0] if current else None,
    )


def log_and_register(
    *,
    task: str,
    estimator: Any,
    metrics: dict[str, float],
    bundle_dir: str | Path,
    input_example: pd.DataFrame,
    data_path: str | Path,
    figures: dict[str, Figure] | None = None,
    selection_metric: str = "val_mae",
    greater_is_better: bool = False,
    registered_model: str | None = None,
) -> RegistrationResult:
    """Log a fitted model's run to the active MLflow run, then register and promote it.

    Logs ``estimator.get_params()`` as params, ``metrics``, each figure as ``plots/<name>.png``, the data
    version (SHA-256 of ``data_path``) as param ``data_sha256`` and tag ``data_version``, and the model as a
    models-from-code pyfunc (:mod:`experiments.pyfunc_model`) with the bundle as artifact, a signature, an
    input example and explicit pip requirements. Then registers a new version of ``registered_model`` and
    points ``champion`` at it if its ``selection_metric`` beats the current champion's, else ``candidate``.

    Args:
        task: One of ``"stability"``, ``"band_gap"``, ``"conductivity"``; the bundle must be for it.
        estimator: The fitted estimator (anything with ``get_params``).
        metrics: Metric name -> value; must contain ``selection_metric``. Non-finite values are refused.
        bundle_dir: The saved bundle (``models.persistence.save_bundle``).
        input_example: A few feature rows (the bundle's feature columns).
        data_path: The training data file, hashed as the data version.
        figures: Name -> matplotlib figure (parity plot, feature importance, ...).
        selection_metric: Validation metric used to decide the alias.
        greater_is_better: ``False`` for errors such as MAE, ``True`` for scores such as ROC-AUC.
        registered_model: Registry name; defaults to :func:`registered_model_name`.

    Returns:
        The registered version, its alias and the metric it was judged on.

    Raises:
        RuntimeError: No active run.
        ValueError: ``selection_metric`` missing from ``metrics`` or not finite.
        RegistrationError: Registration or promotion failed; no version of it is left.
    """
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.pyfunc import PythonModelContext
    from mlflow.tracking import MlflowClient

    from sse_screen.experiments.pyfunc_model import BundleModel

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register must be called inside `with mlflow.start_run():`")
    value = metrics.get(selection_metric)
    if value is None or not math.isfinite(value):
        raise ValueError(f"metrics must hold a finite {selection_metric!r}, got {value!r}")
    bundle_dir = Path(bundle_dir)
    load_bundle(bundle_dir, task=task)  # refuse a broken bundle before logging anything
    data_hash = sha256_file(data_path)

    mlflow.log_params({**_loggable_params(estimator.get_params()), "data_sha256": data_hash})
    mlflow.log_metrics(metrics)
    mlflow.set_tags({"task": task, "data_version": data_hash, "data_file": Path(data_path).name})
    for name, figure in (figures or {}).items():
        mlflow.log_figure(figure, f"plots/{name}.png")

    wrapper = BundleModel()
    wrapper.load_context(PythonModelContext(artifacts={"bundle": str(bundle_dir)}, model_config=None))
    example = input_example.head(5)
    model_info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PYFUNC_MODEL_FILE),
        artifacts={"bundle": str(bundle_dir)},
        signature=infer_signature(example, wrapper.predict(None, example)),
        input_example=example,
        pip_requirements=_pip_requirements(),
    )
    client = MlflowClient(tracking_uri=mlflow.get_tracking_uri(), registry_uri=mlflow.get_registry_uri())
    return _register(
        client,
        name=registered_model or registered_model_name(task),
        model_info=model_info,
        metric=(selection_metric, float(value)),
        greater_is_better=greater_is_better,
    )
