"""What the property and the conductivity model share in training: seeds, the error-scale booster and the
out-of-fold + split-conformal calibration loop.

Both models wrap a point model (target units) in a second, shallower booster that predicts the size of the
out-of-fold error; a normalised split-conformal multiplier (:mod:`models.uncertainty`) fitted on the out-of-fold
rows turns that size into a nominal-coverage interval. Seeds: fold ``k`` is fitted with ``seed + k``, the final
models with ``seed`` itself (:func:`base_seed`).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from sse_screen.models.uncertainty import ConformalCalibration, calibrate

#: A progress callback: ``say("fold 1/5")``.
Say = Callable[[str], None]
#: One fold's point predictions: ``fit_predict(train_rows, test_rows, seed) -> prediction of the test rows``.
FitPredict = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
Folds = Sequence[tuple[np.ndarray, np.ndarray]]


def quiet(message: str) -> None:
    """A progress callback that says nothing."""


def base_seed(random_state: int | None) -> int:
    """The seed every booster's seed derives from (``random_state``; None: 0)."""
    return 0 if random_state is None else int(random_state)


def tree_params(estimator: Any, seed: int) -> dict[str, Any]:
    """xgboost tree settings of an estimator (its ``learning_rate``, ``max_depth``, ``min_child_weight``,
    ``subsample``, ``colsample_bytree``, ``n_jobs``) with a seed; valid for ``xgb.train`` and the sklearn wrappers."""
    return {
        "learning_rate": estimator.learning_rate,
        "max_depth": estimator.max_depth,
        "min_child_weight": estimator.min_child_weight,
        "subsample": estimator.subsample,
        "colsample_bytree": estimator.colsample_bytree,
        "tree_method": "hist",
        "random_state": seed,
        "n_jobs": estimator.n_jobs,
    }


#: Below this many rows a prediction runs on one thread: starting OpenMP's threads costs more than the trees
#: (measured on a busy 2-core machine: ~23 ms per call for one row on all threads, ~2 ms on one).
SINGLE_THREAD_ROWS = 1024


#: Per booster: a lock held while it predicts, and the thread count it is set to. A booster must not be
#: reconfigured while another thread predicts with it (xgboost fails with "need_configuration_"), so every
#: prediction through :func:`threads_for` holds the booster's lock; different boosters still predict in parallel.
_THREAD_STATE: weakref.WeakKeyDictionary[xgb.Booster, tuple[threading.Lock, list[int]]] = weakref.WeakKeyDictionary()
_THREAD_STATE_LOCK = threading.Lock()


@contextlib.contextmanager
def threads_for(booster: xgb.Booster, n_rows: int) -> Iterator[xgb.Booster]:
    """The booster, set to one thread for fewer than :data:`SINGLE_THREAD_ROWS` rows (else all cores) and locked
    against other threads for the duration; the outputs do not depend on the thread count."""
    with _THREAD_STATE_LOCK:
        state = _THREAD_STATE.get(booster)
        if state is None:
            state = _THREAD_STATE[booster] = (threading.Lock(), [-1])
    lock, current = state
    wanted = 1 if n_rows < SINGLE_THREAD_ROWS else 0
    with lock:
        if current[0] != wanted:
            booster.set_param({"nthread": wanted})
            current[0] = wanted
        yield booster


def predict_rows(booster: xgb.Booster, x: np.ndarray, *, where: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
    """``booster.inplace_predict(x, **kwargs)`` on a thread count suited to the number of rows, float64.

    ``where``: a boolean row mask; only those rows are predicted, the others are NaN.
    """
    if where is not None:
        values = np.full(len(x), np.nan)
        if where.any():
            values[where] = predict_rows(booster, x[where], **kwargs)
        return values
    with threads_for(booster, len(x)) as locked:
        return np.asarray(locked.inplace_predict(x, **kwargs), dtype=float)


def margin(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    """Untransformed booster output (target units for regression objectives), float64."""
    return predict_rows(booster, x, predict_type="margin")


def fit_scale_booster(
    x: np.ndarray, abs_residual: np.ndarray, params: dict[str, Any], *, n_estimators: int
) -> xgb.Booster:
    """Fit the booster of the error size: L1 loss on ``|y - out-of-fold prediction|`` (target units).

    Args:
        x: Feature matrix of the rows.
        abs_residual: Absolute out-of-fold residual per row (target units).
        params: xgboost parameters (tree settings and seed); the objective is set here.
        n_estimators: Boosting rounds.
    """
    data = xgb.DMatrix(x, label=abs_residual)
    return xgb.train(params | {"objective": "reg:absoluteerror"}, data, num_boost_round=n_estimators)


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold predictions of a model and the interval calibrated on them.

    Attributes:
        prediction: Out-of-fold point predictions (target units).
        scale: Out-of-fold predicted error size (target units, >= 0).
        residual: ``|y - prediction|`` (target units).
        calibration: Conformal multiplier, fitted on the measured rows.
        measured: Rows with an exact target: they train the error-size boosters and calibrate.
    """

    prediction: np.ndarray
    scale: np.ndarray
    residual: np.ndarray
    calibration: ConformalCalibration
    measured: np.ndarray

    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold lower and upper bounds (target units) of every row."""
        return self.calibration.interval(self.prediction, self.scale)


def out_of_fold(
    x: np.ndarray,
    y: np.ndarray,
    folds: Folds,
    *,
    fit_predict: FitPredict,
    scale_params: Callable[[int], dict[str, Any]],
    scale_rounds: int,
    seed: int,
    coverage: float,
    measured: np.ndarray | None = None,
    say: Say = quiet,
    label: str = "cross-validation",
) -> OutOfFold:
    """Out-of-fold point predictions, out-of-fold error sizes and the conformal calibration on them.

    Args:
        x: Feature matrix.
        y: Target (target units); for censored rows any value (they are left out of the error model).
        folds: ``(train_rows, test_rows)`` index pairs.
        fit_predict: Fits the point model on the train rows with a seed and predicts the test rows.
        scale_params: ``seed -> xgboost parameters`` of the error-size booster (:func:`fit_scale_booster`).
        scale_rounds: Boosting rounds of the error-size booster.
        seed: Base seed; fold ``k`` uses ``seed + k``.
        coverage: Nominal interval coverage.
        measured: Rows whose target is exact (default: all); only they fit the error model and calibrate.
        say: Progress callback.
        label: Prefix of the progress messages.
    """
    measured = np.ones(len(y), dtype=bool) if measured is None else np.asarray(measured, dtype=bool)
    prediction = np.empty(len(y))
    for k, (train, test) in enumerate(folds):
        say(f"{label} fold {k + 1}/{len(folds)}")
        prediction[test] = fit_predict(train, test, seed + k)
    say(f"{label} interval model")
    residual = np.abs(y - prediction)
    scale = np.empty(len(y))
    for k, (train, test) in enumerate(folds):
        train = train[measured[train]]
        booster = fit_scale_booster(x[train], residual[train], scale_params(seed + k), n_estimators=scale_rounds)
        scale[test] = np.maximum(margin(booster, x[test]), 0)
    calibration = calibrate(y[measured], prediction[measured], scale[measured], coverage=coverage)
    return OutOfFold(prediction, scale, residual, calibration, measured)


def fit_final_scale(x: np.ndarray, oof: OutOfFold, params: dict[str, Any], *, n_estimators: int) -> xgb.Booster:
    """The served error-size booster: fitted on every measured row's out-of-fold residual."""
    rows = oof.measured
    return fit_scale_booster(x[rows], oof.residual[rows], params, n_estimators=n_estimators)
