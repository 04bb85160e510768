"""A composition's features and conductivity do not depend on the batch it comes in (one table, slices, alone):
a BLAS matrix product sums by the shape of the whole batch, and a feature one unit in the last place apart can take
the other branch of a tree split placed at a training value."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import itertools

from rank_1m import candidate_formulas, diverse_formulas

from sse_screen.features.ion_chemistry import ion_chemistry_features

FORMULAS = candidate_formulas(700, seed=3) + diverse_formulas(300, seed=4)


def _slices(n: int) -> list[slice]:
    bounds = [0, 1, 7, 150, 151, 400, 733, n]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def test_ion_chemistry_features_are_the_same_in_any_batch() -> None:
    whole = ion_chemistry_features(FORMULAS)
    parts = pd.concat([ion_chemistry_features(FORMULAS[s]) for s in _slices(len(FORMULAS))], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts, check_exact=True)


@pytest.mark.parametrize("task", ["conductivity", "stability", "band_gap"])
def test_shipped_predictions_are_the_same_in_any_batch(task: str) -> None:
    from sse_screen.screening.predict import load_models

    model = load_models(tasks=(task,))[task]
    whole = model.predict_table(FORMULAS)
    parts = pd.concat([model.predict_table(FORMULAS[s]) for s in _slices(len(FORMULAS))], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts, check_exact=True)
