"""``sse-screen generate`` (and ``rank --generate``): the command-line side of :mod:`screening.generate`.

The parents come from the argument (a comma list, a file with a formula column, .cif paths or a folder of CIFs); the
options map onto :func:`screening.generate.generate_candidates`. An output without a suffix is a Parquet dataset
written parent by parent (:mod:`screening.generate_dataset`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from sse_screen.screening.cli_errors import UserError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_generate_options", "cmd_generate", "generate_from_args"]


def add_generate_options(parser: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """The generation options (``prefix="generate-"`` on ``rank``, where they only apply with --generate)."""
    parser.add_argument(
        f"--{prefix}fractions",
        help="fractions of a site given to the dopant, comma-separated (default 0.05,0.1,0.2,0.25,0.3,0.4,0.5)",
    )
    parser.add_argument(f"--{prefix}max-candidates", type=int, help="keep the N most plausible variants")
    parser.add_argument(f"--{prefix}dopants", help="allow-list of dopant elements, comma-separated (e.g. Ta,Nb,Al)")
    parser.add_argument(
        f"--{prefix}exclude", help="elements never used, added to the default list (radioactive, Pb, Cd, ...)"
    )
    parser.add_argument(
        f"--{prefix}dopants-per-site",
        type=int,
        help="keep the N most plausible replacement ions per site (default: all that pass the filters)",
    )
    parser.add_argument(
        f"--{prefix}max-per-parent", type=int, help="keep the N most plausible variants of each parent (5000)"
    )
    parser.add_argument(
        f"--{prefix}no-codoping", action="store_true", help="only single moves (no two dopants at once)"
    )
    if not prefix:
        parser.add_argument("--mobile-ion", default="Li", help="element whose content compensates (default Li)")
        parser.add_argument("--formula-column", default="formula", help="formula column of a PARENTS file")


def _symbols(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def generate_from_args(args: argparse.Namespace, parents_text: str, *, prefix: str = "") -> pd.DataFrame:
    """Parents from the argument (a file or a comma list), candidates from :func:`screening.generate`."""
    from sse_screen.screening.generate import generate_candidates

    parents, options = _generation_inputs(args, parents_text, prefix=prefix)
    try:
        return generate_candidates(parents, **options)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _generation_inputs(
    args: argparse.Namespace, parents_text: str, *, prefix: str = ""
) -> tuple[list[str], dict[str, object]]:
    """The parents (a folder of CIFs, a file, or a comma list) and the generation options of the command line."""
    from pathlib import Path

    from sse_screen.screening.checks import DEFAULT_EXCLUSIONS
    from sse_screen.screening.generate import DEFAULT_DOPANTS_PER_SITE, DEFAULT_FRACTIONS, DEFAULT_MAX_PER_PARENT
    from sse_screen.screening.table_io import read_candidates

    def option(name: str) -> object:
        return getattr(args, prefix.replace("-", "_") + name)

    path = Path(parents_text)
    if path.is_dir():  # a folder of CIF parents
        parents = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() == ".cif" and p.is_file())
        if not parents:
            raise UserError(f"{path}: holds no .cif files")
    elif path.suffix.lower() in {".csv", ".tsv", ".txt", ".parquet", ".pq"}:
        table = read_candidates(path, formula_column=getattr(args, "formula_column", "formula"))
        cifs = table["cif_path"] if "cif_path" in table.columns else [""] * len(table)
        parents = [c if c and not f else f for f, c in zip(table["formula"], cifs, strict=True)]
    else:
        parents = [p.strip() for p in parents_text.split(",")]
    output = getattr(args, "output", None)
    cif_dir = Path(output).with_name(Path(output).stem + "_cifs") if output else None
    if cif_dir is None and any(p.lower().endswith(".cif") for p in parents):
        import tempfile

        cif_dir = Path(tempfile.mkdtemp(prefix="sse-screen-variants-"))
    try:
        fractions = [float(f) for f in _symbols(option("fractions")) or DEFAULT_FRACTIONS]
    except ValueError:
        raise UserError(f"--{prefix}fractions takes numbers separated by commas, got {option('fractions')!r}") from None
    exclusions = dict(DEFAULT_EXCLUSIONS) | {s: "excluded by the user" for s in _symbols(option("exclude")) or []}
    per_site, per_parent = option("dopants_per_site"), option("max_per_parent")
    return parents, {
        "fractions": fractions,
        "max_candidates": option("max_candidates"),
        "max_per_parent": DEFAULT_MAX_PER_PARENT if per_parent is None else per_parent,
        "codoping": not option("no_codoping"),
        "dopants": _symbols(option("dopants")),
        "exclude": exclusions,
        "mobile_ion": getattr(args, "mobile_ion", None) or "Li",
        "dopants_per_site": DEFAULT_DOPANTS_PER_SITE if per_site is None else per_site,
        "cif_dir": cif_dir if any(p.lower().endswith(".cif") for p in parents) else None,
    }


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sse_screen.screening.table_io import write_table

    if not Path(args.output).suffix:  # a Parquet dataset folder, written parent by parent
        from sse_screen.screening.generate_dataset import write_candidate_dataset

        parents, options = _generation_inputs(args, args.parents)
        try:
            done = write_candidate_dataset(parents, args.output, **options)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if not args.quiet:
            print(
                f"generated {done['variants']} candidates from {done['parents']} parents into {args.output}/ "
                f"({done['parts']} Parquet parts; {done['known']} already in the bundled data: see 'known_as')",
                file=sys.stderr,
            )
            for error in done["errors"]:
                print(f"parent not used: {error}", file=sys.stderr)
        return 0
    table = generate_from_args(args, args.parents)
    write_table(table, args.output)
    if not args.quiet:
        bad = table["parent_error"] != ""
        variants = int(((table["move"] != "parent") & ~bad).sum())
        known = int((table["known_as"] != "").sum())
        print(
            f"generated {variants} candidates from {table.loc[~bad, 'parent'].nunique()} parents into {args.output} "
            f"({known} already in the bundled data: see 'known_as')",
            file=sys.stderr,
        )
        for row in table[bad].itertuples():
            print(f"parent not used: {row.parent_error}", file=sys.stderr)
    return 0
