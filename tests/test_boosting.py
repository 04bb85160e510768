"""Predictions from several threads at once: the thread count set per call never races another thread's predict."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xgboost as xgb

from sse_screen.models.boosting import SINGLE_THREAD_ROWS, predict_rows
from sse_screen.models.explain import explain_rows


def test_concurrent_small_and_large_predictions_agree_with_serial_ones() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8))
    booster = xgb.train({"max_depth": 4, "nthread": 1}, xgb.DMatrix(x, label=x[:, 0] - x[:, 1]), num_boost_round=40)
    small, large = x[:3], x[: SINGLE_THREAD_ROWS + 200]
    expected_small, expected_large = predict_rows(booster, small), predict_rows(booster, large)
    expected_text = explain_rows(booster, small, [None] * 3)

    def work(i: int) -> bool:  # alternating sizes switch the booster's thread count between calls
        if i % 3 == 2:
            return explain_rows(booster, small, [None] * 3) == expected_text
        data, expected = (small, expected_small) if i % 2 else (large, expected_large)
        return bool(np.array_equal(predict_rows(booster, data), expected))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(240)))
    assert all(results)
