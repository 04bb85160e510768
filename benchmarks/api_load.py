"""Load test of the web service: concurrent clients ranking lists of formulas through a real uvicorn server.

Defaults are the service's acceptance figures: 20 concurrent clients x 10 requests of 100 formulas each. Prints the
request latency (p50, p95, max), the error count and the throughput. Starts ``screening.api.serve`` on a free port
(shipped models, or the ``--*-model`` URIs) unless ``--url`` points at a running service.

    .venv/bin/python benchmarks/api_load.py
    .venv/bin/python benchmarks/api_load.py --url http://127.0.0.1:8000 --clients 5 --requests 4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CATIONS = ["La", "Zr", "Ti", "Al", "Ga", "Ge", "Si", "P", "Y", "In", "Sc", "Ta", "Nb", "Zn", "Mg", "B"]
ANIONS = ["O", "S", "Cl", "Br", "I", "F", "N", "Se"]


def formulas(n: int, rng: random.Random) -> list[str]:
    """Electrolyte-like formulas (Li + one or two cations + one or two anions), a few of them bad on purpose."""
    out = []
    for _ in range(n):
        parts = [f"Li{rng.randint(1, 10)}"]
        parts += [f"{c}{rng.randint(1, 4)}" for c in rng.sample(CATIONS, rng.randint(1, 2))]
        parts += [f"{a}{rng.randint(1, 12)}" for a in rng.sample(ANIONS, rng.randint(1, 2))]
        out.append("".join(parts))
    for i in rng.sample(range(n), k=max(1, n // 50)):
        out[i] = rng.choice(["Xx2O", "", "Li(PS4", "NaCl"])
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def started_server(model_env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, **model_env}
    code = f"from screening.api import serve; serve('127.0.0.1', {port})"
    log = tempfile.NamedTemporaryFile(prefix="sse-screen-load-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def run(url: str, *, clients: int, requests: int, size: int, token: str | None, seed: int) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients)

    def client(index: int) -> None:
        rng = random.Random(seed + index)
        with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
            start_gate.wait()
            for _ in range(requests):
                body = {"formulas": formulas(size, rng)}
                t0 = time.perf_counter()
                try:
                    response = http.post("/api/rank", json=body)
                    ok = response.status_code == 200 and len(response.json()["rows"]) == size
                    problem = None if ok else f"{response.status_code}: {response.text[:120]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        errors.append(problem)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50": statistics.median(ordered),
        "p95": ordered[max(0, round(0.95 * len(ordered)) - 1)],
        "max": ordered[-1],
        "wall": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start one on a free port)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--size", type=int, default=100, help="formulas per request")
    parser.add_argument("--seed", type=int, default=0)
    for task in ("stability", "band-gap", "conductivity"):
        parser.add_argument(f"--{task}-model", help=f"{task} model URI for the started server")
    args = parser.parse_args(argv)
    token = os.environ.get("SSE_SCREEN_API_TOKEN")
    model_env = {
        f"SSE_SCREEN_{task.upper()}_MODEL_URI": uri
        for task, uri in (
            ("stability", args.stability_model),
            ("band_gap", args.band_gap_model),
            ("conductivity", args.conductivity_model),
        )
        if uri
    }
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(started_server(model_env))
        httpx.post(f"{url}/api/rank", json={"formulas": ["Li3PS4"]}, headers={}, timeout=120)  # warm-up
        result = run(url, clients=args.clients, requests=args.requests, size=args.size, token=token, seed=args.seed)
    n = result["requests"]
    print(f"{args.clients} clients x {args.requests} requests x {args.size} formulas ({os.cpu_count()} CPUs)")
    print(f"latency per request: p50 {result['p50']:.2f} s, p95 {result['p95']:.2f} s, max {result['max']:.2f} s")
    print(f"errors: {len(result['errors'])} of {n}; throughput {n * args.size / result['wall']:.0f} formulas/s "
          f"({n / result['wall']:.2f} requests/s, wall {result['wall']:.1f} s)")  # fmt: skip
    for problem in result["errors"][:5]:
        print("  error:", problem)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
