"""Rank's funnel and shared feature table: cheap checks before the models, one featurization per composition.

Models: small real ones trained once per process (tests/quick_models.py).
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from quick_models import quick_models

from sse_screen.features.composition import featurized_rows
from sse_screen.screening.cli import _build_parser, _rank_options
from sse_screen.screening.predict import predict_table, prediction_columns
from sse_screen.screening.rank import RankOptions, rank_candidates

PREDICTED = ["e_hull_ev_per_atom", "p_stable", "band_gap_ev", "log10_sigma_s_per_cm", "log10_sigma_upper"]
FORMULAS = [
    "Li3.4Ge0.4P0.6S4",  # 0
    "Li10.2Ge1.2P1.8S12",  # 1 same composition as 0
    "NaCl",  # 2 no Li
    "LiO4",  # 3 cannot be charge balanced (LiO3 is an ozonide)
    "Li2PbO3",  # 4 excluded element
    "Xx2O",  # 5 invalid
    "Li7La3Zr2O12",  # 6
    "Li17Ge2P3S20",  # 7 same composition as 0, integer formula
]


@pytest.fixture(scope="module")
def models() -> dict:
    return quick_models()


def _by_input(ranked: pd.DataFrame) -> pd.DataFrame:
    return ranked.set_index("input_row").sort_index()


def test_rejected_and_invalid_rows_are_not_predicted_and_say_why(models: dict) -> None:
    out = _by_input(rank_candidates(pd.DataFrame({"formula": FORMULAS}), models))
    assert out["status"].tolist() == ["ranked", "rejected", "rejected", "rejected", "rejected", "invalid", "ranked",
                                      "rejected"]  # fmt: skip
    assert out.loc[2, "reason"] == "contains no Li (mobile ion)"
    assert out.loc[3, "reason"].startswith("cannot be charge balanced")
    assert out.loc[4, "reason"] == "contains Pb (toxic, excluded)"
    assert out.loc[5, "reason"] == "unknown element symbol 'Xx'"
    columns = [c for c in prediction_columns(models) if c != "error"]
    for row in (2, 3, 4, 5):
        assert all(pd.isna(v) or v == "" for v in out.loc[row, columns]), row
    assert out.loc[[0, 6], PREDICTED].notna().all().all()


def test_scaled_formulas_are_one_composition_and_duplicates_copy_the_original(models: dict) -> None:
    out = _by_input(rank_candidates(pd.DataFrame({"formula": FORMULAS}), models))
    for row in (1, 7):
        assert out.loc[row, "reason"] == "duplicate of row 1 (same composition)"
        assert out.loc[row, "duplicate_of"] == 0
        pd.testing.assert_series_equal(out.loc[row, PREDICTED], out.loc[0, PREDICTED], check_names=False)


def test_predict_rejected_fills_the_rejected_rows_only(models: dict) -> None:
    out = _by_input(
        rank_candidates(pd.DataFrame({"formula": FORMULAS}), models, options=RankOptions(predict_rejected=True))
    )
    assert out.loc[[0, 1, 2, 3, 4, 6, 7], PREDICTED].notna().all().all()
    assert out.loc[5, PREDICTED].isna().all()  # invalid: nothing to predict
    assert out.loc[2, "reason"] == "contains no Li (mobile ion)"  # still rejected, now with predictions
    plain = predict_table(pd.DataFrame({"formula": FORMULAS}), models)
    np.testing.assert_array_equal(
        out.loc[[2, 3, 4], PREDICTED].to_numpy(float), plain.loc[[2, 3, 4], PREDICTED].to_numpy(float)
    )


def test_cli_flag_sets_the_option(tmp_path) -> None:
    parser = _build_parser()
    assert _rank_options(parser.parse_args(["rank", "x.csv", "--predict-rejected"])).predict_rejected is True
    assert _rank_options(parser.parse_args(["rank", "x.csv"])).predict_rejected is False


class Recording:
    """A real model that records how many formulas, and which feature tables, each call was given."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls: list[tuple[str, int, int | None]] = []

    def output_columns(self) -> list[str]:
        return self.model.output_columns()

    def _forward(self, name: str, formulas, features, **kwargs):
        self.calls.append((name, len(formulas), None if features is None else len(features)))
        method = getattr(self.model, name)
        if "features" in inspect.signature(method).parameters:
            kwargs["features"] = features
        return method(formulas, **kwargs)

    def predict_table(self, formulas, *, features=None, structures=None):
        extra = {"structures": structures} if structures is not None else {}
        return self._forward("predict_table", formulas, features, **extra)

    def explain(self, formulas, *, features=None, top: int = 3):
        return self._forward("explain", formulas, features, top=top)


def _thousand_rows() -> pd.DataFrame:
    """1,000 rows, 10 distinct compositions each written several ways (scaled, in parentheses)."""
    bases = ["Li3PS4", "Li7La3Zr2O12", "Li6PS5Cl", "Li3InCl6", "Li10GeP2S12", "Li3YCl6", "Li2S", "LiF", "Li3N",
             "Li3OCl"]  # fmt: skip
    forms = [[b, f"({b})2", f"({b})0.5", f"({b})3"] for b in bases]
    return pd.DataFrame({"formula": [forms[i % 10][(i // 10) % 4] for i in range(1000)]})


def test_a_batch_reaches_each_model_once_per_distinct_composition_with_one_feature_table(models: dict) -> None:
    recording = {task: Recording(model) for task, model in models.items()}
    ranked = rank_candidates(_thousand_rows(), recording, options=RankOptions(predict_rejected=True))
    assert (ranked["status"] == "ranked").sum() == 10
    for model in recording.values():
        predict_calls = [c for c in model.calls if c[0] == "predict_table"]
        assert predict_calls == [("predict_table", 10, 10)]
    for task in ("stability", "conductivity"):
        assert recording[task].calls[-1] == ("explain", 10, 10)


def _models_take_features(models: dict) -> bool:
    return all("features" in inspect.signature(m.predict_table).parameters for m in models.values())


def test_rank_featurizes_each_distinct_composition_once(models: dict) -> None:
    if not _models_take_features(models):
        pytest.skip("these models featurize by themselves (no features= keyword yet)")
    table = _thousand_rows()
    before = featurized_rows()
    rank_candidates(table, models)
    assert featurized_rows() - before == 10
    before = featurized_rows()
    predict_table(table, models)
    assert featurized_rows() - before == 10


def test_nothing_to_predict_and_empty_tables(models: dict) -> None:
    out = rank_candidates(pd.DataFrame({"formula": ["NaCl", "Xx2O", "NaCl"]}), models)
    assert out["status"].tolist() == ["rejected", "rejected", "invalid"]
    assert out[PREDICTED].isna().all().all()
    assert out["reason"].tolist()[1].startswith("duplicate of row 1 (same composition)")
    empty = rank_candidates(pd.DataFrame({"formula": pd.Series([], dtype=object)}), models)
    assert len(empty) == 0 and set(PREDICTED) <= set(empty.columns)
    assert len(predict_table(pd.DataFrame({"formula": pd.Series([], dtype=object)}), models)) == 0


def test_a_table_where_no_row_parses_ranks_every_row_as_invalid(models: dict) -> None:
    table = pd.DataFrame({"formula": pd.Series(["", None, "Xx2"], dtype=object)})
    ranked = rank_candidates(table, models)
    assert len(ranked) == 3 and (ranked["status"] == "invalid").all()
    assert ranked["reason"].str.len().gt(0).all()
