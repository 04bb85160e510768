"""Screening metrics: what matters when a model decides which candidates are worth a furnace run.

MAE alone hides what screening needs (Bartel et al., npj Comput. Mater. 6, 97 (2020)): a composition model can
predict formation energies well and stability poorly. So every regression is also scored as a classifier of the
useful class (stable, insulating, superionic) and as a ranker.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import f1_score, mean_absolute_error, r2_score, roc_auc_score

SUPERIONIC_LOG10 = -4.0  # sigma >= 1e-4 S/cm
UPSTREAM_CENSORED_LOG10 = -15.0  # OBELiX's own loader maps "<1E-10" to 1e-15: used only for comparable figures


def discovery_acceleration_factor(
    y_true_positive: np.ndarray, score: np.ndarray, *, top_fraction: float = 0.1
) -> float:
    """Precision among the ``top_fraction`` highest-scored rows divided by the prevalence of positives.

    A DAF of 3 means that testing the model's top 10% finds positives three times as often as testing at random.

    Args:
        y_true_positive: Boolean array, True where the row is truly in the useful class.
        score: Higher means "more likely useful" (e.g. ``-predicted_e_hull`` or ``p_stable``).
        top_fraction: Fraction of rows taken from the top of the ranking.
    """
    y = np.asarray(y_true_positive, dtype=bool)
    prevalence = y.mean()
    if prevalence == 0:
        return float("nan")
    k = max(1, round(top_fraction * len(y)))
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:k]
    return float(y[top].mean() / prevalence)


def interval_coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of true values inside ``[lower, upper]``."""
    y = np.asarray(y, dtype=float)
    return float(np.mean((y >= lower) & (y <= upper)))


def regression_report(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    positive_below: float | None = None,
    positive_above: float | None = None,
    p_positive: np.ndarray | None = None,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict[str, float]:
    """Score a regression as a regressor, a classifier of the useful class and a ranker.

    Args:
        y_true: True values (target units).
        y_pred: Predicted values (target units).
        positive_below: The useful class is ``y <= positive_below`` (e.g. E_hull <= 0.025 eV/atom).
        positive_above: The useful class is ``y >= positive_above`` (e.g. band gap >= 1 eV).
        p_positive: Predicted probability of the useful class; if None the ranking uses ``y_pred``.
        lower: Lower bounds of prediction intervals, for the coverage.
        upper: Upper bounds of prediction intervals.

    Returns:
        ``mae``, ``rmse``, ``r2``, ``spearman``; with a class threshold also ``roc_auc``, ``f1``, ``daf_top10``,
        ``prevalence``; with intervals ``coverage`` and ``mean_interval_width``.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    report = {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))),
        "r2": float(r2_score(y_true, y_pred)),
        "spearman": float(spearmanr(y_true, y_pred).statistic),
    }
    if (positive_below is None) == (positive_above is None):
        if positive_below is not None:
            raise ValueError("give positive_below or positive_above, not both")
    else:
        if positive_below is not None:
            positive, pred_positive, score = y_true <= positive_below, y_pred <= positive_below, -y_pred
        else:
            positive, pred_positive, score = y_true >= positive_above, y_pred >= positive_above, y_pred
        if p_positive is not None:
            score = np.asarray(p_positive, dtype=float)
            pred_positive = score >= 0.5
        report["prevalence"] = float(positive.mean())
        if 0 < positive.sum() < len(positive):
            report["roc_auc"] = float(roc_auc_score(positive, score))
        report["f1"] = float(f1_score(positive, pred_positive))
        report["daf_top10"] = discovery_acceleration_factor(positive, score)
    if lower is not None and upper is not None:
        report["coverage"] = interval_coverage(y_true, lower, upper)
        report["mean_interval_width"] = float(np.mean(np.asarray(upper) - np.asarray(lower)))
    return report


def conductivity_report(
    lower: np.ndarray, upper: np.ndarray, pred: np.ndarray, *, pred_lower=None, pred_upper=None
) -> dict[str, float]:
    """Score conductivity predictions against interval targets (log10 S/cm).

    Rows with ``lower == upper`` are measured; the others censored. ``mae``, ``rmse``, ``r2``, ``spearman``,
    ``roc_auc``/``f1``/``daf_top10`` (sigma >= 1e-4 S/cm) and ``coverage`` are over measured rows.
    ``precision_top10`` is over all rows (the top 10% by prediction; censored rows are all below 1e-8 S/cm, so
    they count as negatives). ``mae_upstream``/``spearman_upstream`` score all rows with censored values set to
    1e-15 S/cm (OBELiX's loader convention, for comparison with published numbers). ``censored_below_bound``: the
    fraction of censored rows predicted at or below their bound; ``censored_interval_reaches``: the fraction whose
    interval reaches below the bound.
    """
    lower, upper, pred = (np.asarray(a, dtype=float) for a in (lower, upper, pred))
    exact = lower == upper
    cens = ~exact
    lo = None if pred_lower is None else np.asarray(pred_lower, float)[exact]
    hi = None if pred_upper is None else np.asarray(pred_upper, float)[exact]
    report = regression_report(upper[exact], pred[exact], positive_above=SUPERIONIC_LOG10, lower=lo, upper=hi)
    positive = lower >= SUPERIONIC_LOG10
    daf = discovery_acceleration_factor(positive, pred)
    report["precision_top10"] = daf * float(positive.mean()) if np.isfinite(daf) else float("nan")
    upstream = np.where(exact, upper, UPSTREAM_CENSORED_LOG10)
    upstream_report = regression_report(upstream, pred)
    report["mae_upstream"], report["spearman_upstream"] = upstream_report["mae"], upstream_report["spearman"]
    report["n"], report["n_censored"] = float(len(pred)), float(cens.sum())
    if cens.any():
        report["censored_below_bound"] = float(np.mean(pred[cens] <= upper[cens]))
        if pred_lower is not None:
            report["censored_interval_reaches"] = float(np.mean(np.asarray(pred_lower, float)[cens] <= upper[cens]))
    return report
