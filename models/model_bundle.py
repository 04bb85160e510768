"""Saving and restoring a fitted model as a bundle, the same way for every model class.

A model bundle is a :mod:`models.persistence` bundle whose metadata also says which estimator it holds
(``model_type``: ``"property"`` or ``"conductivity"``), the estimator's constructor parameters (under ``params``
for a property model, ``conductivity_params`` for a conductivity model), its conformal calibration
(``uncertainty``) and its cross-validation metrics (``cv_metrics``). :func:`model_from_bundle` rebuilds the right
class from any of them, including bundles written before ``model_type`` existed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sse_screen.models.persistence import (
    MODEL_TYPE_KEY,
    Bundle,
    BundleError,
    ModelType,
    load_bundle,
    model_type_of,
    save_bundle,
)

if TYPE_CHECKING:
    from sse_screen.models.conductivity import ConductivityModel
    from sse_screen.models.property_model import PropertyModel

#: Metadata key of each model type's constructor parameters (kept from before ``model_type`` existed).
PARAMS_KEY: dict[str, str] = {"property": "params", "conductivity": "conductivity_params"}


def save_model(
    path: str | Path,
    model: Any,
    model_type: ModelType,
    *,
    task: str,
    target: tuple[str, str],
    uncertainty: dict[str, Any],
    metadata: dict[str, Any],
    overwrite: bool = False,
    **extra: Any,
) -> Path:
    """Write a fitted model's bundle: its boosters, and metadata that say how to rebuild and trust it.

    Args:
        path: Bundle directory.
        model: The fitted estimator (``boosters_``, ``cv_metrics_``, ``preset``, ``feature_names()``,
            ``get_params()``).
        model_type: ``"property"`` or ``"conductivity"``: recorded as ``model_type``.
        task: The task it serves (``stability``, ``band_gap``, ``conductivity``).
        target: Target column name and unit, e.g. ``("e_hull_ev_per_atom", "eV/atom")``.
        uncertainty: The conformal calibration(s), JSON-ready.
        metadata: Caller metadata, at least ``training_data_sha256`` and ``metrics``; wins on a clash.
        overwrite: Replace an existing bundle.
        **extra: More model metadata (e.g. the applicability ``domain``).
    """
    meta = {
        MODEL_TYPE_KEY: model_type,
        PARAMS_KEY[model_type]: model.get_params(),
        "task": task,
        "features_preset": model.preset,
        "feature_names": model.feature_names(),
        "target_name": target[0],
        "target_unit": target[1],
        "uncertainty": uncertainty,
        "cv_metrics": model.cv_metrics_,
        **extra,
        **metadata,
    }
    return save_bundle(path, boosters=model.boosters_, metadata=meta, overwrite=overwrite)


def bundle_params(bundle: Bundle, model_type: ModelType) -> dict[str, Any]:
    """The constructor parameters of the ``model_type`` model in ``bundle``.

    Raises:
        BundleError: The bundle holds another kind of model (or raw boosters only).
    """
    found = model_type_of(bundle.metadata)
    if found != model_type:
        what = f"a {found} model" if found else "no model (raw boosters only)"
        raise BundleError(f"the bundle holds {what}, not a {model_type} model")
    return dict(bundle.metadata[PARAMS_KEY[model_type]])


def restore_fitted(model: Any, bundle: Bundle, *, required: Iterable[str], calibration: Any) -> None:
    """Give ``model`` (built from :func:`bundle_params`) the bundle's fitted state, in place.

    Sets ``boosters_``, ``calibration_``, ``cv_metrics_``, ``feature_names_in_``, ``n_features_in_`` and
    ``source_``.

    Raises:
        BundleError: A required booster is missing, or the bundle's feature names differ from what this version's
            featurizers produce (the model must be retrained).
    """
    missing = set(required) - set(bundle.boosters)
    if missing:
        raise BundleError(f"bundle lacks booster(s) {sorted(missing)}")
    if list(bundle.metadata["feature_names"]) != model.feature_names():
        raise BundleError("the bundle's feature names differ from this version's featurizers; retrain the model")
    model.boosters_ = dict(bundle.boosters)
    model.calibration_ = calibration
    model.cv_metrics_ = bundle.metadata.get("cv_metrics", {})
    model.feature_names_in_ = np.asarray(bundle.metadata["feature_names"], dtype=object)
    model.n_features_in_ = len(model.feature_names_in_)
    model.source_ = bundle.source


def model_from_bundle(bundle: Bundle) -> PropertyModel | ConductivityModel | None:
    """The fitted estimator a bundle holds (by ``model_type``, else the legacy rule); None for raw boosters."""
    kind = model_type_of(bundle.metadata)
    if kind == "conductivity":
        from sse_screen.models.conductivity import ConductivityModel

        return ConductivityModel.from_bundle(bundle)
    if kind == "property":
        from sse_screen.models.property_model import PropertyModel

        return PropertyModel.from_bundle(bundle)
    return None


def load_model(path: str | Path) -> PropertyModel | ConductivityModel | None:
    """Load a bundle directory as the estimator it holds (None for a bundle of raw boosters)."""
    return model_from_bundle(load_bundle(path))
