"""Benchmark: non-dominated sorting (``screening.ranking.pareto_rank``) on 1e5 and 1e6 rows, 2-4 objectives.

Run:
    python benchmarks/pareto.py [--sizes 100000 1000000] [--objectives 2 3 4] [--repeats 3] [--seed 0]

Objectives are drawn uniformly at random (the hard case: many fronts; real objectives are correlated and have fewer
fronts) plus 5 % exact duplicates. Prints the median wall time of ``--repeats`` runs and the number of fronts, and,
side by side on the same machine, the O(n^2) brute-force reference (the definition, vectorised with numpy) at a size
it can handle, with the speed ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from sse_screen.screening.ranking import pareto_rank


def brute_force_fronts(values: np.ndarray) -> np.ndarray:
    """O(n^2) reference: peel the rows that no other remaining row dominates."""
    dominates = np.all(values[:, None, :] <= values[None, :, :], axis=2) & np.any(
        values[:, None, :] < values[None, :, :], axis=2
    )
    ranks = np.zeros(len(values), dtype=np.int64)
    remaining = np.ones(len(values), dtype=bool)
    front = 1
    while remaining.any():
        idx = np.flatnonzero(remaining)[~dominates[np.ix_(remaining, remaining)].any(axis=0)]
        ranks[idx] = front
        remaining[idx] = False
        front += 1
    return ranks


def sample(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    values = rng.random((n, m))
    dup = rng.random(n) < 0.05
    values[dup] = values[rng.integers(0, n, int(dup.sum()))]
    return values


def timed(func: Callable[..., np.ndarray], *args: object, repeats: int) -> tuple[float, np.ndarray]:
    times: list[float] = []
    result = np.zeros(0)
    for _ in range(repeats):
        start = time.perf_counter()
        result = func(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--objectives", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-size", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    print(f"{'objectives':>10} {'rows':>9} {'ours (s)':>9} {'brute force (s)':>16} {'ratio':>7} {'fronts':>7}")
    for m in args.objectives:
        small = sample(args.reference_size, m, rng)
        t_ref, ref = timed(brute_force_fronts, small, repeats=args.repeats)
        t_ours, ours = timed(pareto_rank, small, repeats=args.repeats)
        assert np.array_equal(ref, ours), "pareto_rank disagrees with the brute-force reference"
        print(f"{m:>10} {args.reference_size:>9} {t_ours:>9.3f} {t_ref:>16.3f} {t_ref / t_ours:>6.0f}x {ours.max():>7}")
        for n in args.sizes:
            values = sample(n, m, rng)
            t, ranks = timed(pareto_rank, values, repeats=args.repeats if n <= 100_000 else 1)
            print(f"{m:>10} {n:>9} {t:>9.2f} {'(O(n^2): not run)':>16} {'':>7} {ranks.max():>7}")


if __name__ == "__main__":
    main()
