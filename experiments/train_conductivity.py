"""Train, evaluate, track and register the ionic-conductivity model (log10 S/cm, OBELiX + McHaffie).

Steps: preflight the tracking store -> load OBELiX + the McHaffie rows OBELiX lacks
(:func:`features.conductivity_data.conductivity_table`; rows whose formula does not parse are dropped and counted)
and read OBELiX's CIFs once -> in one MLflow run:

1. **official split**: fit :class:`models.conductivity.ConductivityModel` on every row but OBELiX's ``test.csv``
   (no McHaffie row has a test composition) and score ``test.csv`` once (``test_*``: as served, i.e. structure
   model where a CIF exists, else composition; ``test_composition_*``: composition model on every row);
2. **grouped CV on all rows**: by chemical system (``cv_*``; the out-of-fold predictions of the final fit);
3. **same folds, model vs anchors** (:mod:`experiments.conductivity_cv`): chemical-system CV and leave-one-family-out
   of the composition model and of Magpie + random forest / extra-trees (``lofo_*``, ``anchor_*``), logged as the
   per-family table ``tables/leave_one_family_out.csv``;
4. log params, metrics, parity plots coloured by structure family, feature importance and the model trained on
   **all rows**; register ``sse-screen-conductivity`` (alias ``champion`` if its ``cv_chemsys_mae`` beats the
   champion's; a ``--quick``/``--limit`` smoke run is always ``candidate``).
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
from sse_screen.features.conductivity_data import conductivity_table
from sse_screen.features.datasets import data_dir
from sse_screen.features.structure import StructureError, read_cif
from sse_screen.models.conductivity import TARGET, ConductivityModel, conductivity_report
from sse_screen.models.persistence import sha256_file

TASK = "conductivity"
QUICK = {"n_estimators": 20, "n_folds": 3}
SHOWN = ("test_mae", "test_spearman", "test_r2", "test_coverage", "test_composition_mae", "test_composition_spearman",
         "cv_mae", "cv_spearman", "cv_coverage", "same_folds_cv_mae", "same_folds_cv_spearman",
         "same_folds_cv_out_of_domain", "anchor_rf_cv_mae", "anchor_rf_cv_spearman", "anchor_et_cv_mae",
         "anchor_et_cv_spearman", "lofo_mae", "lofo_spearman", "lofo_coverage", "lofo_out_of_domain",
         "anchor_et_lofo_mae", "anchor_et_lofo_spearman", "fit_seconds")  # fmt: skip


def load_data(*, limit: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, list[Any], int]:
    """OBELiX + McHaffie rows that parse (:func:`features.conductivity_data.conductivity_table`) and their
    structures (None where no CIF, unreadable, or a McHaffie row).

    Returns:
        The table, the per-row structures, and the number of rows dropped because the formula does not parse.
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        table = conductivity_table()
    dropped = sum(int(str(w.message).split(": ")[1].split(" ")[0]) for w in caught if "row(s) kept" in str(w.message))
    if limit:
        table = table.sample(min(limit, len(table)), random_state=seed).reset_index(drop=True)
    structures: list[Any] = []
    for path in table["cif_path"]:
        try:
            structures.append(read_cif(path) if isinstance(path, str) and path else None)
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
    is_train = (table["split"] != "test").to_numpy()  # OBELiX train + McHaffie (no McHaffie test composition)
    train_t, test_t = table[is_train].reset_index(drop=True), table[~is_train].reset_index(drop=True)
    train_s = [s for s, keep in zip(structures, is_train, strict=True) if keep]
    test_s = [s for s, keep in zip(structures, is_train, strict=True) if not keep]
    shared = sorted(set(train_t["composition_key"]) & set(test_t["composition_key"]))
    log(f"conductivity: {len(train_t)} train rows (OBELiX train + McHaffie) / {len(test_t)} OBELiX test rows "
        f"({dropped} dropped: formula does not parse; {sum(s is not None for s in structures)} with a readable CIF; "
        f"{len(shared)} composition(s) on both sides of the official split)")  # fmt: skip
    params = params or {}
    say = lambda m: log(f"  {m}")  # noqa: E731
    metrics: dict[str, float] = {"n_train": len(train_t), "n_test": len(test_t), "n_rows": len(table)}
    metrics["n_split_shared_compositions"] = len(shared)
    smoke_run = smoke_run or bool(limit)
    with tracked_run(experiment_id), tempfile.TemporaryDirectory() as tmp:
        log("official split: fit on everything but OBELiX test.csv, score test.csv once")
        official = ConductivityModel(**params).fit(train_t, **_bounds(train_t), structures=train_s, progress=say)
        served = official.predict_table(test_t["formula"], structures=test_s)
        metrics |= _score(test_t, served, "test_")
        metrics |= _score(test_t, official.predict_table(test_t["formula"]), "test_composition_")
        log("all rows: chemical-system-grouped CV + final fit")
        start = time.perf_counter()
        model = ConductivityModel(**params).fit(table, **_bounds(table), structures=structures, progress=say)
        metrics["fit_seconds"] = time.perf_counter() - start
        for kind, report in model.cv_metrics_.items():
            prefix = "cv_" if kind == "composition" else f"cv_{kind}_"
            metrics |= {f"{prefix}{k}": v for k, v in report.items()}
        metrics["cv_chemsys_mae"] = metrics["cv_mae"]
        log("same folds: composition model vs Magpie anchors, chemsys CV and leave-one-family-out")
        same_folds, lofo_table, oof = compare_on_same_folds(table, params, anchor=anchor, quick=bool(limit), say=say)
        metrics |= same_folds
        metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
        files = {"obelix": data_dir() / "obelix" / "all.csv",
                 "mchaffie": data_dir() / "mchaffie" / "ionic_conductivity_database.csv"}  # fmt: skip
        data_path = files["obelix"]
        meta = {
            "training_data_sha256": sha256_file(data_path),
            "training_data_sha256_mchaffie": sha256_file(files["mchaffie"]),
            "training_data": (
                "obelix/all.csv: all rows whose formula parses (train AND test), plus the mchaffie rows whose "
                "canonical composition OBELiX lacks (extrapolated ones included)"
                if limit is None
                else f"{limit} sampled rows"
            ),
            "training_rows": len(table),
            "training_rows_by_source": table["source"].value_counts().to_dict(),
            "note": "the shipped model saw ALL rows (OBELiX train + test + McHaffie); the test_* metrics come from a "
            "separate fit that saw every row but obelix/test.csv, scored once; cv_* are chemical-system-grouped "
            "out-of-fold, lofo_* leave one structure family out",
            "metrics": {
                k: v for k, v in metrics.items() if k.startswith(("test_", "cv_", "anchor_", "lofo_", "same_"))
            },
            "leave_one_family_out": lofo_table.round(4).to_dict(orient="records"),
            "trained_seconds": round(metrics["fit_seconds"], 1),
        }
        bundle = model.save(Path(tmp) / "bundle", metadata=meta)
        kind = "structure" if model.use_structure else "composition"
        figures = {
            "parity_cv_by_family": parity_figure(
                table, model.oof_[f"{kind}_pred"].to_numpy(), title=f"chemical-system-grouped CV, {kind} model"
            ),
            "parity_leave_one_family_out": parity_figure(table, oof, title="leave-one-family-out, composition model"),
            "parity_official_test": parity_figure(test_t, served[TARGET].to_numpy(), title="official test split"),
            "feature_importance": importance_figure(model.boosters_[kind]),
        }
        import mlflow

        mlflow.log_text(lofo_table.to_csv(index=False), "tables/leave_one_family_out.csv")
        result = log_and_register(
            task=TASK,
            estimator=model,
            metrics=metrics,
            bundle_dir=bundle,
            input_example=pd.DataFrame({"formula": table["reduced_formula"].head(5).astype(str).tolist()}),
            data_path=data_path,
            figures=figures,
            selection_metric="cv_chemsys_mae",
            registered_model=registered_model,
            baseline=None if smoke_run else shipped_baseline(TASK, "cv_chemsys_mae", data_path),
            smoke_run=smoke_run,
        )
        if ship is not None:
            model.save(ship, metadata=meta, overwrite=True)
            log(f"  shipped bundle written to {ship}")
    return result, metrics


def compare_on_same_folds(
    table: pd.DataFrame, params: dict[str, Any], *, anchor: bool, quick: bool, say
) -> tuple[dict[str, float], pd.DataFrame, np.ndarray]:
    """Composition model vs Magpie + RF / ET anchors on the same chemsys folds and leave-one-family-out splits.

    Returns:
        Metrics (``lofo_*`` of the model pooled over families, ``anchor_<rf|et>_cv_*`` / ``anchor_<rf|et>_lofo_*``),
        the per-family table, and the model's leave-one-family-out predictions per row (NaN outside the families).
    """
    from sse_screen.experiments.conductivity_cv import evaluate, forest_anchor, model_contender

    contenders = {"model": model_contender({**params, "use_structure": False})}
    if anchor:
        n_trees = 50 if quick else 500
        contenders |= {
            "anchor_rf": forest_anchor("rf", n_trees=n_trees, n_jobs=2),
            "anchor_et": forest_anchor("et", n_trees=n_trees, n_jobs=2),
        }
    cv, lofo, _ = evaluate(table, contenders, say=say, keep_lofo=True)
    out: dict[str, float] = {}
    for _, row in cv.iterrows():  # the model's row: "same_folds_cv_*" (censored at the bound, as the anchors)
        name = "same_folds" if row["model"] == "model" else row["model"]
        out |= {f"{name}_cv_{k}": row[k] for k in ("mae", "spearman", "coverage", "out_of_domain") if k in row}
    for _, row in lofo[lofo["family"] == "all"].iterrows():
        prefix = "lofo_" if row["model"] == "model" else f"{row['model']}_lofo_"
        out |= {
            f"{prefix}{k}": row[k]
            for k in ("mae", "spearman", "coverage", "out_of_domain")
            if k in row and np.isfinite(row[k])
        }
    pooled = lofo.attrs["pooled"]["model"]
    return out, lofo.drop(columns=[]), pooled


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``sse-screen train conductivity`` can call this)."""
    parser = argparse.ArgumentParser(prog="sse-screen train conductivity", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML file with ConductivityModel parameters under [model]")
    parser.add_argument("--quick", action="store_true", help="small, fast settings (a smoke run, not a real model)")
    parser.add_argument("--limit", type=int, help="use at most this many OBELiX rows")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or the local sqlite store")
    parser.add_argument("--registered-model", help="registry name (default: sse-screen-conductivity)")
    parser.add_argument("--ship", help="also save the bundle here (models/shipped/conductivity is the shipped default)")
    parser.add_argument("--no-anchor", action="store_true", help="skip the Magpie + RF / ET anchors")
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
