"""The REST API through a real uvicorn server on 127.0.0.1: results, uploads, errors, limits and the API token."""

from __future__ import annotations

import io
import json
import re
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_support import EXAMPLE_FORMULAS, ROOT, model_uris_for_tests, shared_server

from sse_screen.features.datasets import data_dir

CIFS = sorted((data_dir() / "obelix" / "randomized_cifs").glob("*.cif"))[:2]
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def server(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    return shared_server(pytestconfig, tmp_path_factory.mktemp("api-server"))


@pytest.fixture(scope="module")
def locked_server(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A server with an API token, a 4 kB body limit and at most 50 rows per request."""
    return shared_server(
        pytestconfig,
        tmp_path_factory.mktemp("api-locked"),
        SSE_SCREEN_API_TOKEN=TOKEN,
        SSE_SCREEN_MAX_UPLOAD_BYTES="4000",
        SSE_SCREEN_MAX_ROWS="50",
    )


@pytest.fixture(scope="module")
def client(server: str) -> httpx.Client:
    with httpx.Client(base_url=server, timeout=120) as c:
        yield c


def _assert_clean_error(response: httpx.Response, status: int, *needles: str) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in response.text and 'File "' not in response.text
    for needle in needles:
        assert needle in detail, detail
    return detail


def test_health_openapi_and_page(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok", "models": ["band_gap", "conductivity", "stability"]}
    spec = client.get("/openapi.json").json()
    assert {"/api/rank", "/api/predict", "/api/models", "/health"} <= set(spec["paths"])
    body = spec["paths"]["/api/rank"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert "formulas" in body["application/json"]["schema"]["required"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http://" not in page.text.replace("http://www.w3.org", "") and "https://" not in page.text


def test_rank_json_matches_the_pure_function_row_by_row(client: httpx.Client, pytestconfig: pytest.Config) -> None:
    from sse_screen.screening.predict import load_models
    from sse_screen.screening.rank import RankOptions, rank_candidates

    formulas = [*EXAMPLE_FORMULAS, None, "   "]
    response = client.post("/api/rank", json={"formulas": formulas, "weights": {"cost": 0}, "mode": "pessimistic"})
    assert response.status_code == 200, response.text
    data = response.json()
    got = pd.DataFrame(data["rows"], columns=data["columns"])
    table = pd.DataFrame({"formula": [(f or "").strip() for f in formulas]})
    expected = rank_candidates(
        table,
        load_models(model_uris_for_tests(pytestconfig)),
        options=RankOptions(weights={"cost": 0}, mode="pessimistic"),
    )
    assert data["columns"] == list(expected.columns)
    assert len(got) == len(formulas)  # no row dropped
    assert got["formula"].tolist() == expected["formula"].tolist()
    assert got["status"].tolist() == expected["status"].tolist()
    assert got["reason"].tolist() == expected["reason"].tolist()
    pd.testing.assert_series_equal(got["score"], expected["score"], check_dtype=False, rtol=1e-8)
    by_formula = got.set_index("input_row")
    assert by_formula.loc[6, "status"] == "invalid" and "Xx" in by_formula.loc[6, "reason"]
    assert by_formula.loc[4, "status"] == "rejected" and "no Li" in by_formula.loc[4, "reason"]
    assert by_formula.loc[5, "status"] == "rejected" and "Pb" in by_formula.loc[5, "reason"]
    assert by_formula.loc[8, "status"] == "invalid" and by_formula.loc[9, "status"] == "invalid"
    assert by_formula.loc[8, "score"] is None or pd.isna(by_formula.loc[8, "score"])  # NaN -> null
    assert data["summary"]["rows"] == len(formulas) and data["summary"]["ranked"] == (got["status"] == "ranked").sum()


def test_csv_download_is_spreadsheet_safe(client: httpx.Client) -> None:
    response = client.post("/api/rank", params={"format": "csv"}, json={"formulas": ["Li3PS4", "=HYPERLINK(1)"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = pd.read_csv(io.StringIO(response.text), keep_default_na=False)
    assert table["formula"].tolist() == ["Li3PS4", "'=HYPERLINK(1)"]
    assert table.loc[1, "status"] == "invalid"


def test_uploads_csv_txt_and_zip_of_cifs(client: httpx.Client) -> None:
    csv = "name,composition\nargyrodite,Li6PS5Cl\nbad,Li0S\n"
    files = {"file": ("mine.csv", csv.encode(), "text/csv")}
    data = {"options": '{"mobile_ion": "Li", "explain": false}', "formula_column": "composition"}
    rows = client.post("/api/rank", files=files, data=data).json()["rows"]
    assert [r["name"] for r in rows] == ["argyrodite", "bad"] and rows[1]["reason"].startswith("amount of Li is zero")

    txt = client.post("/api/predict", files={"file": ("list.txt", b"Li3PS4\n\nLiCl\n")}).json()
    assert [r["formula"] for r in txt["rows"]] == ["Li3PS4", "", "LiCl"]
    assert [r["error"] for r in txt["rows"]] == ["", "empty formula", ""]

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for cif in CIFS:
            archive.write(cif, f"cifs/{cif.name}")
        archive.writestr("cifs/broken.cif", "not a crystal\n")
    response = client.post("/api/rank", files={"file": ("structures.zip", buffer.getvalue(), "application/zip")})
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    # each row names the member inside the uploaded zip, never a path on the server
    expected = sorted([f"structures.zip:cifs/{c.name}" for c in CIFS] + ["structures.zip:cifs/broken.cif"])
    assert sorted(r["cif_path"] for r in rows) == expected
    assert "/tmp" not in response.text and "upload.zip" not in response.text
    broken = next(r for r in rows if r["cif_path"] == "structures.zip:cifs/broken.cif")
    # the CIF problem is in `error`; `reason` is the ranking's (see the report: it says "empty formula")
    assert broken["status"] == "invalid" and broken["error"].startswith("CIF: structures.zip:cifs/broken.cif: ")
    assert {r["conductivity_model"] for r in rows if r["status"] != "invalid"} == {"structure"}


JSON = {"content-type": "application/json"}
FORM = {"file": ("x.csv", b"formula\nLiCl\n")}


@pytest.mark.parametrize(
    ("kwargs", "status", "needles"),
    [
        (
            {"content": b'{"formulas": ["Li3PS4"', "headers": JSON},
            422,
            ["malformed JSON"],
        ),
        ({"content": b"", "headers": JSON}, 422, ["empty"]),
        ({"content": b'{"formulas": [NaN]}', "headers": JSON}, 422, ["NaN"]),
        ({"json": ["Li3PS4"]}, 422, ["must be a JSON object"]),
        ({"content": b'{"formulas": ["Li\\ud800S"]}', "headers": JSON}, 422, ["UTF-8"]),
        ({"json": {"formula": ["Li3PS4"]}}, 422, ["formulas", "formula"]),
        ({"json": {"formulas": []}}, 422, ["formulas"]),
        ({"json": {"formulas": [3]}}, 422, ["formulas.0"]),
        ({"json": {"formulas": ["Li3PS4"], "weights": {"beauty": 1}}}, 422, ["beauty"]),
        ({"json": {"formulas": ["Li3PS4"], "weights": {"cost": -1}}}, 422, ["cost"]),
        ({"json": {"formulas": ["Li3PS4"], "mobile_ion": "Qq"}}, 422, ["Qq"]),
        ({"json": {"formulas": ["Li3PS4"], "mode": "reckless"}}, 422, ["mode"]),
        ({"content": b"formula\nLi3PS4\n", "headers": {"content-type": "text/csv"}}, 415, ["multipart"]),
        ({"files": {"file": ("x.csv", b"\x00\x01\x02binary")}}, 422, ["x.csv", "binary"]),
        ({"files": {"file": ("x.csv", b"name,other\nA,B\n")}}, 422, ["x.csv", "no 'formula' column"]),
        ({"files": {"file": ("x.csv", b"\xff\xfeLi\n")}}, 422, ["x.csv", "UTF-8"]),
        ({"files": {"file": ("x.xlsx", b"PK..")}}, 422, ["x.xlsx", "unsupported file type"]),
        ({"files": {"file": ("x.zip", b"PK\x03\x04 not a zip")}}, 422, ["x.zip"]),
        ({"files": {"file": ("x.csv", b"formula,cif_path\n,/etc/passwd\n")}}, 422, ["cif_path"]),
        ({"files": {"other": ("x.csv", b"formula\nLiCl\n")}}, 422, ["'file' field"]),
        ({"content": b"abc", "headers": {"content-type": "multipart/form-data"}}, 422, ["multipart", "boundary"]),
        ({"files": [("file", ("a.csv", b"formula\nLiCl\n")), ("file", ("b.csv", b"formula\nLiF\n"))]}, 422, ["files"]),
        ({"files": FORM, "data": {"options": "{oops"}}, 422, ["options"]),
        (
            {"files": {"file": ("x.csv", b"formula\nLiCl\n")}, "data": {"options": '{"formulas": []}'}},
            422,
            ["formulas"],
        ),
    ],
)
def test_bad_requests_get_a_message_never_a_traceback(client: httpx.Client, kwargs: dict, status: int, needles) -> None:
    _assert_clean_error(client.post("/api/rank", **kwargs), status, *needles)


def test_bad_format_and_unknown_route(client: httpx.Client) -> None:
    _assert_clean_error(client.post("/api/rank?format=xml", json={"formulas": ["LiCl"]}), 422, "format")
    assert client.get("/api/nothing").status_code == 404


def test_models_report_name_version_hash_date_and_metrics_by_origin(client: httpx.Client) -> None:
    from sse_screen.models.persistence import SHIPPED_ROOT

    response = client.get("/api/models")
    models = {m["task"]: m for m in response.json()["models"]}
    assert set(models) == {"stability", "band_gap", "conductivity"}
    assert models["conductivity"]["origin"] == "shipped"
    # never a server path (the bundles live under the repository or pytest's cache folder)
    assert str(ROOT) not in response.text and '"/' not in response.text and "validation_metrics" not in response.text
    for task, m in models.items():
        assert m["description"] and m["output_columns"] and m["name"]
        assert re.fullmatch(r"[0-9a-f]{64}", m["bundle_sha256"]), task
        assert m["metrics"]["cross_validation"]["values"], task
        if m["origin"] != "shipped":
            continue
        meta = json.loads((SHIPPED_ROOT / task / "metadata.json").read_text())
        assert m["trained_at"] == meta["created_at"] and m["training_data_sha256"] == meta["training_data_sha256"]
        for group, prefix in (("cross_validation", "cv_"), ("validation", "val_"), ("test", "test_")):
            values = {k.removeprefix(prefix): v for k, v in meta["metrics"].items() if k.startswith(prefix)}
            if values:  # each figure under the name of where it comes from
                assert m["metrics"][group]["values"] == pytest.approx(values), (task, group)
    if models["stability"]["origin"] == "shipped":  # the README's validation figure is validation, CV is CV
        assert models["stability"]["metrics"]["validation"]["values"]["mae"] == pytest.approx(0.0863, abs=5e-5)
        assert models["stability"]["metrics"]["cross_validation"]["values"]["mae"] == pytest.approx(0.0874, abs=5e-5)
    ranked = client.post("/api/rank", json={"formulas": ["Li3PS4"]}).json()
    assert ranked["models"] == {t: m["description"] for t, m in models.items()}


def test_other_mobile_ion_has_no_conductivity_and_says_so(client: httpx.Client) -> None:
    formulas = ["NaCl", "Na3PS4", "Na3Zr2Si2PO12", "Li3PS4"]
    na = client.post("/api/rank", json={"formulas": formulas, "mobile_ion": "Na"}).json()
    assert len(na["notices"]) == 1 and "no conductivity model for Na" in na["notices"][0]
    rows = {r["formula"]: r for r in na["rows"]}
    for formula in formulas[:3]:
        row = rows[formula]
        assert row["status"] == "ranked" and row["log10_sigma_s_per_cm"] is None and row["log10_sigma_std"] is None
        assert row["conductivity_model"] == "none: no Na model" and row["conductivity_drivers"] == ""
        assert "conductivity" not in row["warnings"]
    assert rows["Li3PS4"]["status"] == "rejected"
    li = client.post("/api/rank", json={"formulas": ["Li3PS4", "Li6PS5Cl"]}).json()
    assert li["notices"] == [] and all(r["log10_sigma_s_per_cm"] is not None for r in li["rows"])
    csv = client.post("/api/rank", params={"format": "csv"}, json={"formulas": formulas, "mobile_ion": "Na"})
    assert "none: no Na model" in csv.text  # the download carries the reason in its rows


def test_rejected_rows_are_predicted_only_when_asked(client: httpx.Client) -> None:
    formulas = ["Li6PS5Cl", "NaCl", "Li2PbS2"]
    for asked in (False, True):
        rows = client.post("/api/rank", json={"formulas": formulas, "predict_rejected": asked}).json()["rows"]
        by_formula = {r["formula"]: r for r in rows}
        assert by_formula["Li6PS5Cl"]["status"] == "ranked" and by_formula["Li6PS5Cl"]["e_hull_ev_per_atom"] is not None
        for formula in formulas[1:]:
            assert by_formula[formula]["status"] == "rejected"
            assert (by_formula[formula]["e_hull_ev_per_atom"] is not None) is asked


def test_known_compositions_are_shown_next_to_predictions(client: httpx.Client) -> None:
    for route in ("/api/rank", "/api/predict"):
        data = client.post(route, json={"formulas": ["Li6PS5Cl", "Li5.5PS4.5Cl1.5Zz"]}).json()
        assert {"known_log10_sigma_s_per_cm", "known_sigma_source", "known_source"} <= set(data["columns"])
        rows = {r["formula"]: r for r in data["rows"]}
        argyrodite = rows["Li6PS5Cl"]
        assert argyrodite["known_log10_sigma_s_per_cm"] > -3.2 and "doi:" in argyrodite["known_sigma_source"]
        assert argyrodite["known_e_hull_ev_per_atom"] is not None and "mp-" in argyrodite["known_source"]
        assert rows["Li5.5PS4.5Cl1.5Zz"]["known_sigma_source"] == ""


@pytest.mark.parametrize(
    ("route", "csv", "column"),
    [
        ("/api/rank", b"formula,status\nLiCl,x\n", "status"),
        ("/api/rank", b"formula,input_row\nLiCl,1\n", "input_row"),
        ("/api/predict", b"formula,known_source\nLiCl,x\n", "known_source"),
        ("/api/predict", b"formula,error\nLiCl,x\n", "error"),
    ],
)
def test_input_columns_that_the_results_add_are_the_clients_problem(client, route, csv, column) -> None:
    _assert_clean_error(client.post(route, files={"file": ("mine.csv", csv)}), 422, column, "rename")


def test_health_answers_while_a_long_list_is_ranked(server: str) -> None:
    # 20,000 distinct compositions: long enough (seconds) that /health must answer *during* the ranking
    formulas = [
        f"Li{a}P{b}S{c}Cl{d}" for a in range(1, 21) for b in range(1, 11) for c in range(1, 11) for d in range(10)
    ]
    done = threading.Event()
    result: dict = {}

    def rank() -> None:
        result["status"] = httpx.post(f"{server}/api/rank", json={"formulas": formulas}, timeout=300).status_code
        done.set()

    worker = threading.Thread(target=rank)
    worker.start()
    time.sleep(0.2)  # let the ranking request reach the server first
    try:
        answered_during = []
        while not done.is_set() and len(answered_during) < 5:
            response = httpx.get(f"{server}/health", timeout=30)
            answered_during.append(response.status_code == 200 and not done.is_set())
        assert any(answered_during), "/health only answered after the ranking finished"
    finally:
        worker.join()
    assert result["status"] == 200


def test_token_limits_and_row_cap(locked_server: str) -> None:
    with httpx.Client(base_url=locked_server, timeout=60) as c:
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200  # not protected
        _assert_clean_error(c.post("/api/rank", json={"formulas": ["LiCl"]}), 401, "token")
        assert c.get("/api/models").status_code == 401
        bad = c.post("/api/rank", json={"formulas": ["LiCl"]}, headers={"Authorization": "Bearer nope"})
        _assert_clean_error(bad, 403, "not valid")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert c.post("/api/rank", json={"formulas": ["LiCl"]}, headers=auth).status_code == 200
        assert c.get("/api/models", headers=auth).status_code == 200
        big = b"formula\n" + b"Li3PS4\n" * 1000
        response = c.post("/api/rank", files={"file": ("big.csv", big)}, headers=auth)
        _assert_clean_error(response, 413, "4,000 bytes")

        def chunks():  # no Content-Length: the limit is enforced while streaming
            yield b'{"formulas": ['
            for _ in range(800):
                yield b'"Li3PS4",'
            yield b'"LiCl"]}'

        streamed = c.post("/api/rank", content=chunks(), headers={**auth, "content-type": "application/json"})
        _assert_clean_error(streamed, 413, "larger than the limit")
        many = c.post("/api/rank", json={"formulas": ["LiCl"] * 51}, headers=auth)
        _assert_clean_error(many, 413, "51", "50")


def test_upload_temp_files_are_removed(client: httpx.Client) -> None:
    import tempfile

    def temp_folders() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("sse-screen-*")}

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(CIFS[0], CIFS[0].name)
    before = temp_folders()
    assert client.post("/api/rank", files={"file": ("a.txt", b"LiCl\n")}).status_code == 200
    assert client.post("/api/rank", files={"file": ("s.zip", buffer.getvalue())}).status_code == 200
    assert temp_folders() <= before


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_create_app_loads_models_in_its_lifespan(pytestconfig: pytest.Config) -> None:
    """The factory path (`uvicorn --factory`, no models passed in): models are loaded once, at start-up."""
    from fastapi.testclient import TestClient

    from sse_screen.screening.api import create_app
    from sse_screen.screening.settings import Settings

    app = create_app(Settings(model_uris=model_uris_for_tests(pytestconfig)))
    assert not hasattr(app.state, "models")  # nothing loaded at build time
    with TestClient(app) as client:
        assert client.get("/health").json()["models"] == ["band_gap", "conductivity", "stability"]
        models = app.state.models
        assert client.post("/api/rank", json={"formulas": ["Li3PS4"]}).status_code == 200
        assert app.state.models is models


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from sse_screen.screening.settings import Settings

    monkeypatch.setenv("SSE_SCREEN_API_TOKEN", "abc")
    monkeypatch.setenv("SSE_SCREEN_MAX_UPLOAD_BYTES", "1000")
    monkeypatch.setenv("SSE_SCREEN_MAX_RUNNING_JOBS", "3")
    settings = Settings.from_env(max_rows=7)
    assert (settings.api_token, settings.max_upload_bytes, settings.max_rows) == ("abc", 1000, 7)
    assert settings.max_running_jobs == 3 and Settings.from_env(max_running_jobs=2).max_running_jobs == 2
    assert Settings().max_upload_bytes == 20 * 1024 * 1024 and Settings().api_token is None
    monkeypatch.setenv("SSE_SCREEN_MAX_ROWS", "many")
    with pytest.raises(ValueError, match="SSE_SCREEN_MAX_ROWS"):
        Settings.from_env()


class _FailsOnLi2O2:
    """A stand-in band-gap model that fails, as a server bug would, on one formula (the app's error path is tested)."""

    def output_columns(self) -> list[str]:
        return ["band_gap_ev"]

    def predict_table(self, formulas) -> pd.DataFrame:
        formulas = list(formulas)
        if {"Li2O2", "LiO"} & set(formulas):  # models are asked about the canonical formula (LiO for Li2O2)
            raise ValueError("an internal inconsistency")
        return pd.DataFrame({"band_gap_ev": [3.0] * len(formulas), "error": [""] * len(formulas)})


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_server_side_value_error_is_a_500_with_a_log_line_and_zips_leave_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import atexit
    import tempfile

    from fastapi.testclient import TestClient

    from sse_screen.screening.api import create_app
    from sse_screen.screening.settings import Settings

    app = create_app(Settings(), models={"band_gap": _FailsOnLi2O2()})
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/api/rank", json={"formulas": ["Li3PS4"]}).status_code == 200
        with caplog.at_level("ERROR", logger="sse_screen.api"):
            response = c.post("/api/rank", json={"formulas": ["Li3PS4", "Li2O2"]})
        detail = _assert_clean_error(response, 500, "internal error", "reference")
        reference = re.search(r"reference ([0-9a-f]+)", detail)[1]
        assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)
        assert "inconsistency" not in response.text  # the client is not blamed, nor shown internals
        # an uploaded zip: read per request, no exit handler and no temporary folder left per upload
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.write(CIFS[0], CIFS[0].name)
        before, handlers = set(Path(tempfile.gettempdir()).glob("sse-screen-*")), atexit._ncallbacks()
        for _ in range(3):
            rows = c.post("/api/rank", files={"file": ("s.zip", buffer.getvalue())}).json()["rows"]
            assert rows[0]["cif_path"] == f"s.zip:{CIFS[0].name}" and rows[0]["formula"]
        assert atexit._ncallbacks() == handlers
        assert set(Path(tempfile.gettempdir()).glob("sse-screen-*")) <= before


def test_rank_variants_generates_with_the_same_function_and_ranks(client: httpx.Client, locked_server: str) -> None:
    from sse_screen.screening.generate import generate_candidates

    answer = client.post("/api/rank-variants", json={"parents": ["Li3YCl6", "Xx"], "max_candidates": 8})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert {"move", "parent", "plausibility", "known_as", "status"} <= set(data["columns"])
    rows = pd.DataFrame(data["rows"])
    expected = generate_candidates(["Li3YCl6", "Xx"], max_candidates=8)
    assert sorted(rows["formula"]) == sorted(expected["formula"])  # the pure function's candidates, ranked
    assert data["summary"]["ranked"] == 9 and data["summary"]["invalid"] == 1
    _assert_clean_error(
        client.post("/api/rank-variants", json={"parents": ["Li3PS4"], "dopants": ["Qq"]}),
        422,
        "unknown element symbols: Qq",
    )
    assert client.post("/api/rank-variants", json={"parents": []}).status_code == 422
    csv = client.post("/api/rank-variants?format=csv", json={"parents": ["Li3PS4"], "max_candidates": 3})
    assert csv.status_code == 200 and csv.text.count("\n") == 5 and "move" in csv.text.splitlines()[0]
    capped = httpx.post(
        f"{locked_server}/api/rank-variants",
        json={"parents": ["Li6PS5Cl"], "explain": False},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=120,
    )
    assert capped.status_code == 200 and capped.json()["summary"]["rows"] == 50  # the server's row limit
