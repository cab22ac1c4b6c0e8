"""A stuck watermark, said out loud: runs that keep storing only part of what changed.

Why: a workloads run that cannot fetch one workload's history stores everything else, records
itself ``partial`` and leaves the watermark where it was, so that workload is tried again next
run. That is right once; when it happens run after run, the CLI exited 0 and the Airflow task
was green while the watermark stood still, until the retention horizon took the unsynced
records. So a partial run becomes a failure once it is the ``Settings.stall_runs``-th partial run
in a row, or once the watermark it holds back is older than ``Settings.stall_after``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from runai_extract.core.times import format_utc
from runai_extract.ledger.run_records import PastRun, recent_runs
from runai_extract.ledger.watermarks import StateStore
from transforms.storage import Lake


@dataclass(frozen=True)
class Stall:
    """A stream whose last ``partial_runs`` syncs were all partial, with the watermark they hold back."""

    stream: str
    partial_runs: int
    watermark: datetime | None
    now: datetime
    last_error: str | None

    def __str__(self) -> str:
        held = (
            "no watermark yet"
            if self.watermark is None
            else (f"watermark {format_utc(self.watermark)}, {_days(self.now - self.watermark)} old")
        )
        why = f": {self.last_error}" if self.last_error else ""
        return f"{self.stream}: {self.partial_runs} partial run(s) in a row ({held}){why}"


def partial_streak(runs: list[PastRun]) -> int:
    """How many of the newest syncs (backfills do not move the watermark) were partial, in a row."""
    streak = 0
    for run in runs:
        if run.mode != "sync":
            continue
        if run.status != "partial":
            break
        streak += 1
    return streak


def find_stall(
    lake: Lake,
    stream: str,
    *,
    stall_runs: int,
    stall_after: timedelta,
    now: datetime,
    runs: list[PastRun] | None = None,
) -> Stall | None:
    """The stall of ``stream`` if its newest syncs were partial for too many runs or too long.

    ``runs``: the stream's newest runs when the caller already read them (at least
    :func:`runs_needed` of them), so ``status`` reads the run records once for every stream.
    """
    if runs is None:
        runs = recent_runs(lake, stream, runs_needed(stall_runs))
    streak = partial_streak(runs)
    if streak == 0:
        return None
    state = StateStore(lake).read(stream)
    watermark = state.watermark if state else None
    too_old = watermark is not None and now - watermark > stall_after
    if streak < stall_runs and not too_old:
        return None
    newest = next(run for run in runs if run.mode == "sync")
    return Stall(stream, streak, watermark, now, newest.error)


def runs_needed(stall_runs: int) -> int:
    """How many newest runs decide a stall: the streak, and a few backfills that may sit between."""
    return stall_runs + 5


def _days(length: timedelta) -> str:
    hours = length / timedelta(hours=1)
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
