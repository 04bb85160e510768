"""Honest evaluation of conductivity models: the same chemical-system-grouped folds and leave-one-family-out splits
for every contender and for the Magpie + random-forest / extra-trees anchors.

Data: :func:`features.conductivity_data.conductivity_table` (OBELiX + the McHaffie rows OBELiX does not have).
Targets are "censored at the bound": a ``<1E-10`` row counts as -10. Extrapolated McHaffie rows (room-temperature
values extrapolated from higher-temperature Arrhenius data) may be used for fitting but are never scored.

* **chemsys CV**: 5 folds, ``GroupKFold(shuffle=True, random_state=0)`` over the chemical system (set of elements),
  so a doping series and its parent never straddle folds.
* **leave-one-family-out (LOFO)**: each structure family with at least ``min_family_rows`` scored rows is held out
  in turn (OBELiX's ``family`` column; McHaffie rows take the family of their chemical system's OBELiX rows); the
  fit sees every other row.

Usage::

    python -m sse_screen.experiments.conductivity_cv            # model vs anchors, chemsys CV and LOFO per family
    python -m sse_screen.experiments.conductivity_cv --quick    # fewer trees (smoke run)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import GroupKFold

from sse_screen.features.conductivity_data import OTHER_FAMILY, conductivity_table

#: A contender: ``fit_predict(train_table, test_table) -> (prediction, lower, upper, in_domain)`` (log10 S/cm;
#: lower/upper/in_domain may be None).
FitPredict = Callable[[pd.DataFrame, pd.DataFrame], tuple[np.ndarray, Any, Any, Any]]
EXCLUDED_FAMILIES = ("unknown", OTHER_FAMILY)


def scored(table: pd.DataFrame) -> np.ndarray:
    """Rows that are scored: every row but McHaffie's extrapolated values."""
    return ~table["extrapolated"].to_numpy(dtype=bool)


def target_at_bound(table: pd.DataFrame) -> np.ndarray:
    """log10 sigma (S/cm) with censored rows at their bound."""
    return table["log10_sigma_upper"].to_numpy(dtype=float)


def chemsys_folds(table: pd.DataFrame, *, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of the chemical-system-grouped folds."""
    groups = pd.factorize(table["chemsys"])[0]
    return list(GroupKFold(n_folds, shuffle=True, random_state=seed).split(table, groups=groups))


def family_folds(table: pd.DataFrame, *, min_family_rows: int = 10) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per held-out family, (train, test) row indices of the leave-one-family-out splits."""
    family = table["family_group"].to_numpy()
    counts = pd.Series(family[scored(table)]).value_counts()
    out = {}
    for name, count in counts.items():
        if count >= min_family_rows and name not in EXCLUDED_FAMILIES:
            out[name] = (np.flatnonzero(family != name), np.flatnonzero(family == name))
    return out


def scores(y: np.ndarray, pred: np.ndarray, lower=None, upper=None, domain=None) -> dict[str, float]:
    """MAE (log10 S/cm), Spearman, interval coverage and out-of-domain fraction of one set of predictions."""
    out = {"n": float(len(y)), "mae": float(np.mean(np.abs(pred - y)))}
    out["spearman"] = float(spearmanr(y, pred).statistic) if len(y) > 2 else float("nan")
    if lower is not None:
        out["coverage"] = float(np.mean((y >= lower) & (y <= upper)))
    if domain is not None:
        out["out_of_domain"] = float(np.mean(~np.asarray(domain, dtype=bool)))
    return out


def evaluate(
    table: pd.DataFrame,
    contenders: dict[str, FitPredict],
    *,
    folds=None,
    families=None,
    say=lambda m: None,
    keep_lofo: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """Score every contender on the same chemsys folds and LOFO splits.

    Returns:
        The chemsys-CV table (one row per contender), the LOFO table (contender x family, plus ``all`` pooled),
        and per contender the chemsys out-of-fold predictions (NaN where not scored). With ``keep_lofo``, the LOFO
        table's ``attrs["pooled"]`` holds per contender the leave-one-family-out predictions (NaN outside).
    """
    folds = chemsys_folds(table) if folds is None else folds
    families = family_folds(table) if families is None else families
    y, keep = target_at_bound(table), scored(table)
    cv_rows, lofo_rows, oof, pooled_pred = [], [], {}, {}
    for name, fit_predict in contenders.items():
        say(f"{name}: chemsys CV")
        parts = {k: np.full(len(table), np.nan) for k in ("pred", "lower", "upper", "domain")}
        for train, test in folds:
            pred, low, high, dom = fit_predict(table.iloc[train], table.iloc[test])
            for k, v in zip(parts, (pred, low, high, dom), strict=True):
                if v is not None:
                    parts[k][test] = np.asarray(v, dtype=float)
        oof[name] = np.where(keep, parts["pred"], np.nan)
        cv_rows.append({"model": name, **_scores_of(y, parts, keep)})
        say(f"{name}: leave-one-family-out")
        pooled = {k: np.full(len(table), np.nan) for k in parts}
        for family, (train, test) in families.items():
            pred, low, high, dom = fit_predict(table.iloc[train], table.iloc[test])
            part = {k: np.full(len(table), np.nan) for k in parts}
            for k, v in zip(parts, (pred, low, high, dom), strict=True):
                if v is not None:
                    part[k][test] = pooled[k][test] = np.asarray(v, dtype=float)
            mask = np.zeros(len(table), dtype=bool)
            mask[test] = True
            lofo_rows.append({"model": name, "family": family, **_scores_of(y, part, mask & keep)})
        lofo_rows.append({"model": name, "family": "all", **_scores_of(y, pooled, ~np.isnan(pooled["pred"]) & keep)})
        pooled_pred[name] = pooled["pred"]
    lofo = pd.DataFrame(lofo_rows)
    if keep_lofo:
        lofo.attrs["pooled"] = pooled_pred
    return pd.DataFrame(cv_rows), lofo, oof


def _scores_of(y: np.ndarray, parts: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, float]:
    has_interval = not np.isnan(parts["lower"][rows]).all()
    has_domain = not np.isnan(parts["domain"][rows]).all()
    return scores(
        y[rows], parts["pred"][rows], parts["lower"][rows] if has_interval else None,
        parts["upper"][rows] if has_interval else None, parts["domain"][rows] > 0.5 if has_domain else None,
    )  # fmt: skip


def forest_anchor(kind: str, *, n_trees: int = 500, seed: int = 0, n_jobs: int = 1) -> FitPredict:
    """The anchor: Magpie features (the project's featurizer) + sklearn random forest or extra-trees, censored at
    the bound, every training row (extrapolated McHaffie values included) with weight 1."""
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    from sse_screen.features.composition import CompositionFeaturizer

    featurizer = CompositionFeaturizer(preset="magpie").fit()
    cache: dict[str, np.ndarray] = {}

    def features(t: pd.DataFrame) -> np.ndarray:
        missing = [f for f in dict.fromkeys(t["formula"]) if f not in cache]
        if missing:
            cache.update(zip(missing, featurizer.transform(missing), strict=True))
        return np.vstack([cache[f] for f in t["formula"]])

    def fit_predict(train: pd.DataFrame, test: pd.DataFrame):
        cls = RandomForestRegressor if kind == "rf" else ExtraTreesRegressor
        model = cls(n_estimators=n_trees, random_state=seed, n_jobs=n_jobs)
        model.fit(features(train), target_at_bound(train))
        return model.predict(features(test)), None, None, None

    return fit_predict


def model_contender(params: dict[str, Any] | None = None) -> FitPredict:
    """The shipped design: :class:`models.conductivity.ConductivityModel` (composition model) with ``params``."""
    from sse_screen.models.conductivity import ConductivityModel

    def fit_predict(train: pd.DataFrame, test: pd.DataFrame):
        model = ConductivityModel(**(params or {})).fit(
            train,
            y_lower=train["log10_sigma_lower"],
            y_upper=train["log10_sigma_upper"],
            structures=[None] * len(train),
        )
        out = model.predict_table(test["formula"])
        return (out["log10_sigma_s_per_cm"].to_numpy(), out["log10_sigma_lower"].to_numpy(),
                out["log10_sigma_upper"].to_numpy(), out["in_domain"].to_numpy())  # fmt: skip

    return fit_predict


def format_tables(cv: pd.DataFrame, lofo: pd.DataFrame) -> str:
    """The chemsys-CV table and the LOFO table (MAE / Spearman per family, contenders side by side), as text."""
    lines = ["chemsys-grouped 5-fold CV (scored rows: OBELiX + McHaffie room-temperature, censored at the bound)"]
    lines.append(cv.round(3).to_string(index=False))
    lines.append("\nleave-one-family-out: MAE / Spearman (coverage, out-of-domain fraction where the model has them)")
    wide = lofo.pivot(index="family", columns="model", values=["mae", "spearman"]).round(3)
    extra = [c for c in ("coverage", "out_of_domain") if c in lofo.columns]
    if extra:
        wide = wide.join(lofo.pivot(index="family", columns="model", values=extra).round(2).dropna(axis=1, how="all"))
    wide.insert(0, "n", lofo.groupby("family")["n"].first().astype(int))
    lines.append(wide.to_string())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the model vs the anchors on the same folds."""
    parser = argparse.ArgumentParser(prog="conductivity_cv", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50-tree anchors and a small model (smoke run)")
    parser.add_argument("--no-anchor", action="store_true", help="score the model only")
    args = parser.parse_args(argv)
    table = conductivity_table()
    n_trees = 50 if args.quick else 500
    contenders: dict[str, FitPredict] = {}
    if not args.no_anchor:
        contenders |= {
            "anchor_rf": forest_anchor("rf", n_trees=n_trees),
            "anchor_et": forest_anchor("et", n_trees=n_trees),
        }
    contenders["model"] = model_contender({"n_estimators": 60} if args.quick else None)
    cv, lofo, _ = evaluate(table, contenders, say=lambda m: print(m, file=sys.stderr))
    print(format_tables(cv, lofo))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
