"""Train, evaluate, track and register a property model (energy above hull or band gap).

Steps: preflight the tracking store (fail before minutes of compute) -> load the bundled data -> fit
:class:`models.property_model.PropertyModel` (out-of-fold CV inside) -> score on validation data -> log params,
CV and validation metrics, a parity plot, a feature-importance plot, the data version and the model to MLflow ->
register a version of ``sse-screen-<task>`` with alias ``champion`` (if its validation MAE beats both the champion's and
the shipped default's, read from ``models/shipped/<task>/metadata.json`` and scored on the same validation split) or
``candidate``; a ``--quick``/``--limit`` smoke run is always ``candidate``. ``--ship DIR`` also copies the bundle
there (``models/shipped/<task>`` is the shipped default).

Data: stability trains on ``data/mp_e_hull/train.csv`` and is selected on ``val.csv`` (the benchmark's test split
is withheld). Band gap has no official split: compositions of ``data/mp_gap`` (median gap per composition) are split
85/15 at random with a fixed seed, so no composition is on both sides.

Usage::

    python -m experiments.train_property stability [--config FILE.toml] [--quick] [--ship models/shipped/stability]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sse_screen.experiments.figures import importance_figure, parity_figure
from sse_screen.experiments.search import SearchUnavailable, search_params
from sse_screen.experiments.tracking import (
    RegistrationError,
    RegistrationResult,
    TrackingUnavailable,
    log_and_register,
    registered_model_name,
    setup_tracking,
    shipped_baseline,
    tracked_run,
)
from sse_screen.features.datasets import data_dir, load_mp_e_hull, load_mp_gap
from sse_screen.models.persistence import sha256_file
from sse_screen.models.property_model import PropertyModel

TASKS = ("stability", "band_gap")
#: Small settings for smoke runs and tests: seconds, not minutes.
QUICK = {"n_estimators": 60, "n_folds": 3, "max_depth": 6, "learning_rate": 0.1}
#: Per-task defaults, chosen on validation data and cross-validation (see README, "Model figures").
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "stability": {
        "use_reference_hull": True,
        "formation_energy_feature": True,
        "hurdle": True,
        "tail_threshold": 0.5,  # body/tail regressors: E_hull > 0.5 eV/atom is 7% of the rows, half of the error
        "classifier_bags": 3,
        "n_estimators": 800,
        "learning_rate": 0.05,
        "max_depth": 8,
        "min_child_weight": 2.0,
        "subsample": 0.8,
        "colsample_bytree": 0.6,
        # out-of-fold formation energies from 4/5 of the data are closer to the final model's than from 2/3:
        # val MAE 0.0863 with 5 folds vs 0.0881 with 3 (each fold refits the formation-energy model on ~86k rows)
        "n_folds": 5,
    },
    "band_gap": {"use_reference_hull": False},
}


def load_split(task: str, *, limit: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Training and validation tables (``formula``, ``y``) and the data file they came from."""
    if task == "stability":
        train, val = load_mp_e_hull("train"), load_mp_e_hull("val")
        train = train.rename(columns={"e_hull_ev_per_atom": "y"})
        val = val.rename(columns={"e_hull_ev_per_atom": "y"})
        path = data_dir() / "mp_e_hull" / "train.csv"
    elif task == "band_gap":
        table = load_mp_gap(aggregate="median").rename(columns={"band_gap_ev": "y"})
        order = np.random.default_rng(seed).permutation(len(table))
        n_val = int(0.15 * len(table))
        val, train = table.iloc[order[:n_val]], table.iloc[order[n_val:]]
        path = data_dir() / "mp_gap" / "mp_gap.csv"
    else:
        raise ValueError(f"Unknown {task=}; expected one of {TASKS}")
    if limit:
        train = train.sample(min(limit, len(train)), random_state=seed)
        val = val.sample(min(max(limit // 4, 50), len(val)), random_state=seed)
    keep = ["reduced_formula", "y"]
    return (
        train[keep].rename(columns={"reduced_formula": "formula"}).reset_index(drop=True),
        val[keep].rename(columns={"reduced_formula": "formula"}).reset_index(drop=True),
        path,
    )


def train(
    task: str,
    *,
    params: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
    limit: int | None = None,
    ship: str | Path | None = None,
    registered_model: str | None = None,
    search: int = 0,
    smoke_run: bool = False,
    log=print,
) -> tuple[RegistrationResult, dict[str, float]]:
    """Train one property model and track it; returns the registration and the logged metrics.

    Args:
        task: ``"stability"`` or ``"band_gap"``.
        params: :class:`PropertyModel` parameters overriding the defaults.
        tracking_uri: Tracking URI (default: ``$MLFLOW_TRACKING_URI`` or the local sqlite store).
        limit: Train on at most this many rows (smoke runs and tests).
        ship: Also save the bundle to this directory (replacing what is there).
        registered_model: Registry name (default ``sse-screen-<task>``).
        search: Optuna trials (nested MLflow runs, scored on CV MAE) before the final fit; 0 for none.
        smoke_run: A ``--quick`` run: registered as ``candidate``, never ``champion`` (so is any ``limit`` run).
        log: Where progress messages go.

    Raises:
        TrackingUnavailable: Before any training, when the tracking store is unreachable.
    """
    experiment_id = setup_tracking(registered_model_name(task), uri=tracking_uri)
    train_table, val_table, data_path = load_split(task, limit=limit)
    chosen = TASK_DEFAULTS[task] | (params or {})
    log(f"{task}: {len(train_table)} training and {len(val_table)} validation compositions")
    smoke_run = smoke_run or bool(limit)
    with tracked_run(experiment_id), tempfile.TemporaryDirectory() as tmp:
        if search:
            chosen = search_params(
                task, train_table["formula"].tolist(), train_table["y"].to_numpy(), base=chosen, n_trials=search,
                holdout=val_table["formula"].tolist(), log=log,
            )  # fmt: skip
        model = PropertyModel(task=task, **chosen)
        start = time.perf_counter()
        model.fit(
            train_table["formula"],
            train_table["y"],
            holdout=val_table["formula"].tolist(),
            progress=lambda m: log(f"  {m} ({time.perf_counter() - start:.0f} s)"),
        )
        fit_seconds = time.perf_counter() - start
        val_pred = model.predict_table(val_table["formula"])
        val_metrics = model.score_table(val_table["formula"], val_table["y"])
        metrics = {f"cv_{k}": v for k, v in model.cv_metrics_.items()}
        metrics |= {f"val_{k}": v for k, v in val_metrics.items()}
        metrics |= {"fit_seconds": fit_seconds, "n_train": float(len(train_table)), "n_val": float(len(val_table))}
        metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
        spec = model.spec
        meta = {
            "training_data_sha256": sha256_file(data_path),
            "training_data": str(data_path.relative_to(data_dir().parent))
            if limit is None
            else f"{data_path.name}[:{limit}]",
            "metrics": {k: v for k, v in metrics.items() if k.startswith(("val_", "cv_"))},
            "trained_seconds": round(fit_seconds, 1),
        }
        bundle = model.save(Path(tmp) / "bundle", metadata=meta)
        figures = {
            "parity_val": parity_figure(
                val_table["y"].to_numpy(), val_pred[spec.target].to_numpy(), unit=spec.unit, title=f"{task}: validation"
            ),
            "feature_importance": importance_figure(model.boosters_["regressor"]),
        }
        result = log_and_register(
            task=task,
            estimator=model,
            metrics=metrics,
            bundle_dir=bundle,
            input_example=val_table[["formula"]].head(5),
            data_path=data_path,
            figures=figures,
            registered_model=registered_model,
            baseline=None if smoke_run else shipped_baseline(task, "val_mae", data_path),
            smoke_run=smoke_run,
        )
        if ship is not None:
            model.save(ship, metadata=meta, overwrite=True)
            log(f"  shipped bundle written to {ship}")
    return result, metrics


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Model parameters from a TOML file (a ``[model]`` table, or top-level keys)."""
    if path is None:
        return {}
    with open(path, "rb") as handle:
        config = tomllib.load(handle)
    return dict(config.get("model", config))


def model_params(config: str | None, *, quick: dict[str, Any] | None, estimator: Any) -> dict[str, Any]:
    """Model parameters for a training run: the quick preset (if asked), overridden by the ``[model]`` TOML table.

    Raises:
        ValueError: The config cannot be read or names a parameter the estimator does not have.
    """
    try:
        params = (quick or {}) | load_config(config)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read config {config}: {exc}") from None
    unknown = sorted(set(params) - set(estimator.get_params()))
    if unknown:
        raise ValueError(f"unknown model parameter(s) in config: {', '.join(unknown)}")
    return params


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``sse-screen train TASK`` calls this too)."""
    parser = argparse.ArgumentParser(prog="sse-screen train", description=__doc__.splitlines()[0])
    parser.add_argument(
        "task",
        choices=["stability", "band-gap", "band_gap"],
        help="conductivity: sse-screen train conductivity -h",
    )
    parser.add_argument("--config", help="TOML file with PropertyModel parameters under [model]")
    parser.add_argument("--quick", action="store_true", help="small, fast settings (a smoke run, not a real model)")
    parser.add_argument("--limit", type=int, help="train on at most this many compositions")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or the local sqlite store")
    parser.add_argument("--registered-model", help="registry name (default: sse-screen-<task>)")
    parser.add_argument(
        "--search",
        type=int,
        default=0,
        metavar="N",
        help="optuna trials before the final fit (nested runs; needs [tune])",
    )
    parser.add_argument("--ship", help="also save the bundle here (models/shipped/<task> is the shipped default)")
    args = parser.parse_args(argv)
    task = args.task.replace("-", "_")
    try:
        params = model_params(args.config, quick=QUICK if args.quick else None, estimator=PropertyModel())
    except ValueError as exc:
        print(f"sse-screen train: error: {exc}", file=sys.stderr)
        return 2
    try:
        result, metrics = train(
            task,
            params=params,
            tracking_uri=args.tracking_uri,
            limit=args.limit,
            ship=args.ship,
            registered_model=args.registered_model,
            search=args.search,
            smoke_run=args.quick,
            log=lambda m: print(m, file=sys.stderr),
        )
    except (TrackingUnavailable, SearchUnavailable, RegistrationError) as exc:
        print(f"sse-screen train: error: {exc}", file=sys.stderr)
        return 2
    shown = (
        "val_mae",
        "val_roc_auc",
        "val_f1",
        "val_daf_top10",
        "val_spearman",
        "val_coverage",
        "cv_mae",
        "fit_seconds",
    )
    print(" ".join(f"{k}={metrics[k]:.4g}" for k in shown if k in metrics))
    print(f"{result.model_uri} -> @{result.alias} ({result.reason})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
