"""Everything a report page shows for one period, gathered as DataFrames before any HTML is written.

Why separate from the page: the numbers are what a test (and an auditor) checks against the
views, so they are computed once here, in pandas over warehouse.analytics, and the page only
formats them. The verify result is the ledger's own (ledger/verify.py), summarised per stream,
with the problems whose window touches the period picked out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from runai_extract.core.errors import ConfigError
from runai_extract.core.times import parse_time
from runai_extract.ledger.manifests import chain_head
from runai_extract.ledger.verify import Problem, StreamReport, verify_lake
from transforms.storage import Lake
from warehouse.analytics import Ledger, daily_pivot, rank_consumers, resample, whole_days

# Longer periods are charted per ISO week: 90 daily bars no longer read as bars.
DAILY_UP_TO = timedelta(days=62)
TOP_N = 10


@dataclass(frozen=True)
class StreamVerdict:
    """verify's answer for one stream, and how much of it concerns the period."""

    stream: str
    manifests: int
    files_checked: int
    signature: str
    head_seq: int | None
    head_sha256: str | None
    problems: tuple[Problem, ...]
    problems_in_period: int

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ReportData:
    """The period's figures: usage, workloads, audit activity, coverage and verify."""

    start: datetime
    end: datetime
    freq: str
    gpu_by_department: pd.DataFrame  # rows: period start; columns: department names
    top_projects: pd.DataFrame
    top_submitters: pd.DataFrame
    outcomes: pd.DataFrame  # rows: period start; columns: Completed, Failed, Stopped, Preempted
    queue: pd.DataFrame  # per workload type: spans, median, p90, max minutes
    sign_ins: pd.DataFrame  # rows: day; columns: succeeded, failed
    failed_actions: pd.DataFrame  # rows: day; columns: status classes
    privileged: pd.DataFrame  # one row per change
    entity_changes: pd.DataFrame  # one row per change
    coverage: pd.DataFrame  # one row per UTC hour: period_start, status, rows
    verify: tuple[StreamVerdict, ...]

    @property
    def coverage_hours(self) -> dict[str, int]:
        counts = self.coverage["status"].value_counts()
        return {str(status): int(n) for status, n in counts.items()}

    @property
    def complete(self) -> bool:
        """Every hour sealed and every chain verified: the page shows everything, unaltered."""
        sealed = bool((self.coverage["status"] == "sealed").all())
        return sealed and all(v.ok for v in self.verify)


def gather(
    ledger: Ledger, lake: Lake, start: datetime, end: datetime, key: bytes | None = None
) -> ReportData:
    """Query every figure of the page for the whole UTC days [start, end).

    ``ledger`` should be single-threaded (``Ledger(path, single_thread=True)``): sums of floats
    from DuckDB's parallel aggregation can differ in the last bit from run to run, and the same
    data must give the same page.
    """
    lo, hi = whole_days(start, end)
    freq = "day" if hi - lo <= DAILY_UP_TO else "week"
    usage = ledger.period_query("gpu_hours_daily", lo, hi)  # one read for the chart and both rankings
    return ReportData(
        start=lo,
        end=hi,
        freq=freq,
        gpu_by_department=resample(daily_pivot(usage, "department_name", lo, hi), freq),
        top_projects=rank_consumers(usage, "project", TOP_N),
        top_submitters=rank_consumers(usage, "submitter", TOP_N),
        outcomes=ledger.workload_outcomes(lo, hi, freq=freq),
        queue=ledger.queue_times(lo, hi, by="workload_type"),
        sign_ins=ledger.sign_ins_per_day(lo, hi),
        failed_actions=ledger.failed_actions_per_day(lo, hi),
        privileged=ledger.privileged_changes(lo, hi),
        entity_changes=ledger.entity_changes(lo, hi),
        coverage=ledger.coverage(lo, hi),
        verify=verdicts(lake, lo, hi, key),
    )


def verdicts(lake: Lake, start: datetime, end: datetime, key: bytes | None) -> tuple[StreamVerdict, ...]:
    """verify over every stream; a problem without a window (a broken chain) concerns every period."""
    out = []
    for report in verify_lake(lake, None, key):
        out.append(_verdict(lake, report, start, end))
    return tuple(out)


def _verdict(lake: Lake, report: StreamReport, start: datetime, end: datetime) -> StreamVerdict:
    head = report.head or chain_head(lake, report.stream)
    touching = sum(1 for p in report.problems if _touches(p.window, start, end))
    return StreamVerdict(
        stream=report.stream,
        manifests=report.manifests,
        # Files vouched for, re-hashed now or unchanged since a verified checkpoint: the same figure
        # whichever verify (full or incremental) drew the page, so a page re-renders byte for byte.
        files_checked=report.files_checked + report.files_unchanged,
        signature=report.signature,
        head_seq=head.seq if head else None,
        head_sha256=head.sha256 if head else None,
        problems=tuple(report.problems),
        problems_in_period=touching,
    )


def _touches(window: str, start: datetime, end: datetime) -> bool:
    lo, sep, hi = window.partition(" .. ")
    if not sep:
        return True
    try:
        return parse_time(lo) < end and parse_time(hi) > start
    except ConfigError:
        return True
