"""Fuzzing the API on a real server: schema-driven (schemathesis, from our /openapi.json) and property-based
(hypothesis): whatever arrives, the answer is never a 500 and never a traceback; odd formulas are per-row errors."""

from __future__ import annotations

import json
import os

import httpx
import pytest
import schemathesis
from api_support import shared_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: Examples per test (and per operation); raise it for a longer hunt, e.g. SSE_SCREEN_FUZZ_EXAMPLES=500.
EXAMPLES = int(os.environ.get("SSE_SCREEN_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)


@pytest.fixture(scope="module")
def server(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    return shared_server(pytestconfig, tmp_path_factory.mktemp("fuzz-server"))


def test_openapi_operations_never_fail_with_a_server_error(server: str) -> None:
    """Every operation in our /openapi.json, with schemathesis-generated bodies (valid and not), queries, uploads.

    (Driven through schemathesis' Hypothesis strategies: its pytest plugin does not support pytest 9 yet.)
    """
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/rank", "/api/predict", "/api/models", "/health"}
    seen: dict[str, set[int]] = {}
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def check(case) -> None:
            response = case.call(base_url=server, timeout=120)
            label = f"{case.method} {case.path}"
            assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
            assert response.status_code != 400, f"{label}: a bad request is 415/422 with a reason: {response.text}"
            assert "Traceback" not in response.text
            if response.status_code >= 400:
                assert isinstance(response.json()["detail"], str), response.text[:300]
            seen.setdefault(label, set()).add(response.status_code)

        check()
    assert 200 in seen["POST /api/rank"] and 422 in seen["POST /api/rank"], seen  # valid and invalid both tried
    print("status codes seen:", {k: sorted(v) for k, v in seen.items()})


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "Li\udfffS"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
OPTION_KEYS = st.sampled_from(
    ["formulas", "mobile_ion", "weights", "mode", "order_by", "exclusions", "max_e_hull_ev_per_atom", "explain"]
)


@FUZZ
@given(body=st.dictionaries(OPTION_KEYS, JSON_VALUES, max_size=5) | JSON_VALUES)
def test_arbitrary_json_bodies_are_answered_with_a_reason(server: str, body) -> None:
    response = httpx.post(f"{server}/api/rank", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code in (200, 422), response.text[:300]
    if response.status_code == 422:
        assert response.json()["detail"]


@FUZZ
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_as_json_or_as_a_file(server: str, raw: bytes) -> None:
    as_json = httpx.post(f"{server}/api/rank", content=raw, headers={"content-type": "application/json"})
    assert as_json.status_code in (200, 422), as_json.text[:300]
    for name in ("fuzz.csv", "fuzz.txt", "fuzz.zip", "fuzz.parquet"):
        upload = httpx.post(f"{server}/api/predict", files={"file": (name, raw)}, timeout=120)
        assert upload.status_code in (200, 422), f"{name}: {upload.text[:300]}"


FORMULA_ALPHABET = "LiNaPSClOBrIZrLaGe()[]{}.0123456789 -+=xX·\u2082\t"
FORMULA_LIKE = st.text(alphabet=FORMULA_ALPHABET, max_size=24) | st.text(max_size=24)


@FUZZ
@given(formulas=st.lists(FORMULA_LIKE, min_size=1, max_size=12))
def test_any_formula_text_is_a_row_never_a_failed_request(server: str, formulas: list[str]) -> None:
    response = httpx.post(f"{server}/api/rank", json={"formulas": formulas}, timeout=120)
    assert response.status_code == 200, response.text[:300]
    rows = response.json()["rows"]
    assert sorted(r["input_row"] for r in rows) == list(range(len(formulas)))  # one row per input, none dropped
    for row in rows:
        assert row["status"] in {"ranked", "rejected", "invalid"}
        if row["status"] != "ranked":
            assert row["reason"], row
