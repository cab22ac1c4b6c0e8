"""Is an export period completely ingested? The answer an export bundle carries in its manifest.

Why: a bundle handed to an auditor must say whether it holds everything for its period. The
warehouse's ``coverage`` view grades every UTC hour (sealed, provisional, pending, mismatch,
missing); a period is complete only when every hour overlapping it is ``sealed`` (covered by
stored windows and confirmed by a recheck). Hours the view does not list lie outside everything
ever stored and count as missing. What "covered" means is written once, in the warehouse SQL
(covered_spans, read by coverage); this module only walks the hours of the period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

import warehouse
from runai_extract.core.errors import StorageError
from runai_extract.core.times import format_utc

EXPORT_SQL_DIR = Path(warehouse.__file__).resolve().parent / "exports"
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Issue:
    """A stretch of the period that is not sealed, and why."""

    start: datetime
    end: datetime
    status: str

    def to_dict(self) -> dict[str, str]:
        return {"start": format_utc(self.start), "end": format_utc(self.end), "status": self.status}


@dataclass(frozen=True)
class PeriodCoverage:
    """Coverage of one period: complete or not, hours per status, and the stretches that are not sealed."""

    source: str
    issues: list[Issue]
    hours: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.issues

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": "complete" if self.complete else "incomplete",
            "hours": dict(sorted(self.hours.items())),
            "issues": [i.to_dict() for i in self.issues],
        }

    def summary(self) -> str:
        if self.complete:
            return "complete: every hour of the period is sealed"
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.hours.items()) if s != "sealed")
        return f"INCOMPLETE ({counts or 'not sealed'}); see coverage.issues in manifest.json"


def sql_text(name: str) -> str:
    """The text of an export SQL file (warehouse/exports/<name>.sql)."""
    return (EXPORT_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def period_coverage(
    con: duckdb.DuckDBPyConnection, stream: str, start: datetime, end: datetime
) -> PeriodCoverage:
    """Grade [start, end) from the coverage view: the one place the gap/overlap rule is written.

    A warehouse without that view is an error, not a second, weaker rule: callers build the views
    first (export_compliance calls ensure_views), so its absence means a broken warehouse.
    """
    if not _has_view(con, "coverage"):
        raise StorageError("the warehouse has no coverage view; run `runai-ledger build-views`")
    params = {"stream": stream, "start": start, "end": end}
    rows = con.sql(sql_text("_coverage"), params=params).fetchall()
    graded = {_utc(r[0]): str(r[2]) for r in rows}
    return _from_hours(graded, start, end)


def _from_hours(graded: dict[datetime, str], start: datetime, end: datetime) -> PeriodCoverage:
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours: dict[str, int] = {}
    stretches: list[Issue] = []
    while hour < end:
        status = graded.get(hour, "missing")
        hours[status] = hours.get(status, 0) + 1
        if status != "sealed":
            _extend(stretches, Issue(max(hour, start), min(hour + _HOUR, end), status))
        hour += _HOUR
    return PeriodCoverage("coverage view", stretches, hours)


def _extend(stretches: list[Issue], issue: Issue) -> None:
    """Append, merging with the previous stretch when it touches it with the same status."""
    if stretches and stretches[-1].status == issue.status and stretches[-1].end >= issue.start:
        stretches[-1] = Issue(stretches[-1].start, max(stretches[-1].end, issue.end), issue.status)
    else:
        stretches.append(issue)


def _has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.sql("select count(*) from duckdb_views() where view_name = ?", params=[name]).fetchall()
    return bool(found and found[0][0])


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamp, got {value!r}")
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
