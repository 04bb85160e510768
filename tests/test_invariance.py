"""Formula invariance: every output of predict and rank is a function of the composition, not of its notation.

Property-based (hypothesis): formulas with integer and fractional amounts, with and without parentheses, scaled by
x0.5, x2 or x3 (written as multiplied amounts or as ``(formula)3``) give exactly the same output columns, apart from
the ``formula`` input column itself. Models: small real ones trained once per process (tests/quick_models.py).
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quick_models import quick_models

from sse_screen.screening.predict import predict_table
from sse_screen.screening.rank import RankOptions, rank_candidates

ELEMENTS = ("Na", "Mg", "Al", "Si", "P", "S", "Cl", "O", "Ge", "La", "Zr", "Ta", "Ti", "B", "N", "F", "Br", "I", "Y")
SCALES = (Decimal("0.5"), Decimal(2), Decimal(3))


@pytest.fixture(scope="module")
def models() -> dict:
    return quick_models()


def _text(amount: Decimal, *, omit_one: bool) -> str:
    if omit_one and amount == 1:
        return ""
    return format(amount.normalize(), "f")


@st.composite
def formula_parts(draw: st.DrawFn) -> dict:
    """Li and 1-4 other elements, amounts 0.01-12 (integer or decimal), some of them in a group ``(...)m``."""
    others = draw(st.lists(st.sampled_from(ELEMENTS), min_size=1, max_size=4, unique=True))
    integer = st.integers(1, 12).map(Decimal)
    decimal = st.one_of(
        st.integers(1, 120).map(lambda k: Decimal(k) / 10), st.integers(1, 400).map(lambda k: Decimal(k) / 100)
    )
    amounts = [draw(st.one_of(integer, decimal)) for _ in range(len(others) + 1)]
    elements = ["Li", *draw(st.permutations(others))]
    n_group = draw(st.integers(0, len(elements) - 1))
    multiplier = draw(st.sampled_from([Decimal(1), Decimal(2), Decimal(3), Decimal("0.5"), Decimal("1.5")]))
    return {
        "elements": elements,
        "amounts": amounts,
        "n_group": n_group,
        "multiplier": multiplier,
        "omit_one": draw(st.booleans()),
    }


def render(parts: dict, scale: Decimal = Decimal(1)) -> str:
    """The formula, its amounts outside the group and the group multiplier multiplied by ``scale``."""
    pairs = list(zip(parts["elements"], parts["amounts"], strict=True))
    n_out = len(pairs) - parts["n_group"]
    omit = parts["omit_one"]
    text = "".join(f"{el}{_text(a * scale, omit_one=omit)}" for el, a in pairs[:n_out])
    if parts["n_group"]:
        group = "".join(f"{el}{_text(a, omit_one=omit)}" for el, a in pairs[n_out:])
        text += f"({group}){_text(parts['multiplier'] * scale, omit_one=False)}"
    return text


def scaled(parts: dict, scale: Decimal, parentheses: bool) -> str:
    return f"({render(parts)}){_text(scale, omit_one=False)}" if parentheses else render(parts, scale)


def _same_outputs(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns="formula"), b.drop(columns="formula"), check_exact=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(formula_parts(), st.sampled_from(SCALES), st.booleans()), min_size=1, max_size=3))
def test_scaling_a_formula_changes_no_output(models: dict, rows: list) -> None:
    written = pd.DataFrame({"formula": [render(parts) for parts, _, _ in rows]})
    rescaled = pd.DataFrame({"formula": [scaled(parts, s, paren) for parts, s, paren in rows]})
    _same_outputs(predict_table(written, models), predict_table(rescaled, models))
    options = RankOptions(predict_rejected=True)
    _same_outputs(rank_candidates(written, models, options=options), rank_candidates(rescaled, models, options=options))


def test_the_issue_examples_are_one_composition_each(models: dict) -> None:
    pairs = [
        ("Li10GeP2S12", "Li5Ge0.5PS6"),
        ("Li7La3Zr2O12", "Li3.5La1.5ZrO6"),
        ("Li3PS4", "(Li3PS4)3"),
        ("Li6.4La3Zr1.4Ta0.6O12", "Li12.8La6Zr2.8Ta1.2O24"),
    ]
    for a, b in pairs:
        first = rank_candidates(pd.DataFrame({"formula": [a]}), models)
        second = rank_candidates(pd.DataFrame({"formula": [b]}), models)
        _same_outputs(first, second)
        assert first["status"].iloc[0] == "ranked", first["reason"].iloc[0]


def test_strategy_renders_what_it_means() -> None:
    from sse_screen.features.canonical import canonical_keys

    parts = {
        "elements": ["Li", "P", "S"],
        "amounts": [Decimal(3), Decimal(1), Decimal(4)],
        "n_group": 2,
        "multiplier": Decimal(1),
        "omit_one": True,
    }
    assert render(parts) == "Li3(PS4)1"
    assert scaled(parts, Decimal(2), False) == "Li6(PS4)2"
    assert scaled(parts, Decimal("0.5"), True) == "(Li3(PS4)1)0.5"
    keys = canonical_keys([render(parts), scaled(parts, Decimal(3), False), scaled(parts, Decimal(3), True)])
    assert len(set(keys)) == 1
