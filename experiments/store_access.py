"""Safe concurrent access to one MLflow store from several training processes on this machine.

Trainings started side by side (a team launching runs at once, a parallel search) share a store. Three things
race without help, and this module handles each:

* **schema migrations** on a fresh sqlite store (one process migrates while another reads a half-built schema, or
  two run the same ``ALTER TABLE`` and leave ``_alembic_tmp_*`` tables that break the store for good): the store
  is initialised under :func:`store_lock`, so exactly one process migrates;
* **experiment and registered-model creation**: "already exists" is success (:func:`is_already_exists`);
* **SQLite's writer lock**: ``database is locked`` errors are retried with exponential backoff
  (:func:`retry_locked`).

The lock is an exclusive ``fcntl`` file lock (released by the OS if the process dies): beside the database for a
``sqlite:///`` store (``mlflow.db.lock``), else under ``$SSE_SCREEN_HOME/locks/`` keyed by the store URI. It only
serialises processes on this machine: a team training from several machines needs an ``mlflow server`` with a real
database (see README, "Training and tracking").
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sse_screen.models.registry import sse_screen_home

T = TypeVar("T")

#: How long a process waits for another one's initialisation or registration before giving up (seconds).
LOCK_TIMEOUT_S = 600.0
_LOCKED_MESSAGES = ("database is locked", "database table is locked")


class StoreLockTimeout(RuntimeError):
    """The store lock was not acquired in time (another process holds it)."""


def sqlite_path(uri: str) -> Path:
    """Return the database file of a ``sqlite:///`` URI (absolute paths have a fourth slash)."""
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def lock_path(uri: str) -> Path:
    """Return the lock file that serialises writers of the store at ``uri``.

    ``<database>.lock`` for a ``sqlite:///`` URI; else ``$SSE_SCREEN_HOME/locks/<hash of uri>.lock``.
    """
    if uri.startswith("sqlite:///"):
        database = sqlite_path(uri)
        return database.with_name(database.name + ".lock")
    digest = hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
    return sse_screen_home() / "locks" / f"mlflow-{digest}.lock"


@contextlib.contextmanager
def store_lock(uri: str, *, timeout_s: float = LOCK_TIMEOUT_S, poll_s: float = 0.1) -> Iterator[Path]:
    """Hold the exclusive file lock of the store at ``uri`` (see :func:`lock_path`); yields the lock file.

    Args:
        uri: Tracking (or registry) URI of the store.
        timeout_s: Give up after this many seconds of waiting.
        poll_s: Seconds between attempts while another process holds the lock.

    Raises:
        StoreLockTimeout: Another process held the lock for longer than ``timeout_s``.
        OSError: The lock file cannot be created.
    """
    path = lock_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreLockTimeout(
                        f"another process has held the MLflow store lock {path} for over {timeout_s:.0f} s"
                    ) from None
                time.sleep(poll_s)
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_database_locked(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is SQLite's transient "database is locked"."""
    return any(message in str(e).lower() for e in _chain(exc) for message in _LOCKED_MESSAGES)


def is_already_exists(exc: BaseException) -> bool:
    """Whether ``exc`` is MLflow's "resource already exists" (another process created it first)."""
    code = getattr(exc, "error_code", None)
    return code in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS") or "already exists" in str(exc).lower()


def retry_locked(
    fn: Callable[..., T], *args: object, attempts: int = 8, first_wait_s: float = 0.2, **kwargs: object
) -> T:
    """Call ``fn(*args, **kwargs)``, retrying SQLite's "database is locked" with exponential backoff and jitter.

    SQLite rolls a transaction back when it reports the lock, so a retry does not duplicate a write. Waits
    ``first_wait_s * 2**attempt`` seconds (times 1-2, random) between attempts: about 50 s at most by default.

    Raises:
        Exception: Whatever ``fn`` raised, once it is not a lock error or ``attempts`` are used up.
    """
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt + 1 >= attempts or not is_database_locked(exc):
                raise
            time.sleep(first_wait_s * 2**attempt * (1.0 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover
