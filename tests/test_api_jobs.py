"""POST /api/jobs: rankings as background jobs, SQLite records under the service home, bounded concurrency.

The app is the real one (create_app with small real models, tests/quick_models.py) behind FastAPI's TestClient.
"""

from __future__ import annotations

import io
import itertools
import sqlite3
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from quick_models import quick_models

from sse_screen.screening.api import create_app
from sse_screen.screening.jobs import INTERRUPTED, JobStore
from sse_screen.screening.rank import rank_candidates
from sse_screen.screening.settings import Settings

FORMULAS = ["Li3PS4", "Li7La3Zr2O12", "Li6PS5Cl", "NaCl", "Xx2O", "Li10GeP2S12", "Li3InCl6", "Li2PbO3"]


@pytest.fixture(scope="module")
def models() -> dict:
    return quick_models()


def _wait(client: TestClient, job: str, seen: set[int], timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = client.get(f"/api/jobs/{job}").json()
        if record["status"] in ("done", "failed"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not finish: {record}")


def test_jobs_run_in_the_background_one_at_a_time_and_download(tmp_path, models) -> None:
    settings = Settings(home=str(tmp_path / "home"), max_running_jobs=1)
    with TestClient(create_app(settings, models=models)) as client:
        ids = []
        for i in range(3):
            answer = client.post("/api/jobs", json={"formulas": FORMULAS * (50 * (i + 1)), "mobile_ion": "Li"})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        running_at_once = 0
        while True:  # never more than max_running_jobs running at the same time
            statuses = [client.get(f"/api/jobs/{j}").json()["status"] for j in ids]
            running_at_once = max(running_at_once, statuses.count("running"))
            if all(s in ("done", "failed") for s in statuses):
                break
            time.sleep(0.02)
        assert running_at_once <= 1
        records = [_wait(client, j, set()) for j in ids]
        assert [r["status"] for r in records] == ["done"] * 3
        assert records[2]["n_rows"] == records[2]["done_rows"] == len(FORMULAS) * 150
        assert records[0]["result_url"] == f"/api/jobs/{ids[0]}/result"
        expected = rank_candidates(pd.DataFrame({"formula": FORMULAS * 50}), models)
        csv = client.get(f"/api/jobs/{ids[0]}/result?format=csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        got = pd.read_csv(io.StringIO(csv.text), keep_default_na=False)
        assert got["input_row"].tolist() == expected["input_row"].tolist()
        assert got["status"].tolist() == expected["status"].tolist()
        parquet = client.get(f"/api/jobs/{ids[0]}/result?format=parquet")
        table = pd.read_parquet(io.BytesIO(parquet.content))
        pd.testing.assert_series_equal(table["score"], expected["score"], check_names=False)
        assert client.get("/api/jobs/nope").status_code == 404
        assert (tmp_path / "home" / "jobs.sqlite").exists()
        assert not list((tmp_path / "home" / "jobs").glob("*.input.parquet"))  # inputs removed once ranked


def test_a_restarted_server_lists_finished_jobs_and_fails_interrupted_ones(tmp_path, models) -> None:
    home = tmp_path / "home"
    store = JobStore(home, max_running=1)
    from sse_screen.screening.rank import RankOptions

    done = store.submit(pd.DataFrame({"formula": FORMULAS}), models, RankOptions(), token="secret")
    assert store.wait_idle()
    store.close()
    with sqlite3.connect(home / "jobs.sqlite") as db:  # a job the stopped server was running
        db.execute("INSERT INTO jobs (id, owner, status, n_rows, submitted) VALUES ('cut', '', 'running', 5, 0)")
    again = JobStore(home, max_running=1)
    assert again.get(done, token="secret")["status"] == "done"
    assert again.get(done, token="other") is None  # visible only with the token that created it
    assert again.get(done, token=None) is None
    cut = again.get("cut", token=None)
    assert cut["status"] == "failed" and cut["error"] == INTERRUPTED
    assert again.result(done, token="secret")["status"].tolist()[:1] == ["ranked"]
    again.close()


def test_job_errors_are_one_line_answers(tmp_path, models) -> None:
    settings = Settings(home=str(tmp_path / "home"), api_token="secret")
    with TestClient(create_app(settings, models=models)) as client:
        assert client.post("/api/jobs", json={"formulas": ["Li3PS4"]}).status_code == 401
        auth = {"Authorization": "Bearer secret"}
        bad = client.post("/api/jobs", json={"formulas": ["Li3PS4"], "weights": {"nope": 1}}, headers=auth)
        assert bad.status_code == 422 and "nope" in bad.json()["detail"]
        job = client.post("/api/jobs", json={"formulas": ["Li3PS4"]}, headers=auth).json()["id"]
        early = client.get(f"/api/jobs/{job}/result", headers=auth)
        assert early.status_code in (200, 409)
        deadline = time.monotonic() + 60
        while client.get(f"/api/jobs/{job}", headers=auth).json()["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get(f"/api/jobs/{job}/result?format=json", headers=auth).json()["rows"][0]["formula"] == "Li3PS4"


def _peak_rss_gib(port: int) -> float:
    """Peak resident memory (VmHWM) of the server process started for ``port`` (found by its command line)."""
    from pathlib import Path

    for proc in Path("/proc").iterdir():
        try:
            if f"'127.0.0.1', {port}," in (proc / "cmdline").read_bytes().decode(errors="replace"):
                status = (proc / "status").read_text()
                return int(status.split("VmHWM:")[1].split()[0]) / 2**20  # kB -> GiB
        except (OSError, IndexError):
            continue
    raise AssertionError(f"no server process for port {port}")


def test_a_burst_of_uploads_waits_on_disk_and_every_job_finishes(pytestconfig, tmp_path) -> None:
    """Eight 3,000-row uploads at once, one job running at a time: all finish; the server stays under 1.5 GiB."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from api_support import model_uris_for_tests, running_server

    uploads = [
        "formula\n" + "\n".join(f"Li{a}P{b}S{c}Cl{i}" for a in range(1, 21) for b in range(1, 16) for c in range(1, 11))
        for i in range(1, 9)
    ]
    with running_server(model_uris_for_tests(pytestconfig), tmp_path / "server.log") as url:
        with httpx.Client(base_url=url, timeout=120) as client:

            def submit(text: str) -> str:
                answer = client.post("/api/jobs", files={"file": ("candidates.csv", text.encode())})
                assert answer.status_code == 202, answer.text
                return answer.json()["id"]

            with ThreadPoolExecutor(len(uploads)) as pool:
                ids = list(pool.map(submit, uploads))
            deadline = time.monotonic() + 600
            records: list[dict] = []
            while time.monotonic() < deadline:
                records = [client.get(f"/api/jobs/{j}").json() for j in ids]
                if all(r["status"] == "done" for r in records):
                    break
                time.sleep(0.2)
            assert [r["status"] for r in records] == ["done"] * len(ids)
            # one job at a time, read from the records' own times (polling job by job can see one job finish and
            # the next start between two reads, and count both as running)
            spans = sorted((r["started"], r["finished"]) for r in records)
            assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans
            for job in ids[:2]:
                table = pd.read_parquet(io.BytesIO(client.get(f"/api/jobs/{job}/result?format=parquet").content))
                assert len(table) == 3000
        peak = _peak_rss_gib(int(url.rsplit(":", 1)[1]))
    print(f"server peak RSS after the burst: {peak:.2f} GiB")
    assert peak < 1.5, f"server peak RSS {peak:.2f} GiB"
