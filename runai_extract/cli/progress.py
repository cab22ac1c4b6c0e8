"""A progress display for long runs, drawn only when stderr is a terminal.

Airflow task logs and CI output stay clean: off a terminal the display is a no-op and the
pipeline's own log lines tell the story.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from runai_extract.core.times import Window
    from runai_extract.ledger.run_records import Progress, SliceResult


class _RichProgress:
    """Slices as the bar's unit, rows as the running count."""

    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.task: TaskID = bar.add_task("audit", total=None, rows=0)
        self.total_rows = 0
        self._lock = threading.Lock()  # rows() is called from the slices' worker threads

    def plan(self, slices: list[Window]) -> None:
        self.bar.update(self.task, total=len(slices))

    def rows(self, n: int) -> None:
        with self._lock:
            self.total_rows += n
            self.bar.update(self.task, rows=self.total_rows)

    def slice_done(self, result: SliceResult) -> None:
        self.bar.update(self.task, advance=1, description=f"audit {result.window_start:%Y-%m-%d}")


@contextmanager
def terminal_progress() -> Iterator[Progress]:
    """Yield a progress sink: a rich bar at a terminal, silence elsewhere."""
    if not sys.stderr.isatty():
        from runai_extract.ledger.run_records import SilentProgress

        yield SilentProgress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield _RichProgress(bar)
