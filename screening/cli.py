"""The ``sse-screen`` command line: thin translation from arguments to the pure functions in the packages.

Heavy libraries (pandas, pymatgen, xgboost, mlflow) are imported inside the commands, so ``sse-screen --help``
answers at once. Every problem a user can cause ends as one line on stderr and exit code 2; an unexpected failure
ends as one line and exit code 1 (set ``SSE_SCREEN_DEBUG=1`` to see the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sse-screen",
        description="Screen solid-state electrolyte candidates: featurize, predict, rank, train, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    feat = sub.add_parser(
        "featurize",
        help="compute composition features for a list of formulas",
        description=(
            "Compute composition features for every row of INPUT (a CSV/TSV/Parquet file with a formula column, "
            "or a .txt file with one formula per line). Writes one output row per input row, in order, with the "
            "input columns, the features and an 'error' column (empty when the row is fine)."
        ),
    )
    feat.add_argument("input", help="candidate list: .csv, .tsv, .parquet or .txt")
    feat.add_argument("-o", "--output", required=True, help="output file: .csv, .parquet or .json")
    feat.add_argument(
        "--preset",
        default="electrolyte",
        choices=["electrolyte", "magpie"],
        help="feature set: 'electrolyte' (default; magpie + electrolyte descriptors) or 'magpie' (matminer's 132)",
    )
    feat.add_argument("--formula-column", default="formula", help="name of the formula column (default: formula)")
    feat.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    feat.set_defaults(handler=_cmd_featurize)
    return parser


def _cmd_featurize(args: argparse.Namespace) -> int:
    from screening.featurize import featurize_table
    from screening.progress import progress_reporter
    from screening.table_io import read_candidates, write_table

    table = read_candidates(args.input, formula_column=args.formula_column)
    with progress_reporter(total=len(table), description="featurizing", quiet=args.quiet) as advance:
        result = featurize_table(table, preset=args.preset, on_progress=advance)
    write_table(result, args.output)
    if not args.quiet:
        n_bad = int((result["error"] != "").sum())
        print(
            f"featurized {len(result) - n_bad} of {len(result)} rows into {args.output}"
            + (f"; {n_bad} rows have an error (see the 'error' column)" if n_bad else ""),
            file=sys.stderr,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("sse-screen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place that turns failures into one line for a user
        if os.environ.get("SSE_SCREEN_DEBUG"):
            raise
        if _is_user_error(exc):
            print(f"sse-screen {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"sse-screen {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(set SSE_SCREEN_DEBUG=1 for the traceback and please report it)",
            file=sys.stderr,
        )
        return 1


def _is_user_error(exc: Exception) -> bool:
    from screening.table_io import InputError

    return isinstance(exc, UserError | InputError | FileNotFoundError | PermissionError | IsADirectoryError)


if __name__ == "__main__":
    raise SystemExit(main())
