"""Train, evaluate, track and register the ionic-conductivity model (log10 S/cm, OBELiX).

Steps: preflight the tracking store -> load OBELiX (rows whose formula does not parse are dropped and counted) and
read its CIFs once -> in one MLflow run:

1. **official split**: fit :class:`models.conductivity.ConductivityModel` on ``obelix/train.csv`` only and score
   ``test.csv`` (``test_*``: as served, i.e. structure model where a CIF exists, else composition;
   ``test_composition_*``: composition model on every row);
2. **grouped CV on all rows**: by composition (``cv_*``; the out-of-fold predictions of the final fit) and by
   structure family (``cv_family_*``);
3. **anchor**, in the same run: matminer-Magpie features + random forest (500 trees) and xgboost defaults on the
   official split, censored values set to 1e-15 S/cm as OBELiX's loader does (``anchor_*``);
4. log params, metrics, a parity plot coloured by structure family, feature importance and the model trained on
   **all rows**; register ``sse-screen-conductivity`` (alias ``champion`` if its ``cv_mae``, grouped CV on all rows,
   beats the champion's and the shipped default's, from ``models/shipped/conductivity/metadata.json``; a
   ``--quick``/``--limit`` smoke run is always ``candidate``).
   ``--ship DIR`` also writes that bundle there (``models/shipped/conductivity`` is the shipped default).

Usage::

    python -m experiments.train_conductivity [--config FILE.toml] [--quick] [--ship models/shipped/conductivity]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sse_screen.experiments.figures import importance_figure
from sse_screen.experiments.tracking import (
    RegistrationError,
    RegistrationResult,
    TrackingUnavailable,
    log_and_register,
    setup_tracking,
    shipped_baseline,
    tracked_run,
)
from sse_screen.experiments.train_property import model_params
from sse_screen.features.composition import CompositionFeaturizer
from sse_screen.features.datasets import data_dir, load_obelix
from sse_screen.features.structure import StructureError, read_cif
from sse_screen.models.conductivity import TARGET, ConductivityModel, conductivity_report
from sse_screen.models.persistence import sha256_file

TASK = "conductivity"
QUICK = {"n_estimators": 40, "n_folds": 3, "learning_rate": 0.15}
SHOWN = ("test_mae", "test_spearman", "test_r2", "test_precision_top10", "test_coverage", "test_mae_upstream",
         "test_spearman_upstream", "test_composition_mae", "test_composition_spearman", "cv_mae", "cv_spearman",
         "cv_coverage", "cv_structure_mae", "cv_family_mae", "cv_family_spearman", "anchor_rf_mae_upstream",
         "anchor_rf_spearman_upstream", "anchor_rf_mae", "anchor_xgb_mae_upstream", "fit_seconds")  # fmt: skip
_FAMILY_SPELLING = {"argyrodites": "argyrodite", "cholorides": "chlorides", "halide": "halides"}


def load_data(*, limit: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, list[Any], int]:
    """OBELiX rows that parse (with ``family_group``) and their structures (None where no CIF or unreadable).

    Returns:
        The table, the per-row structures, and the number of rows dropped because the formula does not parse.
    """
    table = load_obelix("all")
    dropped = int(table["error"].notna().sum())
    table = table[table["error"].isna()].reset_index(drop=True)
    if limit:
        table = table.sample(min(limit, len(table)), random_state=seed).reset_index(drop=True)
    family = table["family"].fillna("unknown").str.strip().str.lower()
    table["family_group"] = family.replace(_FAMILY_SPELLING)
    structures: list[Any] = []
    for path in table["cif_path"]:
        try:
            structures.append(read_cif(path) if path else None)
        except StructureError:  # the lattice features of the row are used instead
            structures.append(None)
    return table, structures, dropped


def _bounds(table: pd.DataFrame) -> dict[str, pd.Series]:
    return {"y_lower": table["log10_sigma_lower"], "y_upper": table["log10_sigma_upper"]}


def _score(table: pd.DataFrame, predicted: pd.DataFrame, prefix: str) -> dict[str, float]:
    report = conductivity_report(
        table["log10_sigma_lower"],
        table["log10_sigma_upper"],
        predicted[TARGET],
        pred_lower=predicted["log10_sigma_lower"],
        pred_upper=predicted["log10_sigma_upper"],
    )
    return {f"{prefix}{k}": v for k, v in report.items()}


def anchor_metrics(train: pd.DataFrame, test: pd.DataFrame, *, n_trees: int = 500, seed: int = 0) -> dict[str, float]:
    """The issue's anchor, measured here: Magpie features + random forest / default xgboost, censored -> 1e-15."""
    import xgboost as xgb
    from sklearn.ensemble import RandomForestRegressor

    featurizer = CompositionFeaturizer(preset="magpie").fit()
    x_train, x_test = featurizer.transform(train["formula"]), featurizer.transform(test["formula"])
    y_train = np.where(train["censored"], -15.0, train["log10_sigma_upper"])
    models = {
        "rf": RandomForestRegressor(n_estimators=n_trees, random_state=seed, n_jobs=1),
        "xgb": xgb.XGBRegressor(n_jobs=1, random_state=seed),
    }
    out: dict[str, float] = {}
    for name, model in models.items():
        pred = model.fit(x_train, y_train).predict(x_test)
        report = conductivity_report(test["log10_sigma_lower"], test["log10_sigma_upper"], pred)
        out |= {f"anchor_{name}_{k}": v for k, v in report.items() if k in ("mae", "spearman", "r2",
                "mae_upstream", "spearman_upstream", "precision_top10")}  # fmt: skip
    return out


def parity_figure(table: pd.DataFrame, pred: np.ndarray, *, title: str):
    """Measured vs predicted log10 sigma, one colour per structure family (censored rows at their bound, as v)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 5), layout="constrained")
    axes = figure.subplots()
    y = table["log10_sigma_upper"].to_numpy()
    families = table["family_group"].value_counts().index[:10]
    group = table["family_group"].where(table["family_group"].isin(families), "other")
    for name in [*families, "other"]:
        rows = (group == name).to_numpy()
        for censored, marker in ((False, "o"), (True, "v")):
            sel = rows & (table["censored"].to_numpy() == censored)
            if sel.any():
                axes.scatter(y[sel], pred[sel], s=14, marker=marker, alpha=0.75, label=None if censored else name)
    low, high = float(np.nanmin([y.min(), pred.min()])) - 0.5, 0.0
    axes.plot([low, high], [low, high], color="black", lw=1)
    axes.axhline(-4, color="grey", lw=0.5, ls="--")
    axes.axvline(-4, color="grey", lw=0.5, ls="--")
    axes.set(xlim=(low, high), ylim=(low, high), title=title)
    axes.set(xlabel="measured log10 sigma (S/cm); v: upper bound", ylabel="predicted log10 sigma (S/cm)")
    axes.legend(fontsize=7, loc="upper left", ncols=2)
    return figure


def train(
    *,
    params: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
    limit: int | None = None,
    ship: str | Path | None = None,
    registered_model: str | None = None,
    anchor: bool = True,
    smoke_run: bool = False,
    log=print,
) -> tuple[RegistrationResult, dict[str, float]]:
    """Train the conductivity model, evaluate it, track it and register it; returns the registration and metrics.

    Args:
        params: :class:`ConductivityModel` parameters overriding the defaults.
        tracking_uri: Tracking URI (default: ``$MLFLOW_TRACKING_URI`` or the local sqlite store).
        limit: Use at most this many OBELiX rows (smoke runs and tests; the split is then the official one
            restricted to those rows).
        ship: Also save the all-rows bundle to this directory (replacing what is there).
        registered_model: Registry name (default ``sse-screen-conductivity``).
        anchor: Also measure the Magpie + random forest / xgboost anchor on the official split.
        smoke_run: A ``--quick`` run: registered as ``candidate``, never ``champion`` (so is any ``limit`` run).
        log: Where progress messages go.

    Raises:
        TrackingUnavailable: Before any training, when the tracking store is unreachable.
    """
    experiment_id = setup_tracking("sse-screen-conductivity", uri=tracking_uri)
    table, structures, dropped = load_data(limit=limit)
    is_train = (table["split"] == "train").to_numpy()
    train_t, test_t = table[is_train].reset_index(drop=True), table[~is_train].reset_index(drop=True)
    train_s = [s for s, keep in zip(structures, is_train, strict=True) if keep]
    test_s = [s for s, keep in zip(structures, is_train, strict=True) if not keep]
    shared = sorted(set(train_t["composition_key"]) & set(test_t["composition_key"]))
    log(f"conductivity: {len(train_t)} train / {len(test_t)} test rows ({dropped} dropped: formula does not parse; "
        f"{sum(s is not None for s in structures)} with a readable CIF; {len(shared)} composition(s) on both sides "
        "of the official split)")  # fmt: skip
    params = params or {}
    say = lambda m: log(f"  {m}")  # noqa: E731
    metrics: dict[str, float] = {
        "n_train": len(train_t),
        "n_test": len(test_t),
        "n_split_shared_compositions": len(shared),
    }
    smoke_run = smoke_run or bool(limit)
    with tracked_run(experiment_id), tempfile.TemporaryDirectory() as tmp:
        log("official split: fit on train, score on test")
        official = ConductivityModel(**params).fit(train_t, **_bounds(train_t), structures=train_s, progress=say)
        served = official.predict_table(test_t["formula"], structures=test_s)
        metrics |= _score(test_t, served, "test_")
        metrics |= _score(test_t, official.predict_table(test_t["formula"]), "test_composition_")
        log("all rows: grouped CV by composition + final fit")
        start = time.perf_counter()
        model = ConductivityModel(**params).fit(table, **_bounds(table), structures=structures, progress=say)
        metrics["fit_seconds"] = time.perf_counter() - start
        for kind, report in model.cv_metrics_.items():
            prefix = "cv_" if kind == "composition" else f"cv_{kind}_"
            metrics |= {f"{prefix}{k}": v for k, v in report.items()}
        log("all rows: grouped CV by structure family")
        family_cv, _ = model.cross_validate(
            table, **_bounds(table), structures=structures, groups=table["family_group"], progress=say
        )
        for kind, report in family_cv.items():
            prefix = "cv_family_" if kind == "composition" else f"cv_family_{kind}_"
            metrics |= {f"{prefix}{k}": v for k, v in report.items()}
        if anchor:
            log("anchor: Magpie + random forest / xgboost on the official split")
            metrics |= anchor_metrics(train_t, test_t, n_trees=50 if limit else 500)
        metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
        data_path = data_dir() / "obelix" / "all.csv"
        meta = {
            "training_data_sha256": sha256_file(data_path),
            "training_data": "obelix/all.csv: all rows whose formula parses" if limit is None else f"all.csv[:{limit}]",
            "training_rows": len(table),
            "note": "trained on ALL OBELiX rows (train + test); the test_* metrics come from a separate fit on "
            "obelix/train.csv only, the cv_* metrics are grouped out-of-fold on all rows",
            "metrics": {k: v for k, v in metrics.items() if k.startswith(("test_", "cv_", "anchor_"))},
            "trained_seconds": round(metrics["fit_seconds"], 1),
        }
        bundle = model.save(Path(tmp) / "bundle", metadata=meta)
        kind = "structure" if model.use_structure else "composition"
        figures = {
            "parity_cv_by_family": parity_figure(
                table, model.oof_[f"{kind}_pred"].to_numpy(), title=f"grouped CV (by composition), {kind} model"
            ),
            "parity_official_test": parity_figure(test_t, served[TARGET].to_numpy(), title="official test split"),
            # the shared helper reads boosters_["regressor"]
            "feature_importance": importance_figure(model.boosters_[kind]),
        }
        result = log_and_register(
            task=TASK,
            estimator=model,
            metrics=metrics,
            bundle_dir=bundle,
            input_example=pd.DataFrame({"formula": table["reduced_formula"].head(5).astype(str).tolist()}),
            data_path=data_path,
            figures=figures,
            selection_metric="cv_mae",
            registered_model=registered_model,
            baseline=None if smoke_run else shipped_baseline(TASK, "cv_mae", data_path),
            smoke_run=smoke_run,
        )
        if ship is not None:
            model.save(ship, metadata=meta, overwrite=True)
            log(f"  shipped bundle written to {ship}")
    return result, metrics


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``sse-screen train conductivity`` can call this)."""
    parser = argparse.ArgumentParser(prog="sse-screen train conductivity", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML file with ConductivityModel parameters under [model]")
    parser.add_argument("--quick", action="store_true", help="small, fast settings (a smoke run, not a real model)")
    parser.add_argument("--limit", type=int, help="use at most this many OBELiX rows")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or the local sqlite store")
    parser.add_argument("--registered-model", help="registry name (default: sse-screen-conductivity)")
    parser.add_argument("--ship", help="also save the bundle here (models/shipped/conductivity is the shipped default)")
    parser.add_argument("--no-anchor", action="store_true", help="skip the Magpie + random-forest anchor")
    args = parser.parse_args(argv)
    try:
        params = model_params(args.config, quick=QUICK if args.quick else None, estimator=ConductivityModel())
    except ValueError as exc:
        print(f"sse-screen train: error: {exc}", file=sys.stderr)
        return 2
    try:
        result, metrics = train(
            params=params,
            tracking_uri=args.tracking_uri,
            limit=args.limit,
            ship=args.ship,
            registered_model=args.registered_model,
            anchor=not args.no_anchor,
            smoke_run=args.quick,
            log=lambda m: print(m, file=sys.stderr),
        )
    except (TrackingUnavailable, RegistrationError) as exc:
        print(f"sse-screen train: error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={metrics[k]:.4g}" for k in SHOWN if k in metrics))
    print(f"{result.model_uri} -> @{result.alias} ({result.reason})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
