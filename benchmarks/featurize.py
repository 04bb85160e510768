"""Benchmark: our CompositionFeaturizer (magpie preset) against matminer, same formulas, same machine, one run.

Run:
    python benchmarks/featurize.py [--n 5000] [--repeats 5] [--seed 0]

Generates ``n`` electrolyte-like formulas deterministically (garnets, argyrodites, halides, NASICONs,
thiophosphates, perovskites with integer, fractional and bracketed stoichiometries and dopants), featurizes them
from strings with matminer (``StrToComposition`` then ``ElementProperty.from_preset("magpie")``, ``n_jobs=1``, no
progress bars) once, and with ours ``--repeats`` times (parse cache cleared before each repeat, so every repeat
parses from scratch). Prints both times, the speed ratio of the median and the agreement of the values.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _x(rng: np.random.Generator, lo: float, hi: float, digits: int = 2) -> str:
    """A dopant level in [lo, hi], formatted without trailing zeros."""
    return f"{round(float(rng.uniform(lo, hi)), digits):g}"


def electrolyte_formulas(n: int, *, seed: int = 0) -> list[str]:
    """``n`` deterministic electrolyte-like formulas (about a tenth repeat, as real candidate lists do)."""
    rng = np.random.default_rng(seed)
    halide_m = ["Y", "In", "Sc", "Er", "Ho", "Yb", "Lu", "Zr"]
    halogens = ["Cl", "Br", "I"]
    out: list[str] = []
    while len(out) < n:
        kind = int(rng.integers(8))
        x = float(rng.uniform(0.05, 0.6))
        xs = f"{round(x, 3):g}"
        if kind == 0:  # doped garnet
            dop = str(rng.choice(["Ta", "Nb", "Sb"]))
            out.append(f"Li{round(7 - x, 3):g}La3Zr{round(2 - x, 3):g}{dop}{xs}O12")
        elif kind == 1:  # Al/Ga garnet, bracketed
            dop = str(rng.choice(["Al", "Ga"]))
            out.append(f"Li{round(7 - 3 * x / 2, 3):g}{dop}{round(x / 2, 3):g}La3(Zr2O7)O5")
        elif kind == 2:  # argyrodite with mixed halide
            h1, h2 = rng.choice(halogens, size=2, replace=False)
            out.append(f"Li{round(6 - x, 3):g}PS{round(5 - x, 3):g}{h1}{round(1 + x - 0.5, 3):g}{h2}0.5")
        elif kind == 3:  # ternary halide Li3MX6, optionally Zr-doped
            m, h = str(rng.choice(halide_m[:-1])), str(rng.choice(halogens))
            out.append(
                f"Li3{m}{h}6" if rng.random() < 0.3 else f"Li{round(3 - x, 3):g}{m}{round(1 - x, 3):g}Zr{xs}{h}6"
            )
        elif kind == 4:  # LATP / NASICON, bracketed
            out.append(f"Li{round(1 + x, 3):g}Al{xs}Ti{round(2 - x, 3):g}(PO4)3")
        elif kind == 5:  # sodium NASICON with square brackets
            out.append(f"Na{round(1 + 2 * x, 3):g}[Zr2Si{round(2 * x, 3):g}P{round(3 - 2 * x, 3):g}O12]")
        elif kind == 6:  # thiophosphates, integer stoichiometry
            m = str(rng.choice(["Ge", "Si", "Sn"]))
            out.append(str(rng.choice([f"Li10{m}P2S12", "Li7P3S11", "Li3PS4", f"Li4{m}S4", "Na3PS4", "Na3SbS4"])))
        else:  # perovskite LLTO
            out.append(f"Li{round(3 * x / 2, 3):g}La{round(2 / 3 - x / 2, 3):g}TiO3")
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="number of formulas (default 5000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of our featurizer (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import pandas as pd
    from matminer.featurizers.composition import ElementProperty
    from matminer.featurizers.conversions import StrToComposition

    from sse_screen.features import formula
    from sse_screen.features.composition import CompositionFeaturizer

    formulas = electrolyte_formulas(args.n, seed=args.seed)
    print(f"{len(formulas)} formulas ({len(set(formulas))} distinct), e.g. {formulas[:4]}")

    # matminer, from strings, single process, no progress bars (objects built outside the timing, as ours is fitted)
    to_comp = StrToComposition()
    to_comp.set_n_jobs(1)
    magpie = ElementProperty.from_preset("magpie")
    magpie.set_n_jobs(1)
    t0 = time.perf_counter()
    df = to_comp.featurize_dataframe(pd.DataFrame({"formula": formulas}), "formula", pbar=False)
    df = magpie.featurize_dataframe(df, "composition", pbar=False)
    t_matminer = time.perf_counter() - t0
    ref = df[magpie.feature_labels()].to_numpy(dtype=np.float64)

    ours_feat = CompositionFeaturizer(preset="magpie").fit()
    times = []
    for _ in range(args.repeats):
        formula._parse_cached.cache_clear()  # every repeat parses from scratch
        t0 = time.perf_counter()
        ours = ours_feat.transform(formulas)
        times.append(time.perf_counter() - t0)
    t_ours = statistics.median(times)

    same_nan = bool(np.array_equal(np.isnan(ours), np.isnan(ref)))
    diff = np.abs(ours - ref)
    max_diff = float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0
    labels_ok = list(ours_feat.get_feature_names_out()) == magpie.feature_labels()
    print(f"matminer (StrToComposition + ElementProperty magpie, n_jobs=1): {t_matminer:8.3f} s")
    print(
        f"sse-screen CompositionFeaturizer(preset='magpie'):             {t_ours:8.4f} s "
        f"(median of {len(times)}; min {min(times):.4f}, max {max(times):.4f}; first includes table load)"
    )
    print(f"speed ratio matminer / ours: {t_matminer / t_ours:.0f}x")
    print(
        f"labels and order identical: {labels_ok}; max |difference|: {max_diff:.3g}; NaN pattern identical: {same_nan}"
    )


if __name__ == "__main__":
    main()
