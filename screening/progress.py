"""A progress bar on stderr for long work, silent when stderr is not a terminal or when asked to be quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Below this many rows the work takes well under a second: a bar would only flicker.
MIN_ROWS_FOR_BAR = 20_000


@contextmanager
def progress_reporter(*, total: int, description: str, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """Yield a callback ``advance(n_rows_done)`` that drives a rich progress bar on stderr.

    The bar is shown only for long inputs, when stderr is a terminal and ``quiet`` is false; otherwise the
    callback does nothing, so pure functions can always accept it.
    """
    if quiet or total < MIN_ROWS_FOR_BAR or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
