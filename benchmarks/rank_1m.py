"""Benchmark: ``sse-screen rank`` end to end on a million enumerated candidates, against pymatgen merely parsing them.

Run:
    python benchmarks/rank_1m.py [--n 1000000] [--sample 100000] [--seed 0] [--diverse] [--profile]

Generates ``n`` electrolyte-like candidate formulas deterministically by substitution and doping on a few dozen
prototypes (Li3MX6 halides, argyrodites, LGPS, thiophosphates, garnets, NASICONs, perovskites, LISICONs,
antiperovskites, Li7P3S11), with dopant fractions on a 0.0001 grid: many distinct compositions over a modest number
of chemical systems, as an enumeration produces. ``--diverse`` instead draws random chemistry
(:func:`diverse_formulas`: elements H-Pu across the table, one to five per formula, integer and fractional amounts,
a new chemical system at least every three formulas), where the per-system work of the reference hull dominates.
Then times, in one run on the same machine:

(a) pymatgen parsing them, ``Composition(f)`` for each: timed on a ``--sample`` (default 100,000) and scaled to
    ``n`` (printed as such when the sample is smaller than ``n``);
(b) ``screening.rank.rank_candidates(table, load_models(), options=RankOptions(explain=False))`` on the full list.

Prints wall times, the ratio (b)/(a) (targets: prototype enumeration <= 5x, diverse <= 15x) and the peak resident
memory of the process (``ru_maxrss``; target < 4 GiB). Shipped models are used; a task without a shipped bundle gets a
tiny model trained here first (not timed, said so). ``--profile`` runs (b) under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

# (template, {placeholder: choices}) - {a} and {b} are amounts derived from the dopant fraction x (see _AMOUNTS)
_PROTOTYPES: list[tuple[str, dict[str, list[str]], str]] = [
    (
        "Li{3-x}{M}{1-x}{D}{x}{X}6",
        {"M": ["Y", "In", "Sc", "Er", "Ho", "Yb", "Lu"], "D": ["Zr", "Hf"], "X": ["Cl", "Br"]},
        "x<1",
    ),
    ("Li3{M}{X}{6-x}{Y}{x}", {"M": ["Y", "In", "Er", "Sc"], "X": ["Cl"], "Y": ["Br", "I"]}, "x<6"),
    ("Li{6-x}PS{5-x}{X}{1+x}", {"X": ["Cl", "Br", "I"]}, "x<0.7"),
    ("Li{6+x}P{1-x}{D}{x}S5{X}", {"D": ["Si", "Ge", "Sn"], "X": ["Cl", "Br", "I"]}, "x<0.6"),
    ("Li{10+x}{D}{1+x}P{2-x}S12", {"D": ["Ge", "Si", "Sn"]}, "x<1"),
    ("Li{3+x}P{1-x}{D}{x}S4", {"D": ["Si", "Ge", "Sn"]}, "x<0.5"),
    ("Li3PS{4-x}O{x}", {}, "x<1"),
    ("Li7P3S{11-x}{X}{x}", {"X": ["O", "Se"]}, "x<2"),
    ("Li{7-x}La3Zr{2-x}{D}{x}O12", {"D": ["Ta", "Nb", "Sb"]}, "x<1"),
    ("Li{7-3x}{A}{x}La3Zr2O12", {"A": ["Al", "Ga"]}, "x<0.3"),
    ("Li{1+x}{A}{x}{M}{2-x}(PO4)3", {"A": ["Al", "Sc", "Y", "Ga"], "M": ["Ti", "Ge", "Zr", "Hf"]}, "x<0.6"),
    ("Li{3x}{L}{2/3-x}TiO3", {"L": ["La", "Nd", "Pr"]}, "x<0.16"),
    ("Li{2+2x}Zn{1-x}{D}O4", {"D": ["Ge", "Si"]}, "x<0.9"),
    ("Li3O{X}{1-x}{Y}{x}", {"X": ["Cl"], "Y": ["Br", "I"]}, "x<1"),
    ("Li{1+x}Ta{1-x}{D}{x}O3", {"D": ["Zr", "Hf", "Ti"]}, "x<0.5"),
    ("Li{2-x}{M}{1-x}{D}{x}{X}4", {"M": ["Zr", "Hf", "Ti"], "D": ["Nb", "Ta"], "X": ["Cl", "F"]}, "x<1"),
]
_AMOUNTS = {
    "3-x": lambda x: 3 - x, "1-x": lambda x: 1 - x, "x": lambda x: x, "6-x": lambda x: 6 - x,
    "5-x": lambda x: 5 - x, "1+x": lambda x: 1 + x, "6+x": lambda x: 6 + x, "10+x": lambda x: 10 + x,
    "2-x": lambda x: 2 - x, "3+x": lambda x: 3 + x, "4-x": lambda x: 4 - x, "11-x": lambda x: 11 - x,
    "7-x": lambda x: 7 - x, "7-3x": lambda x: 7 - 3 * x, "3x": lambda x: 3 * x, "2/3-x": lambda x: 2 / 3 - x,
    "2+2x": lambda x: 2 + 2 * x,
}  # fmt: skip


def _fmt(value: float, cache: dict[float, str]) -> str:
    text = cache.get(value)
    if text is None:
        text = f"{round(value, 4):g}"
        cache[value] = "" if text == "1" else text
        text = cache[value]
    return text


def candidate_formulas(n: int, *, seed: int = 0) -> list[str]:
    """``n`` deterministic doped/substituted candidates (duplicates occur, as in real enumerations)."""
    import re

    rng = np.random.default_rng(seed)
    proto = rng.integers(len(_PROTOTYPES), size=n)
    cache: dict[float, str] = {}
    out: list[str] = [""] * n
    for p, (template, choices, limit) in enumerate(_PROTOTYPES):
        rows = np.flatnonzero(proto == p)
        hi = float(limit.split("<")[1])
        xs = np.round(rng.uniform(0.0001, hi - 0.0001, size=len(rows)), 4)
        picks = {name: rng.integers(len(opts), size=len(rows)) for name, opts in choices.items()}
        parts = re.split(r"(\{[^}]*\})", template)
        for j, (row, x) in enumerate(zip(rows.tolist(), xs.tolist(), strict=True)):
            text = []
            for part in parts:
                if part.startswith("{"):
                    key = part[1:-1]
                    text.append(choices[key][picks[key][j]] if key in choices else _fmt(_AMOUNTS[key](x), cache))
                else:
                    text.append(part)
            out[row] = "".join(text)
    return out


def diverse_formulas(n: int, *, seed: int = 0) -> list[str]:
    """``n`` deterministic random-chemistry formulas over at least ``n / 3`` distinct chemical systems.

    Elements are drawn uniformly from H-Pu (noble gases included: they are legal input), one to five per formula
    (weights 5/25/30/25/15 %); amounts are integers 1-12 or decimals 0.05-8 (three decimals), half and half. Each
    system gets at least one formula; the remaining formulas reuse random systems (other amounts).
    """
    from sse_screen.features.elements import ELEMENT_SYMBOLS

    rng = np.random.default_rng(seed)
    symbols = ELEMENT_SYMBOLS[:94]
    n_systems = -(-n // 3)
    systems: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    while len(systems) < n_systems:
        size = int(rng.choice(5, p=[0.05, 0.25, 0.30, 0.25, 0.15])) + 1
        system = tuple(sorted(rng.choice(len(symbols), size=size, replace=False).tolist()))
        if system not in seen:
            seen.add(system)
            systems.append(system)
    pick = np.concatenate([np.arange(n_systems), rng.integers(n_systems, size=n - n_systems)])[:n]
    rng.shuffle(pick)
    out = []
    for s in pick.tolist():
        parts = []
        for z in rng.permutation(systems[s]).tolist():
            amount = int(rng.integers(1, 13)) if rng.random() < 0.5 else round(float(rng.uniform(0.05, 8)), 3)
            parts.append(symbols[z] + ("" if amount == 1 else f"{amount:g}"))
        out.append("".join(parts))
    return out


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _models(workdir: Path) -> tuple[dict, list[str]]:
    """Shipped models; a tiny one trained here for each task without a shipped bundle."""
    from sse_screen.models.registry import ModelNotFoundError
    from sse_screen.screening.predict import PREDICT_TASKS, load_models

    uris: dict[str, str] = {}
    trained = []
    for task in PREDICT_TASKS:
        try:
            load_models(tasks=(task,))
        except ModelNotFoundError:
            if task == "conductivity":
                raise
            uris[task] = str(_train_tiny(task, workdir / task))
            trained.append(task)
    return load_models(uris), trained


def _train_tiny(task: str, path: Path) -> Path:
    from sse_screen.features.datasets import load_mp_e_hull, load_mp_gap
    from sse_screen.models.property_model import PropertyModel

    if task == "stability":
        table = load_mp_e_hull("train").sample(1500, random_state=0)
        y = table["e_hull_ev_per_atom"]
    else:
        table = load_mp_gap(aggregate="median").sample(1500, random_state=0)
        y = table["band_gap_ev"]
    model = PropertyModel(task=task, n_estimators=30, n_folds=2, max_depth=5, learning_rate=0.15, n_jobs=2)
    model.fit(table["reduced_formula"], y)
    return model.save(path, metadata={"training_data_sha256": "benchmark-tiny", "metrics": {}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="candidates to rank")
    parser.add_argument("--sample", type=int, default=100_000, help="formulas pymatgen parses (scaled to --n)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--diverse", action="store_true", help="random chemistry instead of prototype enumeration")
    parser.add_argument("--profile", action="store_true", help="run the ranking under cProfile, print the top")
    parser.add_argument(
        "--predict-rejected",
        action="store_true",
        help="send rows that fail the cheap checks through the models too (the funnel's default skips them)",
    )
    args = parser.parse_args()

    from pymatgen.core import Composition

    from sse_screen.screening.rank import RankOptions, rank_candidates

    t0 = time.perf_counter()
    formulas = (diverse_formulas if args.diverse else candidate_formulas)(args.n, seed=args.seed)
    t_gen = time.perf_counter() - t0
    n_distinct = len(set(formulas))
    kind = "diverse" if args.diverse else "prototype"
    print(f"generated {args.n:,} {kind} formulas ({n_distinct:,} distinct) in {t_gen:.1f} s; e.g. {formulas[:3]}")

    with tempfile.TemporaryDirectory() as tmp:
        models, trained = _models(Path(tmp))
        if trained:
            print(f"no shipped model for {trained}: trained a tiny one each (n_estimators=30, 1500 rows; not timed)")

        sample = formulas[: min(args.sample, args.n)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            for f in sample:
                Composition(f)
            t_parse_sample = time.perf_counter() - t0
        t_parse = t_parse_sample * args.n / len(sample)
        scaled = f" (timed on {len(sample):,}, scaled)" if len(sample) < args.n else ""
        print(f"(a) pymatgen Composition() parse: {t_parse:8.1f} s{scaled}")
        rss_before = _peak_gib()

        table = pd.DataFrame({"formula": formulas})
        options = RankOptions(explain=False, predict_rejected=args.predict_rejected)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                t0 = time.perf_counter()
                profiler.enable()
                ranked = rank_candidates(table, models, options=options)
                profiler.disable()
                t_rank = time.perf_counter() - t0
            else:
                t0 = time.perf_counter()
                ranked = rank_candidates(table, models, options=options)
                t_rank = time.perf_counter() - t0
    status = ranked["status"].value_counts().to_dict()
    print(f"(b) rank_candidates end to end:   {t_rank:8.1f} s  ({args.n / t_rank:,.0f} rows/s; status {status})")
    target = 15 if args.diverse else 5
    print(f"ratio (b)/(a): {t_rank / t_parse:.2f}x   (target <= {target}x for {kind} formulas)")
    print(f"peak RSS: {_peak_gib():.2f} GiB (before ranking: {rss_before:.2f} GiB; target < 4 GiB)")
    if args.profile:
        stats = pstats.Stats(profiler)
        print("\ncProfile, top 30 by cumulative time:")
        stats.sort_stats("cumulative").print_stats(30)
        print("cProfile, top 20 by own time:")
        stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
