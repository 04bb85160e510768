"""Which registered version serves: register a version and decide ``champion`` or ``candidate``, atomically.

A version becomes ``champion`` only if

1. it is not a smoke run (``--quick`` / ``--limit``: a few seconds of training is never the served model);
2. its selection metric beats the baseline's (the shipped default, :func:`shipped_baseline`, scored on the same
   validation data; an unknown baseline promotes nothing automatically);
3. it beats the current champion's metric (read from the champion's run).

Otherwise it becomes ``candidate``. The decision and the alias move happen under the store's file lock
(:func:`experiments.store_access.store_lock`), so it is a compare-and-set: of two runs finishing at once, the second
compares against the first's result, and at most one of them takes ``champion``.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sse_screen.experiments.store_access import StoreLockTimeout, is_already_exists, retry_locked, store_lock
from sse_screen.models.persistence import METADATA_FILE, sha256_file, shipped_model_dir

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CANDIDATE = "candidate"


class RegistrationError(RuntimeError):
    """Registering or promoting a model version failed; the version created (if any) was deleted."""


@dataclass(frozen=True)
class RegistrationResult:
    """Outcome of ``experiments.tracking.log_and_register``.

    Attributes:
        registered_model: Registered model name, e.g. ``"sse-screen-stability"``.
        version: The new version number (as MLflow returns it, a string).
        alias: ``"champion"`` or ``"candidate"``.
        run_id: The run that logged the model.
        model_uri: ``models:/<name>/<version>``.
        metric: The selection metric's name and value on validation data.
        previous_champion: Version that held ``champion`` before, if any.
        reason: Why the version got its alias, in one sentence (the training command prints it).
    """

    registered_model: str
    version: str
    alias: str
    run_id: str
    model_uri: str
    metric: tuple[str, float]
    previous_champion: str | None
    reason: str = ""


@dataclass(frozen=True)
class Baseline:
    """A reference a new version must beat, besides the current champion, to become champion.

    Attributes:
        label: What it is, e.g. ``"the shipped default"``.
        value: Its selection metric on the same validation data; ``None`` when unknown (then no version
            becomes champion automatically, and ``note`` says why).
        note: Why ``value`` is unknown.
    """

    label: str
    value: float | None
    note: str = ""


def shipped_baseline(task: str, metric: str, data_path: str | Path, *, root: str | Path | None = None) -> Baseline:
    """The shipped default's ``metric`` for ``task``, read from its ``metadata.json`` (no model is loaded).

    The training scripts score the shipped bundle's metric on the same validation data as a new run only when
    both were trained from the same data file, so its ``training_data_sha256`` must match ``data_path``'s;
    otherwise the value is unknown.

    Args:
        task: ``"stability"``, ``"band_gap"`` or ``"conductivity"``.
        metric: Selection metric (a key of the metadata's ``metrics``), e.g. ``"val_mae"`` or ``"cv_mae"``.
        data_path: The training data file of the new run.
        root: Folder of the shipped bundles (default: the package's ``models/shipped``).
    """
    label = "the shipped default"
    path = shipped_model_dir(task, root=root) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return Baseline(label, None, f"cannot read {path}: {exc}")
    value = (metadata.get("metrics") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return Baseline(label, None, f"{path} has no finite metrics.{metric}")
    if metadata.get("training_data_sha256") != sha256_file(data_path):
        return Baseline(label, None, f"{path} was trained on another version of {Path(data_path).name}")
    return Baseline(label, float(value))


def _champion_metric(client: MlflowClient, name: str, metric: str) -> tuple[str, float] | None:
    """Return (version, metric value) of the current champion, read from its run; None if no champion."""
    version = retry_locked(client.get_registered_model, name).aliases.get(CHAMPION)
    if version is None:
        return None
    champion = retry_locked(client.get_model_version, name, str(version))
    metrics = retry_locked(client.get_run, champion.run_id).data.metrics if champion.run_id else {}
    if metric not in metrics:
        raise RegistrationError(
            f"champion {name} version {champion.version} has no metric {metric!r} in its run "
            f"{champion.run_id}; cannot compare. Use the same selection metric, or move the alias by hand."
        )
    return str(champion.version), float(metrics[metric])


def decide_alias(
    metric: tuple[str, float],
    *,
    champion: tuple[str, float] | None,
    baseline: Baseline | None,
    greater_is_better: bool,
    smoke_run: bool,
) -> tuple[str, str]:
    """Return ``(alias, reason)`` for a new version judged on ``metric`` (see the module's rules).

    Args:
        metric: Name and value of the new version's selection metric.
        champion: Version and value of the current champion, or ``None``.
        baseline: The shipped default (or ``None`` when there is none to beat, e.g. the synthetic demo).
        greater_is_better: ``True`` for scores, ``False`` for errors.
        smoke_run: Whether the run was a ``--quick``/``--limit`` smoke run.
    """
    name, value = metric

    def beats(other: float) -> bool:
        return value > other if greater_is_better else value < other

    if smoke_run:
        return CANDIDATE, "a --quick/--limit smoke run is never champion"
    if baseline is not None and baseline.value is None:
        return CANDIDATE, f"{baseline.label}'s {name} is unknown ({baseline.note}); promote by hand if intended"
    if baseline is not None and not beats(baseline.value):
        return CANDIDATE, f"{name}={value:.4g} does not beat {baseline.label} ({baseline.value:.4g})"
    if champion is not None and not beats(champion[1]):
        return CANDIDATE, f"{name}={value:.4g} does not beat champion version {champion[0]} ({champion[1]:.4g})"
    against = [f"champion version {champion[0]} ({champion[1]:.4g})"] if champion else ["no champion yet"]
    if baseline is not None:
        against.append(f"{baseline.label} ({baseline.value:.4g})")
    return CHAMPION, f"{name}={value:.4g} beats " + " and ".join(against)


def register_version(
    client: MlflowClient,
    *,
    lock_uri: str,
    name: str,
    model_info: Any,
    metric: tuple[str, float],
    greater_is_better: bool,
    baseline: Baseline | None = None,
    smoke_run: bool = False,
) -> RegistrationResult:
    """Register ``model_info`` as a new version of ``name`` and set its alias, all under the store lock.

    Args:
        client: Client on the tracking and registry stores.
        lock_uri: URI whose file lock serialises registrations (the registry URI).
        name: Registered model name.
        model_info: What ``mlflow.pyfunc.log_model`` returned.
        metric: Selection metric name and value.
        greater_is_better: ``True`` for scores, ``False`` for errors.
        baseline: Reference to beat as well (see :func:`decide_alias`).
        smoke_run: A ``--quick``/``--limit`` run (never champion).

    Raises:
        RegistrationError: Registration or promotion failed (the new version was deleted), or the lock timed out.
    """
    try:
        with store_lock(lock_uri):
            return _register_locked(
                client, name=name, model_info=model_info, metric=metric, greater_is_better=greater_is_better,
                baseline=baseline, smoke_run=smoke_run,
            )  # fmt: skip
    except StoreLockTimeout as exc:
        raise RegistrationError(f"{exc}; the run {model_info.run_id} is logged but not registered") from None


def _register_locked(
    client: MlflowClient,
    *,
    name: str,
    model_info: Any,
    metric: tuple[str, float],
    greater_is_better: bool,
    baseline: Baseline | None,
    smoke_run: bool,
) -> RegistrationResult:
    try:
        retry_locked(
            client.create_registered_model, name, description="sse-screen model; serve it as models:/NAME@champion"
        )
    except Exception as exc:
        if not is_already_exists(exc):
            raise
    version = retry_locked(
        client.create_model_version,
        name,
        source=model_info.model_uri,
        run_id=model_info.run_id,
        model_id=model_info.model_id,
        tags={metric[0]: repr(metric[1])},
    ).version
    try:
        current = _champion_metric(client, name, metric[0])
        alias, reason = decide_alias(
            metric, champion=current, baseline=baseline, greater_is_better=greater_is_better, smoke_run=smoke_run
        )
        retry_locked(client.set_registered_model_alias, name, alias, version)
        retry_locked(client.set_model_version_tag, name, version, "selection_metric", metric[0])
        retry_locked(client.set_model_version_tag, name, version, "alias_reason", reason)
    except BaseException as exc:
        # No half-registered version: remove what we created, then report.
        with contextlib.suppress(Exception):  # the original failure is the one to report
            retry_locked(client.delete_model_version, name, version)
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
        reason=reason,
    )
