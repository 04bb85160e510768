"""Benchmark: a Parquet dataset ranked in one process and on a LocalCluster of worker processes, side by side.

Run:
    python benchmarks/rank_dask.py [--n 200000] [--n-diverse 20000] [--workers 2] [--partition-rows 50000]

Generates ``--n`` prototype-enumeration candidates and ``--n-diverse`` diverse-chemistry ones with the generators of
``benchmarks/rank_1m.py``, writes each as a Parquet dataset (part files of ``--partition-rows`` rows), then ranks each
(``screening.distributed.rank_dataset``, shipped models, drivers on):

(a) in one process, partition after partition (``client=None``: bounded memory, the same pure functions);
(b) on ``LocalCluster(n_workers=--workers, threads_per_worker=1, processes=True)``.

Each run is a fresh subprocess, so peak memory is its own: the client's ``ru_maxrss`` and each worker's (asked of the
workers at the end). Prints wall time, rows/s, peak memory, checks that (a) and (b) wrote the same rows (part by
part), and extrapolates 100 million candidates on 10 and 100 workers from the CPU time per row of (a) (one core per
worker) plus the client's global step (sort of the ranked rows' keys), timed here at ``--n`` and scaled as n log n.
Wall times depend on what else the machine runs; CPU times much less: the ratio of (a)'s CPU time to the busiest
worker's is the speed-up the cluster gives on an idle machine with a core per worker.
For the issue's sizes: ``--n 10000000 --n-diverse 1000000`` (hours on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _write_dataset(formulas: list[str], folder: Path, rows: int) -> None:
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, len(formulas), rows)):
        pd.DataFrame({"formula": formulas[start : start + rows]}).to_parquet(folder / f"part-{i:05d}.parquet")


def _run(source: str, output: str, workers: int, rows: int) -> dict:
    """One ranking (in this fresh process): wall time and peak memories."""
    import warnings

    warnings.simplefilter("ignore")
    from sse_screen.screening.distributed import rank_dataset

    if workers == 0:
        t0, cpu0 = time.perf_counter(), _cpu_s()
        result = rank_dataset(source, output, rows_per_partition=rows)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
        return {"wall_s": wall, "client_gib": _peak_gib(), "worker_gib": [], "counts": result.counts, "cpu_s": [cpu]}
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(workers)
        cpu0 = client.run(_cpu_s)
        t0 = time.perf_counter()
        result = rank_dataset(source, output, client=client, rows_per_partition=rows)
        wall = time.perf_counter() - t0
        cpu = [v - cpu0[k] for k, v in client.run(_cpu_s).items()]
        peaks = client.run(_peak_gib)
    return {
        "wall_s": wall,
        "client_gib": _peak_gib(),
        "worker_gib": sorted(peaks.values()),
        "counts": result.counts,
        "cpu_s": sorted(cpu),
    }


def _same_output(a: Path, b: Path) -> bool:
    parts = sorted(p.name for p in a.glob("part-*.parquet"))
    if parts != sorted(p.name for p in b.glob("part-*.parquet")):
        return False
    for name in parts:
        x, y = pd.read_parquet(a / name), pd.read_parquet(b / name)
        if not x.astype(str).equals(y.astype(str)):
            return False
    return True


def _global_step_s(n: int) -> float:
    """The client's rank step for n ranked rows: a lexsort of (input row, front, score)."""
    rng = np.random.default_rng(0)
    rows, scores, front = np.arange(n), rng.random(n), rng.integers(1, 7, n)
    t0 = time.perf_counter()
    order = np.lexsort((rows, front, -scores))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="prototype-enumeration candidates")
    parser.add_argument("--n-diverse", type=int, default=20_000, help="diverse-chemistry candidates")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--partition-rows", type=int, default=50_000, help="rows per partition (and part file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--_run", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._run:
        source, output, workers, rows = args._run
        print(json.dumps(_run(source, output, int(workers), int(rows))))
        return

    from rank_1m import candidate_formulas, diverse_formulas

    print(f"machine: {__import__('os').cpu_count()} cores, shared with other work while measured")
    rows = []
    cpu: dict[str, list[list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="rank-dask-") as tmp:
        for kind, n, make in (
            ("prototype", args.n, candidate_formulas),
            ("diverse", args.n_diverse, diverse_formulas),
        ):
            if n <= 0:
                continue
            source = Path(tmp) / f"{kind}-in"
            _write_dataset(make(n, seed=args.seed), source, args.partition_rows)
            outs = {}
            for label, workers in (("one process", 0), (f"LocalCluster {args.workers} workers", args.workers)):
                out = Path(tmp) / f"{kind}-{workers}"
                command = [sys.executable, __file__, "--_run", str(source), str(out), str(workers)]
                done = subprocess.run([*command, str(args.partition_rows)], capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(done.stderr[-3000:])
                m = json.loads(done.stdout.strip().splitlines()[-1])
                outs[workers] = out
                cpu.setdefault(kind, []).append(m["cpu_s"])
                worker = f"{max(m['worker_gib']):.2f}" if m["worker_gib"] else "-"
                rows.append((kind, n, label, m["wall_s"], n / m["wall_s"], m["client_gib"], worker))
                print(
                    f"{kind:9s} {n:>10,} {label:24s} {m['wall_s']:8.1f} s {n / m['wall_s']:>9,.0f} rows/s "
                    f"client {m['client_gib']:.2f} GiB, worker max {worker} GiB; "
                    f"CPU s {[round(c) for c in m['cpu_s']]}; {m['counts']}",
                    flush=True,
                )
            print(f"{kind}: outputs of (a) and (b) equal part by part: {_same_output(outs[0], outs[args.workers])}")
            serial = next(r for r in rows if r[0] == kind and r[2] == "one process")
            parallel = rows[-1]
            print(f"{kind}: speed-up of (b) over (a): {serial[3] / parallel[3]:.2f}x wall")
            cpus = cpu[kind]
            print(
                f"{kind}: CPU time of (a) / of (b)'s busiest worker: {cpus[0][0] / max(cpus[1]):.2f}x "
                "(the wall speed-up on an idle machine with a core per worker)"
            )
            per_row = cpus[0][0] / n  # CPU seconds: what a worker with its own core spends per row
            step = _global_step_s(n) * (1e8 * np.log(1e8)) / (n * np.log(max(n, 2)))
            for workers in (10, 100):
                minutes = (1e8 * per_row / workers + step) / 60
                print(
                    f"{kind}: 100M rows on {workers} workers ~ {minutes:.0f} min "
                    f"({per_row * 1e6:.0f} CPU us/row from (a), + {step:.0f} s client sort; no I/O or scheduler limits)"
                )


if __name__ == "__main__":
    main()
