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

from sse_screen.screening.cli_dataset import add_dataset_arguments
from sse_screen.screening.cli_errors import UserError
from sse_screen.screening.cli_generate import add_generate_options, cmd_generate, generate_from_args

EXIT_USAGE = 2


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
            "or a .txt file with one formula per line, or a Parquet dataset: a folder of part files or a glob). "
            "Writes one output row per input row, in order, with the "
            "input columns, the features and an 'error' column (empty when the row is fine)."
        ),
    )
    feat.add_argument("input", help="candidate list: .csv, .tsv, .parquet or .txt")
    feat.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .csv, .parquet or .json; no extension: a Parquet dataset (folder)",
    )
    feat.add_argument(
        "--preset",
        default="electrolyte",
        choices=["electrolyte", "magpie"],
        help="feature set: 'electrolyte' (default; magpie + electrolyte descriptors) or 'magpie' (matminer's 132)",
    )
    feat.add_argument("--formula-column", default="formula", help="name of the formula column (default: formula)")
    feat.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_dataset_arguments(feat)
    feat.set_defaults(handler=_cmd_featurize)

    pred = sub.add_parser(
        "predict",
        help="predict stability, band gap and conductivity (with uncertainties) for formulas or CIFs",
        description=(
            "Predict energy above hull (eV/atom, with a standard deviation, p_stable and the decomposition products "
            "at the hull of the known phases), band gap (eV, with p_insulator) and room-temperature ionic "
            "conductivity (log10 S/cm, structure-aware for rows with a CIF, with in_domain) for every row of INPUT. "
            "One output row per input row, in order, input columns kept; rows that cannot be predicted get the "
            "reason in 'error'. Models: --*-model URI, else $SSE_SCREEN_<TASK>_MODEL_URI, else the shipped defaults."
        ),
    )
    pred.add_argument(
        "input",
        help="candidates: .csv/.tsv/.parquet (formula and/or cif_path column), .txt, a folder/.zip of CIFs, or a "
        "Parquet dataset (a folder of part files, or a glob)",
    )
    pred.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .csv, .parquet or .json; no extension: a Parquet dataset (folder)",
    )
    pred.add_argument("--formula-column", default="formula", help="name of the formula column (default: formula)")
    pred.add_argument("--stability-model", help="model URI, e.g. models:/sse-screen-stability@champion or a folder")
    pred.add_argument("--band-gap-model", help="model URI, e.g. models:/sse-screen-band-gap@champion or a folder")
    pred.add_argument(
        "--conductivity-model", help="model URI, e.g. models:/sse-screen-conductivity@champion or a folder"
    )
    pred.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_dataset_arguments(pred)
    pred.set_defaults(handler=_cmd_predict)

    rank = sub.add_parser(
        "rank",
        help="check, predict and rank candidates; write CSV, Parquet, JSON or an HTML report",
        description=(
            "Rank the candidates of INPUT: chemistry checks (parseable, known elements, mobile ion, charge balance "
            "that accepts doped/mixed-valence compositions, element exclusions, optional limits), predictions with "
            "uncertainties, a weighted desirability score and Pareto fronts. One output row per input row, ranked "
            "rows first, each with status (ranked/rejected/invalid) and a reason. Without -o the first 20 rows "
            "(--top N) are printed, rejected and invalid ones with their reason."
        ),
    )
    rank.add_argument(
        "input",
        nargs="?",
        help="candidates: .csv/.tsv/.parquet (formula and/or cif_path column), .txt, a folder/.zip of CIFs, or a "
        "Parquet dataset (a folder of part files, or a glob)",
    )
    rank.add_argument(
        "--generate",
        metavar="PARENTS",
        help="rank the variants of PARENTS (as `sse-screen generate PARENTS`) instead of an input file",
    )
    add_generate_options(rank, prefix="generate-")
    rank.add_argument(
        "-o",
        "--output",
        help="output: .csv, .parquet, .json or .html (a report); no extension: a Parquet dataset (folder)",
    )
    rank.add_argument("--top", type=int, help="keep only the first N rows of the ranked output (printed: 20 if unset)")
    rank.add_argument("--config", help="TOML file with a [rank] table of the options below (flags win)")
    rank.add_argument("--formula-column", default="formula", help="name of the formula column (default: formula)")
    rank.add_argument("--mobile-ion", help="element every candidate must contain (default Li)")
    rank.add_argument("--max-e-hull", type=float, help="reject if predicted E_hull is above this (eV/atom)")
    rank.add_argument("--min-band-gap", type=float, help="reject if predicted band gap is below this (eV)")
    rank.add_argument("--max-cost", type=float, help="reject if raw-element cost is above this (USD/kg)")
    rank.add_argument(
        "--weight", action="append", default=[], metavar="NAME=W",
        help="objective weight: stability, conductivity, band_gap or cost (repeatable; 0 leaves one out)",
    )  # fmt: skip
    rank.add_argument("--mode", choices=["mean", "optimistic", "pessimistic"], help="rank on means or interval bounds")
    rank.add_argument("--order-by", choices=["score", "pareto"], help="order by score (default) or Pareto front")
    rank.add_argument("--no-explain", action="store_true", help="skip the per-row prediction drivers")
    rank.add_argument(
        "--predict-rejected",
        action="store_true",
        help="also predict rows the composition checks reject (by default they are not sent through the models)",
    )
    for task in ("stability", "band-gap", "conductivity"):
        rank.add_argument(f"--{task}-model", help=f"{task} model URI (default: env var, else the shipped model)")
    rank.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_dataset_arguments(rank)
    rank.set_defaults(handler=_cmd_rank)

    gen = sub.add_parser(
        "generate",
        help="propose doped and substituted variants of parent electrolytes, charge compensated",
        description=(
            "Generate candidates from PARENTS (formulas separated by commas, or a .csv/.tsv/.parquet file with a "
            "formula column, or a .txt file with one formula per line): each element replaced by plausible ions "
            "(Hautier et al. 2011 substitution probabilities shipped with pymatgen; common oxidation states; "
            "isovalent and aliovalent, cation and anion sites; Cl/Br/I and O/S solid solutions) on a grid of "
            "fractions, aliovalent moves compensated by the mobile-ion content; then co-doped candidates (two moves "
            "at once, one joint compensation), up to --max-per-parent per parent. Deduplicated by composition across "
            "parents; every candidate passes the charge-balance check. CIF parents (.cif paths or a folder) give "
            "each variant a disordered structure (partial occupancies) written next to OUTPUT in OUTPUT_cifs/, "
            "named in the cif_path column. Rank the output with `sse-screen rank`, or in one step with "
            "`sse-screen rank --generate PARENTS`."
        ),
    )
    gen.add_argument(
        "parents",
        help="parent formulas, comma-separated (Li7La3Zr2O12,Li6PS5Cl), a file of them, .cif paths or a folder of CIFs",
    )
    gen.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .parquet, .csv or .json; a name without a suffix: a Parquet dataset folder written parent "
        "by parent (for large enumerations; `sse-screen rank FOLDER -o RANKED` ranks it on Dask)",
    )
    add_generate_options(gen)
    gen.add_argument("-q", "--quiet", action="store_true", help="no summary")
    gen.set_defaults(handler=cmd_generate)

    srv = sub.add_parser(
        "serve",
        help="run the web page and REST API",
        description=(
            "Serve the page at / and the API under /api (OpenAPI at /openapi.json). Binds 127.0.0.1 unless --host "
            "is given. SSE_SCREEN_API_TOKEN protects /api/* when set."
        ),
    )
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    for task in ("stability", "band-gap", "conductivity"):
        srv.add_argument(f"--{task}-model", help=f"{task} model URI (default: env var, else the shipped model)")
    srv.add_argument("--max-upload-mb", type=float, help="largest accepted upload in MB (default 20)")
    srv.add_argument(
        "--max-running-jobs",
        type=int,
        help="jobs of /api/jobs ranked at once; the rest wait on disk (default 1, or SSE_SCREEN_MAX_RUNNING_JOBS)",
    )
    srv.set_defaults(handler=_cmd_serve)

    train = sub.add_parser(
        "train",
        help="train a model, track it in MLflow and register it (champion or candidate)",
        add_help=False,
    )
    train.set_defaults(handler=_cmd_train)
    return parser


def _cmd_featurize(args: argparse.Namespace) -> int:
    from sse_screen.screening import cli_dataset

    if cli_dataset.wants_dataset(args):
        return cli_dataset.run("featurize", args)
    from sse_screen.screening.featurize import featurize_table
    from sse_screen.screening.progress import progress_reporter
    from sse_screen.screening.table_io import read_candidates, write_table

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


def _cmd_predict(args: argparse.Namespace) -> int:
    from sse_screen.screening import cli_dataset

    if cli_dataset.wants_dataset(args):
        return cli_dataset.run("predict", args)
    from sse_screen.screening.predict import load_models, predict_table
    from sse_screen.screening.progress import progress_reporter
    from sse_screen.screening.table_io import read_candidates, write_table

    table = read_candidates(args.input, formula_column=args.formula_column)
    models = load_models(
        {"stability": args.stability_model, "band_gap": args.band_gap_model, "conductivity": args.conductivity_model}
    )
    with progress_reporter(total=len(table), description="predicting", quiet=args.quiet) as advance:
        result = predict_table(table, models, on_progress=advance)
    write_table(result, args.output)
    if not args.quiet:
        n_bad = int((result["error"] != "").sum())
        sources = "; ".join(f"{task}: {m.source_.describe()}" for task, m in models.items() if m.source_)
        print(f"predicted {len(result) - n_bad} of {len(result)} rows into {args.output} ({sources})", file=sys.stderr)
        if n_bad:
            print(f"{n_bad} rows have an error (see the 'error' column)", file=sys.stderr)
    return 0


def _rank_options(args: argparse.Namespace):
    import tomllib

    from sse_screen.screening.rank import RankOptions

    config: dict = {}
    if args.config:
        try:
            with open(args.config, "rb") as handle:
                config = dict(tomllib.load(handle).get("rank", {}))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"cannot read config {args.config}: {exc}") from None
    weights = dict(config.pop("weights", {}))
    for item in args.weight:
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--weight takes NAME=NUMBER, got {item!r}") from None
    flags = {
        "mobile_ion": args.mobile_ion,
        "max_e_hull_ev_per_atom": args.max_e_hull,
        "min_band_gap_ev": args.min_band_gap,
        "max_cost_usd_per_kg": args.max_cost,
        "mode": args.mode,
        "order_by": args.order_by,
    }
    config |= {k: v for k, v in flags.items() if v is not None}
    if args.no_explain:
        config["explain"] = False
    if args.predict_rejected:
        config["predict_rejected"] = True
    try:
        return RankOptions(weights=weights, **config)
    except TypeError as exc:
        raise UserError(f"unknown option in {args.config}: {exc}") from None


def _cmd_rank(args: argparse.Namespace) -> int:
    from sse_screen.screening.predict import load_models
    from sse_screen.screening.progress import progress_reporter
    from sse_screen.screening.rank import rank_candidates
    from sse_screen.screening.table_io import read_candidates, write_table

    if args.top is not None and args.top < 1:
        raise UserError(f"--top takes a number of rows >= 1, got {args.top}")
    options = _rank_options(args)
    if (args.input is None) == (args.generate is None):
        raise UserError("give either an INPUT file or --generate PARENTS")
    from sse_screen.screening import cli_dataset

    if args.generate is not None:
        table = generate_from_args(args, args.generate, prefix="generate-")
        source = f"variants of {args.generate}"
    elif cli_dataset.wants_dataset(args):
        return cli_dataset.run("rank", args, options=options)
    else:
        table = read_candidates(args.input, formula_column=args.formula_column)
        source = args.input
    models = load_models(
        {"stability": args.stability_model, "band_gap": args.band_gap_model, "conductivity": args.conductivity_model}
    )
    with progress_reporter(total=len(table), description="ranking", quiet=args.quiet) as advance:
        try:
            ranked = rank_candidates(table, models, options=options, on_progress=advance)
        except ValueError as exc:  # bad weights, mode or clashing column names
            raise UserError(str(exc)) from None
    from sse_screen.screening.mobile_ion import mobile_ion_notice  # api helper: the notice, printed once

    if notice := mobile_ion_notice(options.mobile_ion):
        print(f"note: {notice}", file=sys.stderr)
    counts = ranked["status"].value_counts()
    if args.output:
        write_table(ranked if args.top is None else ranked.head(args.top), args.output, source=source)
    else:
        from sse_screen.screening.printed_table import print_ranking

        print_ranking(ranked, top=args.top, source=source)
    if not args.quiet:
        summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ranked", "rejected", "invalid"))
        print(f"{summary}" + (f"; written to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from sse_screen.screening.api import serve
    from sse_screen.screening.settings import Settings

    uris = {"stability": args.stability_model, "band_gap": args.band_gap_model, "conductivity": args.conductivity_model}
    overrides: dict[str, int] = {"max_upload_bytes": int(args.max_upload_mb * 2**20)} if args.max_upload_mb else {}
    if args.max_running_jobs is not None:
        if args.max_running_jobs < 1:
            print("error: --max-running-jobs must be at least 1", file=sys.stderr)
            return 2
        overrides["max_running_jobs"] = args.max_running_jobs
    serve(args.host, args.port, Settings.from_env(model_uris=uris, **overrides))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    if args.train_args[:1] == ["conductivity"]:
        from sse_screen.experiments.train_conductivity import main as train_conductivity

        return train_conductivity(args.train_args[1:])
    from sse_screen.experiments.train_property import main as train_main

    return train_main(args.train_args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # `train` has its own parser (experiments.train_property), options included
        args = argparse.Namespace(command="train", handler=_cmd_train, train_args=argv[1:])
    else:
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
    from sse_screen.models.registry import ModelNotFoundError
    from sse_screen.screening.table_io import InputError

    return isinstance(
        exc, UserError | InputError | ModelNotFoundError | FileNotFoundError | PermissionError | IsADirectoryError
    )


if __name__ == "__main__":
    raise SystemExit(main())
