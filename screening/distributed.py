"""Run a Parquet dataset on ``dask.distributed``: where each partition of :mod:`screening.partitioned` is computed.

* ``client=`` (Python) or ``--scheduler ADDRESS`` (CLI): an existing cluster; ``--workers N``: a ``LocalCluster`` of
  N worker processes (one thread each); neither: a small input runs in this process, an input of more than
  :data:`AUTO_CLUSTER_ROWS` rows on a ``LocalCluster`` sized to the machine (one worker per core). One line on
  stderr says which, with the dashboard link.
* Each partition is one Dask task (``client.submit`` of the same pure function :class:`SerialRunner` calls), with
  :data:`TASK_RETRIES` retries; a worker that dies mid-run has its tasks rerun elsewhere by the scheduler, and parts
  are written atomically, so the output holds each input row once.
* Models reach each worker once: a :class:`ModelsPlugin` loads them when the worker starts (and when a replacement
  worker joins); tasks carry only the small :class:`screening.partitioned.ModelSpec`. The reference phases and
  element tables are loaded with the models and cached per process.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sse_screen.screening import parquet_dataset as pds
from sse_screen.screening.partitioned import (
    EXACT_FRONTS,
    ModelSpec,
    RankResult,
    SerialRunner,
    map_pieces,
    models_of,
    rank_pieces,
)

#: Above this many input rows, a run without --workers/--scheduler starts a local cluster.
AUTO_CLUSTER_ROWS = 1_000_000
#: Extra tries of a partition whose task raised (a worker that died does not count: the scheduler reruns it).
TASK_RETRIES = 2
TASKS = ("stability", "band_gap", "conductivity")
#: Seconds to wait for ``--scheduler ADDRESS`` to answer.
CONNECT_TIMEOUT_S = 10


def model_spec(uris: Mapping[str, str | None] | None = None) -> ModelSpec:
    """The models to load on every worker: explicit URI, else this process's env var, else the shipped default."""
    from sse_screen.models.registry import model_uri_env_var

    uris = dict(uris or {})
    return ModelSpec(tuple((t, uris.get(t) or os.environ.get(model_uri_env_var(t)) or None) for t in TASKS))


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - dask is a dependency; keeps `--help` working on a broken install
    WorkerPlugin = object  # type: ignore[assignment,misc]


class ModelsPlugin(WorkerPlugin):
    """Loads the models of a :class:`ModelSpec` into each worker process once, when the worker starts."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.name = f"sse-screen-models-{abs(hash(spec)):x}"

    def setup(self, worker: Any) -> None:
        models_of(self.spec)


@dataclass
class DaskRunner:
    """Maps a function over the partitions as Dask tasks on ``client``; a progress bar on stderr."""

    client: Any
    quiet: bool = False

    def map(self, fn: Callable[..., Any], args: list[tuple], *, rows: Sequence[int], description: str) -> list:
        from distributed import as_completed

        from sse_screen.screening.progress import progress_reporter

        futures = [self.client.submit(fn, *a, pure=False, retries=TASK_RETRIES) for a in args]
        where = {f.key: n for f, n in zip(futures, rows, strict=True)}
        with progress_reporter(total=int(sum(rows)), description=description, quiet=self.quiet) as advance:
            for future in as_completed(futures):
                advance(where[future.key])
        return self.client.gather(futures)


@contextmanager
def dask_client(
    *, scheduler: str | None = None, workers: int | None = None, n_rows: int = 0, say: Callable[[str], None]
) -> Iterator[Any]:
    """A client for ``--scheduler``/``--workers``, an automatic local cluster for large inputs, or None (in-process).

    Raises:
        ValueError: ``workers`` below 1, or both given.
    """
    if scheduler and workers:
        raise ValueError("give either --scheduler or --workers, not both")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers takes a number of worker processes >= 1, got {workers}")
    if not scheduler and workers is None and n_rows <= AUTO_CLUSTER_ROWS:
        say(f"running in this process ({n_rows:,} rows; --workers N or --scheduler ADDRESS to use Dask)")
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            n = len(client.scheduler_info().get("workers", {}))
            say(f"running on the Dask cluster at {scheduler} ({n} workers); dashboard: {client.dashboard_link}")
            yield client
        return
    size = workers or os.cpu_count() or 1
    why = "" if workers else f" ({n_rows:,} rows > {AUTO_CLUSTER_ROWS:,}; --workers N to choose)"
    with (
        LocalCluster(n_workers=size, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        say(f"running on a local Dask cluster of {size} worker processes{why}; dashboard: {client.dashboard_link}")
        yield client


def _runner(client: Any, models: ModelSpec | dict | None, *, quiet: bool) -> Any:
    if client is None:
        return SerialRunner(quiet=quiet)
    if isinstance(models, ModelSpec):
        client.register_plugin(ModelsPlugin(models))
    return DaskRunner(client, quiet=quiet)


def _pieces(source: Any, *, rows_per_piece: int, client: Any, workdir: Path) -> list[pds.Piece]:
    """Pieces of a dataset path, glob or Parquet file, or of a ``dask.dataframe`` (written to ``workdir`` first)."""
    if hasattr(source, "to_parquet") and hasattr(source, "npartitions"):  # a dask.dataframe
        path = workdir / "input"
        if client is not None:
            source.to_parquet(path, write_index=False, compute_kwargs={"scheduler": client})
        else:
            source.to_parquet(path, write_index=False)
        source = path
    files = pds.dataset_files(source) or [Path(source)]
    return pds.plan_pieces(files, rows_per_piece=rows_per_piece)


def rank_dataset(
    source: Any,
    output: str | Path,
    *,
    options: Any = None,
    models: Mapping[str, Any] | ModelSpec | None = None,
    client: Any = None,
    rows_per_partition: int = pds.DEFAULT_PIECE_ROWS,
    formula_column: str = "formula",
    exact_fronts: int = EXACT_FRONTS,
    quiet: bool = True,
) -> RankResult:
    """Rank a Parquet dataset (folder, glob, file) or a ``dask.dataframe`` into the Parquet dataset ``output``.

    Args:
        source: Candidates: a Parquet dataset or a ``dask.dataframe.DataFrame`` with a formula column.
        output: Folder of the ranked dataset (created; earlier ``part-*.parquet`` in it are replaced).
        options: :class:`screening.rank.RankOptions`.
        models: A :class:`ModelSpec` (each worker loads it once), loaded models (in-process only: they do not
            pickle), or None for the default models (env vars, else shipped).
        client: A ``dask.distributed.Client``; None runs the partitions one by one in this process.
        rows_per_partition: Rows per partition (task).
        formula_column: Name of the formula column.
        exact_fronts: Pareto fronts computed exactly (deeper rows get ``exact_fronts + 1``).
        quiet: No progress bar.

    Returns:
        Status counts and the output folder; :func:`screening.partitioned.read_ranking` reads it in rank order.
    """
    from sse_screen.screening.rank import RankOptions

    options = options or RankOptions()
    spec = models if models is not None and not isinstance(models, Mapping) else models or model_spec()
    if client is not None and not isinstance(spec, ModelSpec):
        raise ValueError("on a Dask cluster give models as a ModelSpec (model URIs): loaded models do not pickle")
    with tempfile.TemporaryDirectory(prefix="sse-screen-", dir=Path(output).parent) as workdir:
        pieces = _pieces(source, rows_per_piece=rows_per_partition, client=client, workdir=Path(workdir))
        runner = _runner(client, spec, quiet=quiet)
        models_arg = spec if client is not None or isinstance(spec, dict) else models_of(spec)
        return rank_pieces(
            pieces,
            output,
            models_arg,
            options=options,
            runner=runner,
            formula_column=formula_column,
            exact_fronts=exact_fronts,
        )


def map_dataset(
    kind: str,
    source: Any,
    output: str | Path,
    *,
    models: Mapping[str, Any] | ModelSpec | None = None,
    preset: str = "electrolyte",
    client: Any = None,
    rows_per_partition: int = pds.DEFAULT_PIECE_ROWS,
    formula_column: str = "formula",
    quiet: bool = True,
) -> tuple[Path, int]:
    """Predict (``kind="predict"``) or featurize (``"featurize"``) a dataset into the dataset ``output``.

    Returns:
        The output folder and the number of rows with an error.
    """
    spec: Any = None
    if kind == "predict":
        spec = models if models is not None and not isinstance(models, Mapping) else models or model_spec()
        if client is None and isinstance(spec, ModelSpec):
            spec = models_of(spec)
    with tempfile.TemporaryDirectory(prefix="sse-screen-", dir=Path(output).parent) as workdir:
        pieces = _pieces(source, rows_per_piece=rows_per_partition, client=client, workdir=Path(workdir))
        runner = _runner(client, spec, quiet=quiet)
        return map_pieces(
            kind, pieces, output, runner=runner, models=spec, preset=preset, formula_column=formula_column
        )


def count_rows(source: str | Path, *, rows_per_piece: int = pds.DEFAULT_PIECE_ROWS) -> int:
    """Rows of a Parquet dataset or file (from the footers)."""
    files = pds.dataset_files(source) or [Path(source)]
    return sum(p.n_rows for p in pds.plan_pieces(files, rows_per_piece=rows_per_piece))


def say_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
