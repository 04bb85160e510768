"""A tiny tracked training run on synthetic data: the end-to-end path of every real training script.

Preflight -> fit a small ``xgboost.XGBRegressor`` -> save a bundle -> log params, metrics, a parity plot, the
data version and the model to MLflow -> register a version and set ``champion`` or ``candidate``. Used by the
tests against a real ``mlflow server``; the real per-target scripts follow the same steps.

Usage::

    python -m experiments.train_demo --n-estimators 50 [--tracking-uri http://127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sse_screen.experiments.tracking import (
    RegistrationResult,
    TrackingUnavailable,
    log_and_register,
    registered_model_name,
    setup_tracking,
    tracked_run,
)
from sse_screen.models.persistence import save_bundle, sha256_file

FEATURES = [f"x{i}" for i in range(5)]
TARGET = "y_ev_per_atom"


def make_synthetic(path: str | Path, *, n_rows: int = 400, seed: int = 0) -> Path:
    """Write a deterministic synthetic regression table (features ``x0..x4``, target in eV/atom) as CSV."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n_rows, len(FEATURES)))
    y = 0.3 * np.sin(3 * x[:, 0]) + 0.2 * x[:, 1] * x[:, 2] + 0.1 * x[:, 3] ** 2 + rng.normal(0, 0.02, n_rows)
    table = pd.DataFrame(x, columns=FEATURES).assign(**{TARGET: y})
    path = Path(path)
    table.to_csv(path, index=False, float_format="%.6f")
    return path


def demo_metadata(*, task: str, data_path: str | Path, metrics: dict[str, float], **extra: object) -> dict:
    """Return bundle metadata for a model trained on the synthetic table (``extra`` keys are added)."""
    return {
        "task": task,
        "features_preset": "synthetic-demo",
        "feature_names": FEATURES,
        "target_name": TARGET,
        "target_unit": "eV/atom",
        "training_data_sha256": sha256_file(data_path),
        "metrics": metrics,
        **extra,
    }


def _parity_figure(y_true: np.ndarray, y_pred: np.ndarray):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 4))
    axes = figure.subplots()
    axes.scatter(y_true, y_pred, s=6, alpha=0.6)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    axes.plot([low, high], [low, high], color="black", lw=1)
    axes.set(xlabel="true (eV/atom)", ylabel="predicted (eV/atom)", title="validation parity")
    return figure


def train_demo(
    *,
    data_path: str | Path,
    n_estimators: int = 50,
    max_depth: int = 3,
    learning_rate: float = 0.1,
    task: str = "stability",
    tracking_uri: str | None = None,
) -> RegistrationResult:
    """Train, log and register one small model; return where it was registered and with which alias.

    Args:
        data_path: CSV with columns ``x0..x4`` and ``y_ev_per_atom`` (see :func:`make_synthetic`).
        n_estimators: Number of trees.
        max_depth: Tree depth.
        learning_rate: Boosting learning rate.
        task: Task whose registered model receives the version.
        tracking_uri: Tracking URI; defaults to ``experiments.tracking.tracking_uri()``.

    Raises:
        TrackingUnavailable: Before any training, when the tracking store is unreachable.
    """
    import xgboost

    experiment_id = setup_tracking(registered_model_name(task), uri=tracking_uri)
    table = pd.read_csv(data_path)
    n_train = int(0.75 * len(table))
    train, val = table.iloc[:n_train], table.iloc[n_train:]
    model = xgboost.XGBRegressor(
        n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, n_jobs=1, random_state=0
    )
    with tracked_run(experiment_id), tempfile.TemporaryDirectory() as tmp:
        model.fit(train[FEATURES], train[TARGET])
        y_val = val[TARGET].to_numpy()
        pred = model.predict(val[FEATURES])
        residual = np.abs(y_val - pred)
        metrics = {"val_mae": float(residual.mean()), "val_rmse": float(np.sqrt((residual**2).mean()))}
        bundle = save_bundle(
            Path(tmp) / "bundle",
            boosters={"mean": model.get_booster()},
            metadata=demo_metadata(
                task=task,
                data_path=data_path,
                metrics=metrics,
                # Demo only: a real script calibrates on a split that selection did not use.
                uncertainty={"method": "absolute-residual quantile", "q80": float(np.quantile(residual, 0.8))},
            ),
        )
        return log_and_register(
            task=task,
            estimator=model,
            metrics=metrics,
            bundle_dir=bundle,
            input_example=val[FEATURES],
            data_path=data_path,
            figures={"parity": _parity_figure(y_val, pred)},
        )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the registered version and alias."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="training CSV (default: a synthetic table)")
    parser.add_argument("--n-estimators", type=int, default=50)
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or the local sqlite store")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_synthetic(Path(tmp) / "synthetic.csv")
        try:
            result = train_demo(
                data_path=data,
                n_estimators=args.n_estimators,
                max_depth=args.max_depth,
                tracking_uri=args.tracking_uri,
            )
        except TrackingUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    name, value = result.metric
    print(f"{result.model_uri} -> @{result.alias} ({name}={value:.4f}, previous champion: {result.previous_champion})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
