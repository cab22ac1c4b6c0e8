"""What the CLI prints after a run and for ``status``: short, plain, readable by a newcomer.

Status reads the lake directly (state files and run records through DuckDB with bound
parameters), so it works even before the warehouse views exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import duckdb
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runai_extract.core.settings import Settings
from runai_extract.core.times import format_utc
from runai_extract.ledger.coverage import coverage_summary
from runai_extract.ledger.retention import days_left, retention_alerts, stream_retention
from runai_extract.ledger.run_records import SyncSummary, recent_runs_by_stream
from runai_extract.ledger.stall import find_stall, runs_needed
from runai_extract.ledger.watermarks import StateStore
from transforms.catalog import INGEST_RUNS_TABLE, QUARANTINE_TABLE
from transforms.storage import Lake
from transforms.tables import Tables, TableSpec
from warehouse.connection import lake_connection

if TYPE_CHECKING:
    # A type only: importing the recheck pulls in the whole audit pipeline (httpx, the writer),
    # which `status` never uses and would pay for at every start (docs/performance.md).
    from runai_extract.audit.recheck import RecheckSummary

# Every stream with a watermark. The usage streams' watermark is the server time their last
# committed run read up to; ``metrics`` (workloads' GPU metrics) and ``quotas`` (org units' quota
# and allocation series) expire on the control plane, so a stalled one loses samples for good.
STREAMS = ("audit", "org", "workloads", "metrics", "quotas")


def print_summary(summary: SyncSummary, console: Console | None = None) -> None:
    out = console or wide_console()
    data = summary.to_dict()
    if not summary.slices:
        out.print(f"{summary.stream} {summary.mode}: nothing to do (watermark {data['watermark_after']})")
        return
    out.print(
        f"{summary.stream} {summary.mode} {summary.run_id}: {data['rows_new']:,} new rows "
        f"from {data['rows_received']:,} received in {data['slices']} window(s), "
        f"{data['duplicates_dropped']:,} duplicates dropped, {data['quarantined']:,} quarantined, "
        f"{data['requests']:,} requests ({data['retries']} retries, {data['throttled_429']} throttled), "
        f"{data['seconds']:.1f} s"
    )
    out.print(f"watermark: {data['watermark_before']} -> {data['watermark_after']}")
    if data["mismatched_slices"]:
        out.print(
            f"[yellow]{data['mismatched_slices']} window(s) where the API total disagreed; see ingest_runs[/]"
        )
    if data["drift"]:
        seen = ", ".join(f"{name} ({count})" for name, count in data["drift"].items())
        # Drift names come from API data: escape them so a '[' can never become rich markup.
        out.print(f"[yellow]schema drift (stored, but new to us): {escape(seen)}[/]", highlight=False)
    if data["quarantined"]:
        out.print("[yellow]some records were quarantined; see the quarantine view for reasons[/]")
    for alert in summary.alerts:
        out.print(f"[bold red]ALERT retention lag: {escape(alert)}[/]", highlight=False)
    for notice in data["deprecations"]:
        out.print(f"[yellow]DEPRECATED API: {escape(notice)}[/]", highlight=False)


def print_recheck(summary: RecheckSummary, console: Console | None = None) -> None:
    """The run summary, then what the recheck found: late rows stored, ids the API no longer returns."""
    out = console or wide_console()
    print_summary(summary, out)
    if not summary.reconciliations:
        return
    sealed = sum(1 for r in summary.reconciliations if r.sealed)
    out.print(
        f"recheck: {summary.late_rows:,} late row(s) found and stored, "
        f"{summary.missing_from_api:,} stored id(s) missing from the API, "
        f"{sealed} of {len(summary.reconciliations)} window(s) sealed; see the reconciliation view"
    )
    # Ids come from API data: escape them so a '[' can never become rich markup.
    for kind, label in (("late", "late ids"), ("missing", "ids missing from the API")):
        ids = summary.sample_ids(kind)
        if ids:
            out.print(f"[yellow]{label} (sample): {escape(', '.join(ids))}[/]", highlight=False)


def print_status(settings: Settings, console: Console | None = None) -> None:
    out = console or wide_console()
    lake = Lake(settings.lake_uri)
    store = StateStore(lake)
    now = datetime.now(UTC)
    out.print(f"ledger home: {settings.home}\nlake: {lake.location('')}")
    for stream in STREAMS:
        state = store.read(stream)
        if state is None:
            out.print(f"{stream}: never synced")
            continue
        lag = now - state.watermark
        out.print(
            f"{stream}: watermark {format_utc(state.watermark)} ({_human(lag.total_seconds())} behind now), "
            f"last successful run {state.run_id}{_when(state.updated_at, now)}"
            f"{_retention_note(settings, stream, state.watermark, now)}"
        )
    for alert in retention_alerts(lake, settings.retention, settings.retention_margin, now=now):
        out.print(f"[bold red]ALERT retention lag: {escape(str(alert))}[/]", highlight=False)
    recent = recent_runs_by_stream(lake, STREAMS, runs_needed(settings.stall_runs))
    for stream in STREAMS:
        stall = find_stall(
            lake,
            stream,
            stall_runs=settings.stall_runs,
            stall_after=settings.stall_after,
            now=now,
            runs=recent[stream],
        )
        if stall is not None:
            out.print(f"[bold red]ALERT stalled: {escape(str(stall))}[/]", highlight=False)
    coverage = coverage_summary(lake)  # a StorageError here means status could not be computed
    for line in coverage.lines():
        out.print(escape(line), highlight=False)
    run_files = Tables(lake).live_locations(INGEST_RUNS_TABLE)
    features, notices = _api_of_last_audit_run(lake, run_files)
    if features:
        out.print(f"audit API in use: {escape(features)}", highlight=False)
    for notice in notices:
        out.print(f"[yellow]DEPRECATED API: {escape(notice)}[/]", highlight=False)
    runs = _last_runs(lake, run_files)
    if runs is not None:
        out.print(runs)
    quarantined = _count(lake, QUARANTINE_TABLE)
    if quarantined:
        out.print(f"[yellow]quarantined records: {quarantined}[/]")


def _when(moment: datetime | None, now: datetime) -> str:
    """' (N h ago)': when the last successful run committed, which a server-time watermark hides."""
    return "" if moment is None else f" ({_human((now - moment).total_seconds())} ago)"


def _retention_note(settings: Settings, stream: str, watermark: datetime, now: datetime) -> str:
    """', N days before unsynced records leave the API' for the streams the API keeps for a while."""
    kept = stream_retention(settings.retention).get(stream)
    if kept is None:
        return ""
    return f"; {days_left(watermark, kept, now):.1f} days before unsynced records leave the API"


def _last_runs(lake: Lake, files: list[str], limit: int = 10) -> Table | None:
    if not files:
        return None
    con = lake_connection(lake)
    rows = con.sql(
        "SELECT run_id, stream, mode, min(window_start), max(window_end), count(*), sum(rows_new), "
        "sum(duplicates_dropped), sum(quarantined), string_agg(DISTINCT status, ','), max(finished_at) "
        "FROM read_parquet(?, union_by_name = true) GROUP BY run_id, stream, mode "
        "ORDER BY max(finished_at) DESC LIMIT ?",
        params=[files, limit],
    ).fetchall()
    table = Table(title="last runs")
    for col in (
        "run",
        "stream",
        "mode",
        "from",
        "to",
        "windows",
        "new rows",
        "dupes",
        "quarantined",
        "status",
    ):
        table.add_column(col)
    for run_id, stream, mode, start, end, windows, written, dupes, quar, status, _ in rows:
        table.add_row(
            run_id,
            stream,
            mode,
            f"{start:%Y-%m-%d %H:%M}",
            f"{end:%Y-%m-%d %H:%M}",
            str(windows),
            f"{written:,}",
            f"{dupes:,}",
            str(quar),
            status,
        )
    return table


def _api_of_last_audit_run(lake: Lake, files: list[str]) -> tuple[str | None, list[str]]:
    """What the latest audit run found the API to offer, and the deprecations it saw."""
    if not files:
        return None, []
    con = lake_connection(lake)
    try:
        rows = con.sql(
            "SELECT api_features, deprecations FROM read_parquet(?, union_by_name = true) "
            "WHERE stream = 'audit' ORDER BY finished_at DESC LIMIT 1",
            params=[files],
        ).fetchall()
    except duckdb.BinderException:  # every record predates the columns
        return None, []
    if not rows:
        return None, []
    features, notices = rows[0]
    return features, list(notices or [])


def _count(lake: Lake, spec: TableSpec) -> int:
    return sum(int(f.rows or 0) for f in Tables(lake).live_files(spec))


def wide_console() -> Console:
    """A console that does not fold lines at 80 columns when writing to a pipe or a log."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 200)
    return console


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
