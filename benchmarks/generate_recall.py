"""Does `sse-screen generate` propose what chemists actually made? Recall of known doped electrolytes from ten parents.

    python benchmarks/generate_recall.py [--mchaffie PATH] [--options '{"max_per_parent": 2000}']

From ten well-known parents (:data:`PARENTS`), generate with the default settings (or ``--options``: keyword
arguments of ``generate_candidates`` as a Python literal, for the trade-off between candidates and recall) and print

(a) the number of candidates per parent and the time;
(b) the **recall of known experimental compositions**. The known compositions are the distinct canonical
    compositions of OBELiX (all splits) and McHaffie et al. 2025 (every row), without the ones holding an element of
    the default exclusion list (Pb, Cd, As, ...: the generator never proposes them, by design). A known composition K
    is a **variant** of parent P when

    - K holds the mobile ion (Li) and 1 or 2 elements that P does not (the dopants), and lacks at most as many of P's
      elements as it adds (a dopant may replace an element fully);
    - its framework is P's with a partial substitution: the atomic fractions of the elements other than Li, each
      normalised to the non-Li atoms, differ from P's by at most :data:`MAX_FRAMEWORK_L1` in sum (L1 distance; Ta on
      half the Zr sites of Li7La3Zr2O12 is 0.12, all the Y of Li3YCl6 replaced by In is 0.29);
    - its Li content per non-Li atom is within a factor 2 of P's (the same structure family, not a Li-poor phase).

    K is **produced** when a candidate generated from a parent it is a variant of has K's element set and every
    atomic fraction within :data:`FRACTION_TOLERANCE` of K's (the grid of dopant fractions is discrete: K may lie
    between two grid points), and **proposed** when a candidate has K's element set (the generator made the move, at
    some fraction). Recall is counted over the distinct known variants of all ten parents (a composition that is a
    variant of two parents counts once, produced when either parent produces it), for the single-dopant variants
    (one added element) and for all.
(c) the **rank of the known dopants by plausibility**: for each parent, the known dopant elements (the elements its
    known variants add) and how many of them are among the first ten distinct dopant elements of the parent's
    candidates ordered by plausibility.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from known_electrolyte_checks import MCHAFFIE

PARENTS = (
    "Li7La3Zr2O12",
    "Li6PS5Cl",
    "Li10GeP2S12",
    "Li3YCl6",
    "Li3InCl6",
    "LiTi2(PO4)3",
    "LiZr2(PO4)3",
    "Li3PS4",
    "Li0.5La0.5TiO3",
    "Li4SiO4",
)
MOBILE_ION = "Li"
#: Largest L1 distance between the non-Li atomic fractions of a variant and its parent.
MAX_FRAMEWORK_L1 = 0.3
#: Largest difference of any atomic fraction between a known composition and the candidate that produces it.
FRACTION_TOLERANCE = 0.01


def known_compositions(mchaffie: Path = MCHAFFIE) -> dict[str, dict[str, float]]:
    """Canonical key -> atomic fractions of every parseable known composition without an excluded element."""
    from sse_screen.features.canonical import canonical_keys
    from sse_screen.features.datasets import load_obelix
    from sse_screen.features.formula import parse_formula
    from sse_screen.screening.checks import DEFAULT_EXCLUSIONS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        formulas = load_obelix("all")["formula"].astype(str).str.strip().tolist()
    if mchaffie.is_file():
        formulas += pd.read_csv(mchaffie)["compound"].astype(str).str.strip().tolist()
    out = {}
    for formula, key in zip(formulas, canonical_keys(formulas), strict=True):
        if key is None or key in out:
            continue
        amounts = parse_formula(formula)
        if any(el in DEFAULT_EXCLUSIONS for el in amounts):
            continue
        total = sum(amounts.values())
        out[key] = {el: a / total for el, a in amounts.items()}
    return out


def _framework(fractions: dict[str, float]) -> tuple[dict[str, float], float]:
    """Non-Li fractions renormalised, and Li atoms per non-Li atom."""
    rest = {el: f for el, f in fractions.items() if el != MOBILE_ION}
    total = sum(rest.values())
    return {el: f / total for el, f in rest.items()}, fractions.get(MOBILE_ION, 0.0) / total


def is_variant(known: dict[str, float], parent: dict[str, float]) -> bool:
    """The definition (b) of the module docstring."""
    added, removed = set(known) - set(parent), set(parent) - set(known)
    if MOBILE_ION not in known or not 1 <= len(added) <= 2 or len(removed) > len(added):
        return False
    (kf, k_li), (pf, p_li) = _framework(known), _framework(parent)
    l1 = sum(abs(kf.get(el, 0.0) - pf.get(el, 0.0)) for el in set(kf) | set(pf))
    return l1 <= MAX_FRAMEWORK_L1 and 0.5 <= k_li / p_li <= 2.0


def _fractions(formula: str) -> dict[str, float]:
    from sse_screen.features.formula import parse_formula

    amounts = parse_formula(formula)
    total = sum(amounts.values())
    return {el: a / total for el, a in amounts.items()}


def main(argv: list[str] | None = None) -> int:
    from sse_screen.screening.generate import generate_candidates

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mchaffie", type=Path, default=MCHAFFIE, help="McHaffie ionic_conductivity_database.csv")
    parser.add_argument("--options", default="{}", help="generate_candidates keyword arguments, a Python dict literal")
    args = parser.parse_args(argv)
    options = ast.literal_eval(args.options)
    known = known_compositions(args.mchaffie)
    print(f"known compositions (OBELiX{' + McHaffie' if args.mchaffie.is_file() else ''}): {len(known)}")
    generate_candidates(["Li3PS4"])  # load pymatgen's table and the checks once, outside the timings
    produced: dict[str, bool] = {}
    proposed: dict[str, bool] = {}
    single: dict[str, bool] = {}
    top_hits = []
    total_candidates = 0
    print(f"{'parent':16s} {'candidates':>10s} {'time_s':>7s} {'known variants':>14s} {'produced':>8s} "
          f"{'proposed':>8s}  known dopants in the top 10 by plausibility")  # fmt: skip
    for parent in PARENTS:
        start = time.perf_counter()
        table = generate_candidates([parent], **options)
        seconds = time.perf_counter() - start
        total_candidates += int(((table["move"] != "parent") & (table["parent_error"] == "")).sum())
        variants = table[(table["move"] != "parent") & (table["parent_error"] == "")]
        cand = [_fractions(f) for f in variants["formula"]]
        by_set: dict[frozenset[str], list[dict[str, float]]] = {}
        for c in cand:
            by_set.setdefault(frozenset(c), []).append(c)
        pf = _fractions(parent)
        mine = {key: k for key, k in known.items() if is_variant(k, pf)}
        n_prod = n_prop = 0
        for key, k in mine.items():
            same = by_set.get(frozenset(k), [])
            hit = any(max(abs(c[el] - k[el]) for el in k) <= FRACTION_TOLERANCE for c in same)
            produced[key] = produced.get(key, False) or hit
            proposed[key] = proposed.get(key, False) or bool(same)
            single[key] = len(set(k) - set(pf)) == 1
            n_prod += hit
            n_prop += bool(same)
        dopants_known = sorted({el for k in mine.values() for el in set(k) - set(pf)})
        top10 = list(dict.fromkeys(variants.sort_values("plausibility", ascending=False, kind="stable")["dopant"]))[:10]
        hits = [el for el in top10 if el in dopants_known]
        top_hits.append((len(hits), len(dopants_known)))
        print(
            f"{parent:16s} {len(variants):10d} {seconds:7.2f} {len(mine):14d} {n_prod:8d} {n_prop:8d}  "
            f"{len(hits)}/{len(dopants_known)} ({', '.join(hits) or '-'}; top 10: {', '.join(top10)}; "
            f"known: {', '.join(dopants_known) or '-'})"
        )
    keys = np.array(list(produced))
    prod = np.array([produced[k] for k in keys])
    prop = np.array([proposed[k] for k in keys])
    one = np.array([single[k] for k in keys])
    print(f"candidates: {total_candidates}")
    print(f"distinct known variants: {len(keys)} ({int(one.sum())} with one dopant element)")
    for name, mask in (("one dopant element", one), ("all (one or two)", np.ones(len(keys), dtype=bool))):
        print(
            f"recall, {name}: produced {prod[mask].mean():.1%} ({int(prod[mask].sum())}/{int(mask.sum())}), "
            f"move proposed {prop[mask].mean():.1%} ({int(prop[mask].sum())}/{int(mask.sum())})"
        )
    found, total = sum(h for h, _ in top_hits), sum(min(t, 10) for _, t in top_hits)
    print(f"known dopant elements in the parents' top 10: {found}/{total} ({found / max(total, 1):.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
