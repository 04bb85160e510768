"""MLflow tracking for training scripts: where to track, a preflight check, run logging and registration.

A training script does::

    experiment_id = setup_tracking("sse-screen-stability")   # preflight first: fails fast, trains nothing
    with tracked_run(experiment_id):
        ...fit, evaluate, save_bundle(...)...
        result = log_and_register(task="stability", estimator=model, metrics={"val_mae": 0.1},
                                  baseline=shipped_baseline("stability", "val_mae", data_path), ...)

Tracking store: ``MLFLOW_TRACKING_URI`` when set (a team's ``mlflow server``), else the local sqlite store
``$SSE_SCREEN_HOME/mlflow.db`` (default ``~/.local/share/sse-screen/mlflow.db``) with artifacts in the sibling
folder ``mlartifacts/``; never ``./mlruns``. The registry is ``MLFLOW_REGISTRY_URI`` when set, else the tracking
store (``models.registry.mlflow_uris``, the same resolution that serving uses). Telemetry is disabled.

Registered models are named ``sse-screen-<task>``. A new version gets the alias ``champion`` only when its
selection metric beats the current champion's *and* the baseline's (the shipped default, scored on the same
validation data); a smoke run (``--quick``/``--limit``) is never champion. Anything else is ``candidate``.

Trainings may run side by side on one store (:mod:`experiments.store_access`): the store and the experiment are
initialised under a file lock, "already exists" counts as success, SQLite's "database is locked" is retried with
backoff, and the champion is decided under the same lock (compare-and-set: two finishing runs cannot both win).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sse_screen.experiments.promotion import (
    CANDIDATE,
    CHAMPION,
    Baseline,
    RegistrationError,
    RegistrationResult,
    register_version,
    shipped_baseline,
)
from sse_screen.experiments.store_access import (
    StoreLockTimeout,
    is_already_exists,
    retry_locked,
    sqlite_path,
    store_lock,
)
from sse_screen.models.persistence import load_bundle, sha256_file
from sse_screen.models.registry import configure_mlflow_client, mlflow_uris, tracking_uri

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "CANDIDATE",
    "CHAMPION",
    "Baseline",
    "RegistrationError",
    "RegistrationResult",
    "TrackingUnavailable",
    "log_and_register",
    "preflight",
    "registered_model_name",
    "setup_tracking",
    "shipped_baseline",
    "tracked_run",
    "tracking_uri",
]

PYFUNC_MODEL_FILE = Path(__file__).resolve().with_name("pyfunc_model.py")


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached or written; the message says what to do. Nothing was trained."""


def registered_model_name(task: str) -> str:
    """Return the registry name of a task's model, e.g. ``"sse-screen-stability"``."""
    return f"sse-screen-{task.replace('_', '-')}"


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
        folder = sqlite_path(uri).parent
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
    :func:`preflight`, then, under the store's file lock (:func:`experiments.store_access.store_lock`), opens the
    tracking and registry stores (which migrates a fresh database exactly once) and selects the experiment,
    creating it if needed ("already exists" from a process that won the race is success). Sets the tracking URI.
    For a sqlite store used without a server the experiment's artifacts go to the folder
    ``mlartifacts/<experiment>`` next to the database, not to MLflow's default ``./mlruns``.

    Args:
        experiment_name: MLflow experiment, e.g. ``"sse-screen-stability"``.
        uri: Tracking URI; defaults to :func:`tracking_uri`.

    Raises:
        TrackingUnavailable: From :func:`preflight`, or the store cannot be opened or initialised.
    """
    configure_mlflow_client()
    uri = preflight(uri)
    import mlflow

    tracking, registry = mlflow_uris(uri)
    try:
        experiment_id = _initialise_store(tracking, registry, experiment_name)
    except StoreLockTimeout as exc:
        raise TrackingUnavailable(f"{exc}. Nothing was trained or registered.") from None
    except Exception as exc:  # a store that cannot be opened: one clear line, not a traceback
        raise TrackingUnavailable(
            f"MLflow tracking store {tracking} could not be opened or initialised: {exc}. "
            "Nothing was trained or registered."
        ) from None
    mlflow.set_tracking_uri(tracking)
    retry_locked(mlflow.set_experiment, experiment_id=experiment_id)
    return experiment_id


def _initialise_store(tracking: str, registry: str, experiment_name: str) -> str:
    """Open both stores and get or create the experiment, each store under its lock; return the experiment id."""
    from mlflow.tracking import MlflowClient

    with store_lock(tracking):
        # Creating the client opens the tracking store: a fresh database is migrated here, by one process only.
        client = retry_locked(MlflowClient, tracking_uri=tracking, registry_uri=registry)
        retry_locked(client.search_experiments, max_results=1)
        experiment = retry_locked(client.get_experiment_by_name, experiment_name)
        if experiment is None:
            location = None
            if tracking.startswith("sqlite:///"):  # no server: MLflow would default to ./mlruns in the working dir
                location = (sqlite_path(tracking).parent / "mlartifacts" / experiment_name).resolve().as_uri()
            try:
                experiment_id = retry_locked(client.create_experiment, experiment_name, artifact_location=location)
            except Exception as exc:
                if not is_already_exists(exc):  # created meanwhile by a process on another machine: fine
                    raise
                experiment_id = retry_locked(client.get_experiment_by_name, experiment_name).experiment_id
        else:
            experiment_id = experiment.experiment_id
        if registry == tracking:
            retry_locked(client.search_registered_models, max_results=1)
    if registry != tracking:
        with store_lock(registry):
            retry_locked(client.search_registered_models, max_results=1)
    return str(experiment_id)


@contextlib.contextmanager
def tracked_run(experiment_id: str, **kwargs: Any) -> Iterator[Any]:
    """``mlflow.start_run`` / ``end_run`` with SQLite's "database is locked" retried (trainings side by side).

    Args:
        experiment_id: From :func:`setup_tracking`.
        **kwargs: Passed to ``mlflow.start_run`` (``nested=True``, ``run_name=...``).

    Yields:
        The active run. It ends ``FINISHED``, or ``FAILED`` when the block raised.
    """
    import mlflow

    run = retry_locked(mlflow.start_run, experiment_id=experiment_id, **kwargs)
    try:
        yield run
    except BaseException:
        with contextlib.suppress(Exception):  # the block's own failure is the one to report
            retry_locked(mlflow.end_run, "FAILED")
        raise
    retry_locked(mlflow.end_run, "FINISHED")


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
    baseline: Baseline | None = None,
    smoke_run: bool = False,
) -> RegistrationResult:
    """Log a fitted model's run to the active MLflow run, then register and promote it.

    Logs ``estimator.get_params()`` as params, ``metrics``, each figure as ``plots/<name>.png``, the data
    version (SHA-256 of ``data_path``) as param ``data_sha256`` and tag ``data_version``, and the model as a
    models-from-code pyfunc (:mod:`experiments.pyfunc_model`) with the bundle as artifact, a signature, an
    input example and explicit pip requirements. Then registers a new version of ``registered_model`` and, under
    the store's lock (:func:`experiments.promotion.register_version`), points ``champion`` at it if its
    ``selection_metric`` beats the current champion's and ``baseline``'s and it is not a smoke run; else
    ``candidate``. Every store write retries SQLite's "database is locked".

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
        baseline: A reference to beat as well, scored on the same validation data (:func:`shipped_baseline`);
            ``None`` for none (the synthetic demo).
        smoke_run: A ``--quick``/``--limit`` run: registered as ``candidate``, never ``champion``.

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
        raise RuntimeError("log_and_register must be called inside `with tracked_run(...)` (an active run)")
    value = metrics.get(selection_metric)
    if value is None or not math.isfinite(value):
        raise ValueError(f"metrics must hold a finite {selection_metric!r}, got {value!r}")
    bundle_dir = Path(bundle_dir)
    load_bundle(bundle_dir, task=task)  # refuse a broken bundle before logging anything
    data_hash = sha256_file(data_path)

    retry_locked(mlflow.log_params, {**_loggable_params(estimator.get_params()), "data_sha256": data_hash})
    retry_locked(mlflow.log_metrics, metrics)
    tags = {"task": task, "data_version": data_hash, "data_file": Path(data_path).name, "smoke_run": str(smoke_run)}
    retry_locked(mlflow.set_tags, tags)
    for name, figure in (figures or {}).items():
        retry_locked(mlflow.log_figure, figure, f"plots/{name}.png")

    wrapper = BundleModel()
    wrapper.load_context(PythonModelContext(artifacts={"bundle": str(bundle_dir)}, model_config=None))
    example = input_example.head(5)
    model_info = retry_locked(
        mlflow.pyfunc.log_model,
        name="model",
        python_model=str(PYFUNC_MODEL_FILE),
        artifacts={"bundle": str(bundle_dir)},
        signature=infer_signature(example, wrapper.predict(None, example)),
        input_example=example,
        pip_requirements=_pip_requirements(),
    )
    tracking, registry = mlflow_uris(mlflow.get_tracking_uri())
    return register_version(
        MlflowClient(tracking_uri=tracking, registry_uri=registry),
        lock_uri=registry,
        name=registered_model or registered_model_name(task),
        model_info=model_info,
        metric=(selection_metric, float(value)),
        greater_is_better=greater_is_better,
        baseline=baseline,
        smoke_run=smoke_run,
    )
