"""``sse-screen rank|predict|featurize`` on a Parquet dataset or a Dask cluster (CLI side of screening.distributed).

Used when INPUT is a Parquet dataset (a folder of part files, or a glob), when OUTPUT has no file extension (a
dataset is written), or when ``--workers``/``--scheduler`` is given. Another input (CSV, TXT, CIFs) is read as
usual and handed to the partitions as one Parquet file. OUTPUT without extension (or ``.parquet`` for a dataset
input) is a dataset folder; an output *file* (``.csv``, ``.json``, ``.html``) gathers the result into one table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

DATASET_SUFFIXES = {"", ".parquet", ".pq"}


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a partitioned run (rank, predict, featurize)."""
    parser.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N worker processes")
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786"
    )
    parser.add_argument(
        "--partition-rows",
        type=int,
        default=None,
        metavar="N",
        help="rows per partition of a Parquet dataset (default 100000)",
    )


def wants_dataset(args: argparse.Namespace) -> bool:
    """True when the command runs partition by partition (module docstring)."""
    from sse_screen.screening.parquet_dataset import dataset_files

    if args.workers is not None or args.scheduler:
        return True
    if args.output and not Path(args.output).suffix:
        return True
    return dataset_files(args.input) is not None


def run(kind: str, args: argparse.Namespace, *, options=None) -> int:
    """Run ``kind`` (rank, predict, featurize) partition by partition; the exit code.

    Raises:
        screening.cli.UserError: Bad option values.
    """
    import pandas as pd

    from sse_screen.screening.cli import UserError
    from sse_screen.screening.distributed import count_rows, dask_client, map_dataset, model_spec, rank_dataset
    from sse_screen.screening.parquet_dataset import DEFAULT_PIECE_ROWS, PARQUET_SUFFIXES, dataset_files
    from sse_screen.screening.table_io import read_candidates, write_table

    files = dataset_files(args.input)
    suffix = Path(args.output).suffix.lower() if args.output else None
    to_dataset = suffix is not None and (suffix == "" or (files is not None and suffix in DATASET_SUFFIXES))
    if to_dataset and getattr(args, "top", None) is not None:
        raise UserError("--top writes one file: give -o a file name (.csv, .parquet, .json or .html)")
    rows = args.partition_rows or DEFAULT_PIECE_ROWS
    if rows < 1:
        raise UserError(f"--partition-rows takes a number of rows >= 1, got {rows}")
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    uris = {
        "stability": getattr(args, "stability_model", None),
        "band_gap": getattr(args, "band_gap_model", None),
        "conductivity": getattr(args, "conductivity_model", None),
    }
    with tempfile.TemporaryDirectory(prefix="sse-screen-") as workdir:
        source: str | Path = args.input
        column = args.formula_column
        if files is None and Path(args.input).suffix.lower() not in PARQUET_SUFFIXES:
            source = Path(workdir) / "input.parquet"  # CSV, TXT or CIFs: read as usual, partitioned from Parquet
            read_candidates(args.input, formula_column=column).to_parquet(source, index=False)
            column = "formula"
        target = Path(args.output) if to_dataset else Path(workdir) / "result"
        common = {"rows_per_partition": rows, "formula_column": column, "quiet": args.quiet}
        try:
            with dask_client(
                scheduler=args.scheduler, workers=args.workers, n_rows=count_rows(source), say=say
            ) as client:
                if kind == "rank":
                    result = rank_dataset(
                        source, target, options=options, models=model_spec(uris), client=client, **common
                    )
                    summary = ", ".join(f"{result.counts.get(s, 0)} {s}" for s in ("ranked", "rejected", "invalid"))
                else:
                    models = model_spec(uris) if kind == "predict" else None
                    _, n_bad = map_dataset(
                        kind, source, target, models=models, preset=getattr(args, "preset", "electrolyte"),
                        client=client, **common,
                    )  # fmt: skip
                    summary = f"{kind} done" + (f"; {n_bad} rows have an error (see the 'error' column)" * bool(n_bad))
        except ValueError as exc:  # bad weights, --workers, clashing columns
            raise UserError(str(exc)) from None
        if to_dataset:
            say(f"{summary}; written to the Parquet dataset {target}/")
            return 0
        if kind == "rank":
            from sse_screen.screening.partitioned import read_ranking

            table = read_ranking(target, top=args.top if args.output else (args.top or None))
        else:
            table = pd.read_parquet(target)
        if args.output:
            write_table(table, args.output, source=args.input)
        else:
            from sse_screen.screening.printed_table import print_ranking

            print_ranking(table, top=args.top, source=args.input)
        say(f"{summary}" + (f"; written to {args.output}" if args.output else ""))
    return 0
