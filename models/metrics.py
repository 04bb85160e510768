"""Screening metrics: what matters when a model decides which candidates are worth a furnace run.

MAE alone hides what screening needs (Bartel et al., npj Comput. Mater. 6, 97 (2020)): a composition model can
predict formation energies well and stability poorly. So every regression is also scored as a classifier of the
useful class (stable, insulating, superionic) and as a ranker.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import f1_score, mean_absolute_error, r2_score, roc_auc_score


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
