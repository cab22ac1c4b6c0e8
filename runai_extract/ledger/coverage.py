"""How complete the ledger is, in a few lines: gaps and hours by coverage status, for ``status``.

Why it runs the warehouse SQL in memory: ``status`` must work before anyone built warehouse.duckdb
and must never take its write lock, yet the answer has to be exactly what the ``coverage`` and
``ingest_gaps`` views say (one definition of "sealed" or "missing", not two). So it renders the
same statements build.py would apply (warehouse.build.plan_build) into a throw-away in-memory
DuckDB connection and asks those two views. Only those two views and what they read are planned,
so the cost does not follow the number of views or of tables the ledger has.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from runai_extract.core.errors import StorageError
from transforms.storage import Lake
from warehouse.build import execute_plan, plan_build
from warehouse.connection import lake_connection

# Worst first; the order status prints the counts in.
STATUSES = ("missing", "mismatch", "pending", "provisional", "sealed")


@dataclass(frozen=True)
class Gap:
    """A stretch between stored windows that no committed window covers."""

    stream: str
    start: datetime
    end: datetime

    def __str__(self) -> str:
        same_day = self.start.date() == self.end.date()
        end = f"{self.end:%H:%M}" if same_day else f"{self.end:%Y-%m-%d %H:%M}"
        return f"{self.start:%Y-%m-%d %H:%M}..{end} ({_span(self.end - self.start)})"


@dataclass
class CoverageSummary:
    """Gaps and hours per coverage status, per stream."""

    gaps: list[Gap] = field(default_factory=list)
    hours: dict[str, Counter[str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Plain sentences: '<stream>: 2 gaps: ...' and '<stream> coverage: 5 h sealed, ...'."""
        out: list[str] = []
        for stream in sorted(self.hours):
            gaps = [g for g in self.gaps if g.stream == stream]
            if gaps:
                listed = ", ".join(str(g) for g in gaps)
                out.append(f"{stream}: {len(gaps)} gap{'s' if len(gaps) != 1 else ''}: {listed}")
            else:
                out.append(f"{stream}: no gaps")
            counts = self.hours[stream]
            parts = [f"{counts[s]} h {s}" for s in STATUSES if counts[s]]
            out.append(f"{stream} coverage (UTC hours): {', '.join(parts) or 'nothing ingested yet'}")
        return out


def coverage_summary(lake: Lake) -> CoverageSummary:
    """Ask the coverage and ingest_gaps views, built in memory over ``lake``."""
    plan = plan_build(lake, only=("coverage_hours", "ingest_gaps"))
    con = lake_connection(lake)
    try:
        try:
            execute_plan(con, plan)
            counts = con.execute(
                "SELECT stream, status, count(*) FROM coverage_hours GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            rows = con.execute("SELECT stream, gap_start, gap_end FROM ingest_gaps ORDER BY ALL").fetchall()
        except (duckdb.Error, StorageError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageError(f"cannot compute coverage: {first}; run `runai-ledger verify`") from exc
        summary = CoverageSummary()
        for stream, status, hours in counts:
            summary.hours.setdefault(str(stream), Counter())[str(status)] = int(hours)
        summary.gaps = [Gap(str(stream), start, end) for stream, start, end in rows]
        return summary
    finally:
        con.close()


def _span(length: timedelta) -> str:
    hours = length / timedelta(hours=1)
    if hours < 1:
        return f"{length / timedelta(minutes=1):.0f} min"
    if hours < 48:
        return f"{hours:g} h" if hours == int(hours) else f"{hours:.1f} h"
    return f"{length / timedelta(days=1):.1f} days"
