"""How many known electrolytes the chemistry checks reject: OBELiX and McHaffie et al. 2025, every row as written.

    python benchmarks/known_electrolyte_checks.py [--mchaffie PATH]

Prints, per source and together, the rows rejected by charge balance and by any check (the toxic-element policy
included: Pb, Cd, As), with each rejected formula and its reason. The target of the charge-balance rules
(:mod:`screening.charge_balance`) is at most 1 % of the known electrolytes rejected.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
MCHAFFIE = REPO / "data" / "mchaffie" / "ionic_conductivity_database.csv"


def known_electrolytes(mchaffie: Path = MCHAFFIE) -> pd.DataFrame:
    """Formulas of OBELiX (all splits) and, when the file exists, McHaffie et al.: columns ``source``, ``formula``."""
    from sse_screen.features.datasets import load_obelix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loader warns about its one unparseable formula
        obelix = load_obelix("all")
    parts = [pd.DataFrame({"source": "OBELiX", "formula": obelix["formula"].astype(str).str.strip()})]
    if mchaffie.is_file():
        table = pd.read_csv(mchaffie)
        parts.append(pd.DataFrame({"source": "McHaffie", "formula": table["compound"].astype(str).str.strip()}))
    return pd.concat(parts, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    from sse_screen.screening.checks import run_checks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mchaffie", type=Path, default=MCHAFFIE, help="McHaffie ionic_conductivity_database.csv")
    args = parser.parse_args(argv)
    table = known_electrolytes(args.mchaffie)
    out = run_checks(table["formula"])
    table = table.assign(status=out["status"], reason=out["reason"])
    table["by_charge"] = table["reason"].str.contains("charge balanced|anion state below")
    for name, part in [*table.groupby("source", sort=False), ("together", table)]:
        rejected = part["status"] == "rejected"
        print(
            f"{name}: {len(part)} rows, rejected by charge balance {int(part['by_charge'].sum())} "
            f"({part['by_charge'].mean():.2%}), by any check {int(rejected.sum())} ({rejected.mean():.2%}), "
            f"invalid {int((part['status'] == 'invalid').sum())}"
        )
    for row in table[table["status"] == "rejected"].drop_duplicates("formula").itertuples():
        print(f"  {row.source:8s} {row.formula:28s} {row.reason[:150]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
