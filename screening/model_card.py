"""What the service says about a model it serves: name, version, alias, bundle hash, training date, and metrics named
by where they come from. Never a path on the server.

Metrics in a bundle's metadata carry their origin as a prefix; the card groups them:

==================  ============  =================================================================================
group               prefix        what
==================  ============  =================================================================================
cross_validation    ``cv_``       out-of-fold predictions on the training data (``cv_metrics``, grouped by formula)
validation          ``val_``      a held-out validation set scored after training (e.g. ``mp_e_hull/val.csv``)
test                ``test_``     an official test split scored by a separate fit on the training split (OBELiX)
==================  ============  =================================================================================
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from sse_screen.screening.api_io import finite

METRIC_GROUPS: dict[str, tuple[str, str]] = {
    "cross_validation": ("cv_", "out-of-fold cross-validation on the training data"),
    "validation": ("val_", "held-out validation set, scored after training (never trained on)"),
    "test": ("test_", "official test split, scored by a separate fit on the training split only"),
}
#: URIs that name a model without revealing where the server keeps files.
_PUBLIC_URI = re.compile(r"^(models|runs):/")


def bundle_sha256(boosters: Mapping[str, Any]) -> str:
    """SHA-256 of a model's fitted trees: every booster's UBJ bytes, in name order (hex, 64 characters).

    The same bundle gives the same hash wherever it was loaded from (shipped folder, MLflow download).
    """
    digest = hashlib.sha256()
    for name in sorted(boosters):
        digest.update(name.encode())
        digest.update(bytes(boosters[name].save_raw(raw_format="ubj")))
    return digest.hexdigest()


def _metrics(model: Any, metadata: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    flat = dict((metadata or {}).get("metrics") or {})
    out: dict[str, dict[str, Any]] = {}
    for group, (prefix, description) in METRIC_GROUPS.items():
        values = {k.removeprefix(prefix): v for k, v in sorted(flat.items()) if k.startswith(prefix)}
        if group == "cross_validation" and not values:
            values = dict((metadata or {}).get("cv_metrics") or getattr(model, "cv_metrics_", {}) or {})
        if values:
            out[group] = {"description": description, "values": finite(values)}
    return out


def _shown_training_data(value: Any) -> str | None:
    """The training-data label of the metadata, reduced to a file name if it is an absolute path."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value):
        return value.replace("\\", "/").rsplit("/", 1)[-1]
    return value


def model_card(task: str, model: Any, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The public description of a served model (``GET /api/models``).

    Args:
        task: Task the model serves.
        model: The fitted model (``source_`` and ``boosters_`` are read when present).
        metadata: The bundle's ``metadata.json`` content, when known (training date, validation metrics).

    Returns:
        JSON-ready dict: ``task``, ``model_class``, ``name``, ``version``, ``alias``, ``origin``, ``run_id``,
        ``uri`` (only ``models:/``/``runs:/`` URIs), ``bundle_sha256``, ``trained_at`` (ISO 8601, UTC),
        ``training_data``, ``training_data_sha256``, ``output_columns``, ``metrics`` (groups of
        :data:`METRIC_GROUPS`, each ``{"description", "values"}``) and ``description`` (one line).
    """
    source = getattr(model, "source_", None)
    origin = getattr(source, "origin", None)
    registered = getattr(source, "registered_model", None)
    uri = getattr(source, "uri", None)
    name = registered or (f"shipped {task} model" if origin == "shipped" else f"{task} bundle")
    meta = dict(metadata or {})
    boosters = getattr(model, "boosters_", None)
    card = {
        "task": task,
        "model_class": type(model).__name__,
        "name": name,
        "version": getattr(source, "version", None),
        "alias": getattr(source, "alias", None),
        "origin": origin,
        "run_id": getattr(source, "run_id", None),
        "uri": uri if isinstance(uri, str) and _PUBLIC_URI.match(uri) else None,
        "bundle_sha256": bundle_sha256(boosters) if boosters else None,
        "trained_at": meta.get("created_at"),
        "training_data": _shown_training_data(meta.get("training_data")),
        "training_data_sha256": meta.get("training_data_sha256"),
        "output_columns": list(model.output_columns()),
        "metrics": _metrics(model, meta),
    }
    card["description"] = describe(card)
    return card


def describe(card: Mapping[str, Any]) -> str:
    """One line: ``sse-screen-stability v3 @champion, trained 2026-11-26, bundle 1a2b3c4d5e6f``."""
    text = str(card["name"])
    if card.get("version"):
        text += f" v{card['version']}"
    if card.get("alias"):
        text += f" @{card['alias']}"
    if card.get("trained_at"):
        text += f", trained {str(card['trained_at'])[:10]}"
    if card.get("bundle_sha256"):
        text += f", bundle {card['bundle_sha256'][:12]}"
    return text


def load_served_models(uris: Mapping[str, str | None], tasks: tuple[str, ...]) -> tuple[dict, dict]:
    """Load every task's model as ``screening.predict.load_models`` does, and its card (from the bundle's metadata).

    Returns:
        ``(models, cards)``: task -> fitted model, task -> :func:`model_card`.

    Raises:
        models.registry.ModelNotFoundError: A model could not be loaded (the message lists what was tried).
    """
    from sse_screen.models.conductivity import ConductivityModel
    from sse_screen.models.property_model import PropertyModel
    from sse_screen.models.registry import resolve_model

    models: dict[str, Any] = {}
    cards: dict[str, dict] = {}
    for task in tasks:
        bundle = resolve_model(task, model_uri=uris.get(task))
        model = (ConductivityModel if task == "conductivity" else PropertyModel).from_bundle(bundle)
        models[task], cards[task] = model, model_card(task, model, bundle.metadata)
    return models, cards
