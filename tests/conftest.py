"""Shared fixtures: a real ``mlflow server`` on 127.0.0.1 for the tracking and registry tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_START_TIMEOUT_S = 90.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``mlflow server`` (sqlite backend, proxied artifacts, one worker) and yield its URL.

    Measured start time here: ~6 s on 2 cores. The server runs in its own process group, which is
    terminated at the end of the session.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = root / "server.log"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--workers", "1",
    ]  # fmt: skip
    with background_server(command, url=url, cwd=root, env=env, log_path=log_path):
        yield url


@contextlib.contextmanager
def background_server(
    command: list[str], *, url: str, cwd: Path, env: dict[str, str], log_path: Path,
    timeout_s: float = SERVER_START_TIMEOUT_S,
) -> Iterator[str]:  # fmt: skip
    """Run a server process in its own process group until ``url``/health answers; stop the whole group after."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {command}; its log:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.25)
        yield url
    finally:
        # servers such as `mlflow server` run uvicorn as a child: stop the whole group we started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(autouse=True)
def _mlflow_registry_env_stays_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """``setup_tracking`` calls ``mlflow.set_registry_uri``, which writes ``MLFLOW_REGISTRY_URI`` into os.environ;
    monkeypatch puts the variable back as it was after every test, so no test inherits another's registry."""
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


@pytest.fixture
def dead_tracking_uri() -> str:
    """An http tracking URI on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def tracking(mlflow_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point MLflow (and ``models.registry``) at the test server; keep local state in ``tmp_path``."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("SSE_SCREEN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return mlflow_server
