"""Incremental sync of workloads: what changed since the last run, with its history and events.

The workload API has no ``updatedAt`` filter (README §11.4), so a run asks for the changes it
can name with server-side filters, each since the stored watermark minus the overlap:

    active         phase not Completed/Failed/Stopped: every workload that may still change
                   allocation or running pods (snapshotted each run)
    created        createdAt >= since
    phase_changed  phaseUpdatedAt >= since (finished ones included)
    deleted        deleted=true, deletedAt >= since (deleted ones vanish from the default list)

The first run reads the whole list and every deleted workload the API still has. Requests per
run therefore grow with active workloads and changes, not with the tenant's history.

A workload is *changed* when its row_hash (state fields, not ticking counters) differs from the
latest stored row. Only changed workloads get a snapshot row, and only they have their history
and events fetched. Order of writes: history, events, snapshots, quarantine, run record, then
the watermark, each file atomic; a workload whose details could not be fetched gets no snapshot
(so the next run sees it as changed again) and holds the watermark back.

The watermark is the server's own time (its ``Date`` header) when the listing finished, so our
clock's skew cannot open a gap; the same time is the rows' ``observed_at``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from runai_extract.api.client import RunaiClient
from runai_extract.api.endpoints import WORKLOADS
from runai_extract.core.settings import Settings, require_api
from runai_extract.core.times import format_api_time, format_utc
from runai_extract.ledger.manifests import manifest_pending, record_usage_run
from runai_extract.ledger.run_records import SliceResult, add_request_stats, new_run_id, record_run
from runai_extract.ledger.watermarks import StateStore, commit_app
from runai_extract.usage.workload_details import DetailsBatch, fetch_details
from runai_extract.usage.workload_pages import QueryResult, WorkloadQuery, run_query
from transforms.audit import QuarantinedRecord
from transforms.catalog import (
    QUARANTINE_TABLE,
    WORKLOAD_EVENTS_TABLE,
    WORKLOAD_HISTORY_TABLE,
    WORKLOAD_SNAPSHOTS_TABLE,
)
from transforms.records import Normalised, to_table
from transforms.storage import Lake
from transforms.tables import Commit, Tables, TableSpec
from transforms.versions import latest_versions, stored_keys
from transforms.workloads import normalise_events, normalise_history, normalise_workloads
from transforms.writer import quarantine_table

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

WORKLOADS_STREAM = "workloads"
TERMINAL_PHASES = ("Completed", "Failed", "Stopped")


@dataclass
class WorkloadSyncSummary:
    """A JSON-able account of one workloads run (what the CLI prints and Airflow keeps in XCom)."""

    run_id: str
    stream: str = WORKLOADS_STREAM
    status: str = "running"
    since: datetime | None = None
    created_between: tuple[datetime, datetime] | None = None
    observed_at: datetime | None = None
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    workloads_seen: int = 0
    changed: int = 0
    snapshots_written: int = 0
    history_rows: int = 0
    event_rows: int = 0
    quarantined: int = 0
    details_failed: int = 0
    failed_workloads: list[str] = field(default_factory=list)  # ids whose history/events failed
    gone: int = 0
    requests: int = 0  # every HTTP request, token requests included
    token_requests: int = 0
    retries: int = 0
    files: list[str] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("commits")  # table versions are in the manifest; the summary stays small and JSON-able
        for key in ("since", "observed_at", "watermark_before", "watermark_after"):
            value = getattr(self, key)
            out[key] = format_utc(value) if value else None
        if self.created_between:
            out["created_between"] = [format_utc(moment) for moment in self.created_between]
        return out


def plan_queries(
    since: datetime | None, created_between: tuple[datetime, datetime] | None = None
) -> list[WorkloadQuery]:
    """The selections one run pages: everything on the first run, changes since ``since`` after,
    or (a backfill) every workload created in ``created_between``, deleted or not."""
    if created_between is not None:
        window = (
            f"createdAt>={format_api_time(created_between[0])}",
            f"createdAt<={format_api_time(created_between[1])}",
        )
        return [
            WorkloadQuery("created_in_range", window),
            WorkloadQuery("deleted_in_range", window, deleted=True),
        ]
    if since is None:
        return [WorkloadQuery("all"), WorkloadQuery("deleted", deleted=True)]
    stamp = format_api_time(since)
    return [
        WorkloadQuery("active", tuple(f"phase!={phase}" for phase in TERMINAL_PHASES)),
        WorkloadQuery("created", (f"createdAt>={stamp}",)),
        WorkloadQuery("phase_changed", (f"phaseUpdatedAt>={stamp}",)),
        WorkloadQuery("deleted", (f"deletedAt>={stamp}",), deleted=True),
    ]


def sync_workloads(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    created_between: tuple[datetime, datetime] | None = None,
) -> WorkloadSyncSummary:
    """Store every workload change since the watermark.

    ``created_between`` makes it a backfill: every workload created in that range is read again
    (deleted ones too) and whatever the lake lacks is stored; the watermark does not move.
    """
    lake = Lake(settings.lake_uri)
    store = StateStore(lake)
    started, started_at = time.monotonic(), datetime.now(UTC)
    summary = WorkloadSyncSummary(new_run_id())
    # No lock: a concurrent run of the stream conflicts on its commit app id and fails cleanly.
    state = store.read(WORKLOADS_STREAM)
    summary.watermark_before = summary.watermark_after = state.watermark if state else None
    summary.since = None if state is None else state.watermark - settings.overlap
    summary.created_between = created_between
    record = SliceResult(started_at, started_at)
    writer = _Writer(Tables(lake), summary.run_id)
    with RunaiClient(require_api(settings), transport=transport) as client:
        before = client.stats.snapshot()
        try:
            client.connect()  # first contact before the detail pool starts its threads
            queries = plan_queries(summary.since, summary.created_between)
            listing = _list(client, queries, settings.page_size)
            summary.observed_at = listing.observed_at  # the run record's window, even if a step fails
            outcome = _store_changes(settings, lake, client, writer, listing, summary)
            _apply(outcome, summary, record)
        except Exception as exc:
            summary.status, summary.error = "failed", str(exc)
            raise
        finally:
            # What was committed before a failure is manifested and counted too (see _record).
            summary.commits = list(writer.commits)
            summary.files = list(writer.files)
            summary.snapshots_written = writer.rows.get(WORKLOAD_SNAPSHOTS_TABLE.name, 0)
            add_request_stats(record, before, client.stats.snapshot())
            summary.requests, summary.retries = record.requests, record.retries
            summary.token_requests = record.token_refreshes
            summary.seconds = time.monotonic() - started
            _record(lake, summary, record, started_at, settings)
    manifest_pending(lake, summary.run_id)  # a failed run's records: the next run manifests them
    if summary.status == "committed" and summary.observed_at is not None and created_between is None:
        summary.watermark_after = store.commit(
            WORKLOADS_STREAM, summary.observed_at, summary.run_id
        ).watermark
    log.info("workloads sync %s finished: %s", summary.run_id, summary.to_dict())
    return summary


@dataclass(frozen=True)
class _Listing:
    """What the change queries returned: one item per workload, and the server's time at the end."""

    results: list[QueryResult]
    items: list[Any]
    observed_at: datetime


@dataclass(frozen=True)
class _Changes:
    """The listed workloads whose row_hash differs from the stored one, and the snapshot compared."""

    batch: Normalised
    changed: list[dict[str, Any]]
    snapshot: DeltaTable | None


@dataclass(frozen=True)
class _RunOutcome:
    """Everything a finished run learnt, built once at the end and copied into summary and record."""

    listing: _Listing
    changes: _Changes
    details: DetailsBatch
    history_rows: int
    event_rows: int
    snapshots_written: int
    quarantined: int

    @property
    def status(self) -> str:
        return "partial" if self.details.failures else "committed"


class _Writer:
    """Commits rows for the stream and keeps every commit, so a run that fails later still
    manifests the files it already committed."""

    def __init__(self, tables: Tables, run_id: str) -> None:
        self.tables = tables
        self.run_id = run_id
        self.commits: list[Commit] = []
        self.rows: dict[str, int] = {}  # rows committed per table

    @property
    def files(self) -> list[str]:
        return [f"{commit.table}/{add.path}" for commit in self.commits for add in commit.adds]

    def write(self, rows: list[dict[str, Any]], spec: TableSpec, snapshot: DeltaTable | None) -> int:
        """Commit ``rows`` against the snapshot they were found new in; a concurrent run conflicts."""
        if not rows:
            return 0
        tables = self.tables
        base = snapshot if snapshot is not None else tables.ensure(spec)
        counter = tables.app_version(spec, commit_app(WORKLOADS_STREAM), snapshot=base) or 0
        staged = tables.stage(spec, to_table(rows, spec.schema))
        commit = tables.commit(
            spec,
            [staged],
            snapshot=base,
            app_txns={commit_app(WORKLOADS_STREAM): counter + 1},
            metadata={"stream": WORKLOADS_STREAM, "run_id": self.run_id},
        )
        self.commits.append(commit)
        self.rows[spec.name] = self.rows.get(spec.name, 0) + len(rows)
        return len(rows)

    def write_new(self, rows: list[dict[str, Any]], spec: TableSpec) -> int:
        """Write the rows whose (workload_id, row_hash) is not stored yet: history is append-only."""
        if not rows:
            return 0
        snapshot = self.tables.load(spec)
        stored = stored_keys(self.tables.lake, spec, ["workload_id", "row_hash"], snapshot)
        fresh, seen = [], set(stored)
        for row in rows:
            key = (row["workload_id"], row["row_hash"])
            if key not in seen:
                seen.add(key)
                fresh.append(row)
        return self.write(fresh, spec, snapshot)


def _list(client: RunaiClient, queries: Sequence[WorkloadQuery], page_size: int) -> _Listing:
    results = [run_query(client, query, page_size) for query in queries]
    observed_at = client.server_time or datetime.now(UTC)
    return _Listing(results, _merge(results), observed_at)


def _store_changes(
    settings: Settings,
    lake: Lake,
    client: RunaiClient,
    writer: _Writer,
    listing: _Listing,
    summary: WorkloadSyncSummary,
) -> _RunOutcome:
    """Diff, fetch details of what changed, write history, events, snapshots, quarantine."""
    lineage: dict[str, Any] = {
        "observed_at": listing.observed_at,
        "run_id": summary.run_id,
        "ingested_at": datetime.now(UTC),
    }
    changes = _find_changes(writer.tables, normalise_workloads(listing.items, **lineage))
    details = _fetch(client, changes.changed, settings)
    quarantined = list(changes.batch.rejected)
    history, events = _detail_rows(details, lineage, quarantined)
    history_rows = writer.write_new(history, WORKLOAD_HISTORY_TABLE)
    event_rows = writer.write_new(events, WORKLOAD_EVENTS_TABLE)
    snapshots = [row for row in changes.changed if row["workload_id"] not in details.failures]
    snapshots_written = writer.write(snapshots, WORKLOAD_SNAPSHOTS_TABLE, changes.snapshot)
    _quarantine(lake, quarantined, summary, settings)
    return _RunOutcome(
        listing, changes, details, history_rows, event_rows, snapshots_written, len(quarantined)
    )


def _find_changes(tables: Tables, batch: Normalised) -> _Changes:
    snapshot = tables.load(WORKLOAD_SNAPSHOTS_TABLE)
    stored = latest_versions(tables.lake, WORKLOAD_SNAPSHOTS_TABLE, "workload_id", ["row_hash"], snapshot)
    changed = [
        row for row in batch.rows if stored.get(row["workload_id"], {}).get("row_hash") != row["row_hash"]
    ]
    return _Changes(batch, changed, snapshot)


def _fetch(client: RunaiClient, changed: list[dict[str, Any]], settings: Settings) -> DetailsBatch:
    details = fetch_details(
        client,
        (row["workload_id"] for row in changed),
        page_size=settings.page_size,
        concurrency=settings.concurrency,
    )
    for workload_id, reason in sorted(details.failures.items())[:5]:
        log.warning(
            "workload %s: history/events not fetched (%s); it is retried next run", workload_id, reason
        )
    return details


def _apply(outcome: _RunOutcome, summary: WorkloadSyncSummary, record: SliceResult) -> None:
    """Copy a finished run's outcome into what the caller prints and the run record."""
    results, details = outcome.listing.results, outcome.details
    summary.queries = {r.query.name: _query_stats(r) for r in results}
    summary.workloads_seen = len(outcome.listing.items)
    summary.changed = len(outcome.changes.changed)
    summary.failed_workloads = sorted(details.failures)
    summary.details_failed = len(details.failures)
    summary.gone = sum(d.gone for d in details.details.values())
    summary.history_rows, summary.event_rows = outcome.history_rows, outcome.event_rows
    summary.snapshots_written = outcome.snapshots_written
    summary.quarantined = outcome.quarantined
    record.rows_received = sum(r.served for r in results)
    record.duplicates_dropped = sum(r.duplicates for r in results)
    record.api_total = _total_count(results)
    record.total_mismatch = any(r.count_mismatch for r in results)
    record.repaged = any(r.repaged for r in results)
    record.drift_fields.update(outcome.changes.batch.drift)
    summary.status = outcome.status


def _merge(results: Sequence[QueryResult]) -> list[Any]:
    """One item per workload id; when queries disagree, the later ``updatedAt`` (then deleted) wins."""
    merged: dict[str, Any] = {}
    for result in results:
        for workload_id, item in result.items.items():
            current = merged.get(workload_id)
            if current is None or _newer(item, current):
                merged[workload_id] = item
    return [merged[key] for key in sorted(merged)]


def _newer(item: Any, current: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(current, dict):
        return False
    mine, theirs = str(item.get("updatedAt") or ""), str(current.get("updatedAt") or "")
    if mine != theirs:
        return mine > theirs  # same ISO-8601 UTC shape from one server: text order is time order
    return item.get("deletedAt") is not None and current.get("deletedAt") is None


def _detail_rows(
    batch: DetailsBatch, lineage: dict[str, Any], quarantined: list[QuarantinedRecord]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    history: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for workload_id in sorted(batch.details):
        detail = batch.details[workload_id]
        for out, normalised in (
            (history, normalise_history(workload_id, detail.history, **lineage)),
            (events, normalise_events(workload_id, detail.events, **lineage)),
        ):
            out.extend(normalised.rows)
            quarantined.extend(_tagged(normalised, workload_id))
    return history, events


def _tagged(normalised: Normalised, workload_id: str) -> Iterable[QuarantinedRecord]:
    for rejected in normalised.rejected:
        yield QuarantinedRecord(
            rejected.record_index, f"workload {workload_id}: {rejected.reason}", rejected.raw
        )


def _run_window(summary: WorkloadSyncSummary, settings: Settings) -> tuple[datetime, datetime]:
    """The span a run vouches for: [since, observed_at); the first run's since is the lookback."""
    if summary.created_between is not None:
        return summary.created_between
    end = summary.observed_at or datetime.now(UTC)
    start = summary.since or end - settings.initial_lookback
    return (start, end) if start < end else (end - settings.overlap, end)


def _quarantine(
    lake: Lake, records: list[QuarantinedRecord], summary: WorkloadSyncSummary, settings: Settings
) -> None:
    if not records:
        return
    start, observed_at = _run_window(summary, settings)
    table = quarantine_table(
        records,
        stream=WORKLOADS_STREAM,
        run_id=summary.run_id,
        window_start=start,
        window_end=observed_at,
        page_offset=None,
        quarantined_at=datetime.now(UTC),
    )
    Tables(lake).append(
        QUARANTINE_TABLE, table, metadata={"stream": WORKLOADS_STREAM, "run_id": summary.run_id}
    )
    for rec in records[:20]:
        log.warning("quarantined workload record %d: %s", rec.record_index, rec.reason)


def _record(
    lake: Lake, summary: WorkloadSyncSummary, record: SliceResult, started_at: datetime, settings: Settings
) -> None:
    """One ingest_runs row per workloads run: window = [since, observed_at), counts, cost, status."""
    record.window_start, record.window_end = _run_window(summary, settings)
    record.status = {"committed": "committed", "partial": "partial"}.get(summary.status, "failed")
    record.rows_written = record.rows_new = summary.snapshots_written
    record.quarantined = summary.quarantined
    record.files = list(summary.files)
    record.error = summary.error or (_without_details(summary) if summary.details_failed else None)
    mode = "backfill" if summary.created_between else "sync"
    record_run(lake, summary.run_id, mode, record, started_at, stream=WORKLOADS_STREAM)
    if record.files or record.status != "failed":
        # Even a failed run's files are complete and stay: they are manifested, so verify can tell
        # them from files nobody accounts for.
        record_usage_run(
            lake,
            WORKLOADS_STREAM,
            record,
            summary.run_id,
            summary.commits,
            _manifest_params(summary, settings),
        )


def _without_details(summary: WorkloadSyncSummary, shown: int = 10) -> str:
    """The run record's error for a partial run: how many, and which (the stall check quotes it)."""
    ids = summary.failed_workloads
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f"{summary.details_failed} workload(s) without details: {', '.join(ids[:shown])}{more}"


def _manifest_params(summary: WorkloadSyncSummary, settings: Settings) -> dict[str, Any]:
    """The requests a run made, as a manifest records them (filters per query, sort, page size)."""
    queries = plan_queries(summary.since, summary.created_between)
    return {
        "sortBy": "createdAt",
        "sortOrder": "asc",
        "limit": WORKLOADS.page_size(settings.page_size),
        "queries": {query.name: query.params() for query in queries},
    }


def _query_stats(result: QueryResult) -> dict[str, Any]:
    return {
        "pages": result.pages,
        "served": result.served,
        "distinct": len(result.items),
        "api_count": result.api_count,
        "repaged": result.repaged,
    }


def _total_count(results: Sequence[QueryResult]) -> int | None:
    counts = [r.api_count for r in results if r.api_count is not None]
    return sum(counts) if counts else None
