"""Normalised split-conformal prediction intervals.

A second model predicts the size of the error (the absolute out-of-fold residual) per row; a calibration set then
fixes the multiplier so that ``prediction ± q * scale`` covers the nominal fraction of true values (Lei et al.,
J. Am. Stat. Assoc. 113, 1094 (2018); Papadopoulos et al. 2002). The guarantee holds on data exchangeable with the
calibration set; coverage on validation data is reported by the training scripts, not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

# Scale predictions below this are treated as this: keeps intervals finite where the scale model says ~0.
MIN_SCALE = 1e-3


@dataclass(frozen=True)
class ConformalCalibration:
    """The multiplier of a normalised conformal interval.

    Attributes:
        quantile: ``q`` such that ``|y - pred| <= q * scale`` on ``coverage`` of the calibration rows.
        coverage: Nominal coverage, e.g. 0.8.
        n_calibration: Number of calibration rows.
    """

    quantile: float
    coverage: float
    n_calibration: int

    def interval(self, prediction: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (target units) of the nominal-coverage interval."""
        half = self.quantile * np.maximum(np.asarray(scale, dtype=float), MIN_SCALE)
        return prediction - half, prediction + half

    def std(self, scale: np.ndarray) -> np.ndarray:
        """Gaussian-equivalent standard deviation: the interval's half-width over z at its two-sided coverage."""
        z = norm.ppf(0.5 + self.coverage / 2)
        return self.quantile * np.maximum(np.asarray(scale, dtype=float), MIN_SCALE) / z

    def to_dict(self) -> dict[str, float | int]:
        return {"quantile": self.quantile, "coverage": self.coverage, "n_calibration": self.n_calibration}

    @classmethod
    def from_dict(cls, data: dict) -> ConformalCalibration:
        return cls(float(data["quantile"]), float(data["coverage"]), int(data["n_calibration"]))


def calibrate(
    y: np.ndarray, prediction: np.ndarray, scale: np.ndarray, *, coverage: float = 0.8
) -> ConformalCalibration:
    """Fit the conformal multiplier on calibration rows never used to fit ``prediction``.

    Args:
        y: True values.
        prediction: Out-of-sample predictions for the same rows.
        scale: Predicted error scale for the same rows (> 0, same units as ``y``).
        coverage: Nominal coverage in (0, 1).
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    scores = np.abs(np.asarray(y, float) - np.asarray(prediction, float)) / np.maximum(scale, MIN_SCALE)
    n = len(scores)
    if n == 0:
        raise ValueError("no calibration rows")
    level = min(1.0, np.ceil((n + 1) * coverage) / n)  # finite-sample correction
    return ConformalCalibration(float(np.quantile(scores, level, method="higher")), coverage, n)
