"""Rankings as jobs for the web service: submitted at once, run in the background, at most N at a time.

``POST /api/jobs`` stores the candidate table as Parquet under the service's home folder and a record in SQLite
(``<home>/jobs.sqlite``), and answers with the job id; a thread pool of ``max_running`` threads ranks the queued jobs
in order of submission (``rank_candidates``, the function behind ``POST /api/rank``), so a burst of large uploads
waits on disk, not in memory. ``GET /api/jobs/{id}`` reads the record (status ``queued``, ``running``, ``done``,
``failed`` or ``expired``, rows done); the result is a Parquet file downloadable as CSV or Parquet for
:data:`DEFAULT_KEEP_HOURS` hours after the job ends. A server that restarts marks the jobs it did not finish as
failed, with the reason. A job is visible only with the API token it was submitted with (a hash is stored).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

#: Hours a finished job's result stays downloadable.
DEFAULT_KEEP_HOURS = 24.0
INTERRUPTED = "interrupted: the server stopped before the job finished; submit it again"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, n_rows INTEGER NOT NULL,
    done_rows INTEGER NOT NULL DEFAULT 0, submitted REAL NOT NULL, started REAL, finished REAL,
    error TEXT NOT NULL DEFAULT '', counts TEXT NOT NULL DEFAULT ''
)
"""


def owner_of(token: str | None) -> str:
    """What a job record stores of the token it was submitted with (a hash; "" without a token)."""
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


class JobStore:
    """Job records (SQLite) and results (Parquet) under ``home``, and the threads that run the jobs.

    Args:
        home: The service's home folder (created).
        max_running: Jobs ranked at the same time; the rest wait in submission order.
        keep_hours: Hours a result stays downloadable after the job ends.
    """

    def __init__(self, home: str | Path, *, max_running: int = 1, keep_hours: float = DEFAULT_KEEP_HOURS) -> None:
        if max_running < 1:
            raise ValueError(f"max_running must be >= 1, got {max_running}")
        self.home = Path(home)
        self.folder = self.home / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep_s = keep_hours * 3600
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.home / "jobs.sqlite", check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.execute(
                "UPDATE jobs SET status='failed', error=?, finished=? WHERE status IN ('queued', 'running')",
                (INTERRUPTED, time.time()),
            )
        self._pool = ThreadPoolExecutor(max_workers=max_running, thread_name_prefix="sse-screen-job")

    def close(self) -> None:
        """Stop taking jobs; running ones finish, queued ones are failed as interrupted on the next start."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def submit(self, table: pd.DataFrame, models: Mapping[str, Any], options: Any, *, token: str | None) -> str:
        """Queue a ranking of ``table``; returns the job id at once."""
        self.expire()
        job = uuid.uuid4().hex
        table.to_parquet(self.folder / f"{job}.input.parquet", index=False)
        self._execute(
            "INSERT INTO jobs (id, owner, status, n_rows, submitted) VALUES (?, ?, 'queued', ?, ?)",
            (job, owner_of(token), len(table), time.time()),
        )
        self._pool.submit(self._run, job, models, options)
        return job

    def _run(self, job: str, models: Mapping[str, Any], options: Any) -> None:
        from sse_screen.screening.rank import rank_candidates

        source = self.folder / f"{job}.input.parquet"
        self._execute("UPDATE jobs SET status='running', started=? WHERE id=?", (time.time(), job))
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            self._execute("UPDATE jobs SET done_rows=? WHERE id=?", (done, job))

        try:
            ranked = rank_candidates(pd.read_parquet(source), models, options=options, on_progress=advance)
            ranked.to_parquet(self.folder / f"{job}.parquet", index=False)
            counts = ", ".join(f"{v} {k}" for k, v in ranked["status"].value_counts().items())
            self._execute(
                "UPDATE jobs SET status='done', finished=?, done_rows=n_rows, counts=? WHERE id=?",
                (time.time(), counts, job),
            )
        except Exception as exc:  # the job fails, with the reason; the server goes on
            self._execute(
                "UPDATE jobs SET status='failed', finished=?, error=? WHERE id=?",
                (time.time(), f"{type(exc).__name__}: {exc}", job),
            )
        finally:
            source.unlink(missing_ok=True)

    def get(self, job: str, *, token: str | None) -> dict | None:
        """The record of ``job`` (None if there is no such job for this token)."""
        rows = self._execute(
            "SELECT id, status, n_rows, done_rows, submitted, started, finished, error, counts FROM jobs "
            "WHERE id=? AND owner=?",
            (job, owner_of(token)),
        )
        if not rows:
            return None
        keys = ("id", "status", "n_rows", "done_rows", "submitted", "started", "finished", "error", "counts")
        record = dict(zip(keys, rows[0], strict=True))
        if record["status"] == "done":
            record["expires"] = record["finished"] + self.keep_s
        record["queued_before"] = (
            self._execute("SELECT COUNT(*) FROM jobs WHERE status='queued' AND submitted < ?", (record["submitted"],))[
                0
            ][0]
            if record["status"] == "queued"
            else 0
        )
        return record

    def result(self, job: str, *, token: str | None) -> pd.DataFrame | None:
        """The ranked table of a finished job (None if not done, expired or not this token's)."""
        record = self.get(job, token=token)
        path = self.folder / f"{job}.parquet"
        if record is None or record["status"] != "done" or not path.exists():
            return None
        return pd.read_parquet(path)

    def expire(self) -> int:
        """Delete results older than the keep time; returns how many."""
        cutoff = time.time() - self.keep_s
        old = self._execute("SELECT id FROM jobs WHERE status='done' AND finished < ?", (cutoff,))
        for (job,) in old:
            (self.folder / f"{job}.parquet").unlink(missing_ok=True)
            self._execute("UPDATE jobs SET status='expired' WHERE id=?", (job,))
        return len(old)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until no job is queued or running (tests, shutdown); True if so."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._execute("SELECT 1 FROM jobs WHERE status IN ('queued', 'running') LIMIT 1"):
                return True
            time.sleep(0.05)
        return False
