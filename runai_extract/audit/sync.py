"""Sync and backfill of the audit log: plan -> page the slices -> commit them in window order.

The commit protocol (docs/storage.md has the long form):
1. Plan the window from the watermark in the audit table's log; fix its end before any request.
2. Split it into slices that never cross UTC midnight (one day partition each).
3. Page the slices concurrently; each writes a staged (uncommitted) file of new rows and checks
   the API's total (audit/slices.py).
4. In window order, commit each staged file with the watermark in the same Delta commit
   (audit/commit.py), then its manifest and its run record.

A crash at any point leaves either the old watermark with nothing of the window visible, or the
window's rows with the watermark that covers them. A staged file that is never committed is
invisible and removed by vacuum. Two syncs at once are ordered by the table log: the later
commit of a window finds the rows already stored and commits nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import httpx
import pyarrow as pa

from runai_extract.api.client import RunaiClient
from runai_extract.audit.commit import STREAM, commit_slice
from runai_extract.audit.flavours import audit_reader
from runai_extract.audit.slice_pool import in_order
from runai_extract.audit.slices import Mode, StagedSlice, stage_slice
from runai_extract.audit.windows import plan_window, split_window
from runai_extract.core.errors import AuthError, ConfigError, LedgerError
from runai_extract.core.settings import Settings, require_api
from runai_extract.core.times import Window, format_utc
from runai_extract.ledger.manifests import (
    manifest_pending,
    record_audit_window,
    recover_audit_commits,
)
from runai_extract.ledger.retention import retention_alerts
from runai_extract.ledger.run_records import Progress, SilentProgress, SyncSummary, new_run_id, record_run
from runai_extract.ledger.watermarks import StateStore
from transforms.catalog import QUARANTINE_TABLE
from transforms.storage import Lake
from transforms.tables import Tables
from transforms.writer import quarantine_table

__all__ = ["STREAM", "AfterCommit", "backfill_audit", "run_range", "run_slices", "sync_audit"]

log = logging.getLogger(__name__)

# Called once per slice in window order after its commit (or failure): recheck's reconciliation.
AfterCommit = Callable[[Tables, StagedSlice, str], None]


def sync_audit(
    settings: Settings,
    *,
    until: datetime | None = None,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
    progress: Progress | None = None,
) -> SyncSummary:
    """Ingest everything from the stored watermark (minus overlap) up to min(until, now - settle lag)."""
    lake = Lake(settings.lake_uri)
    state = StateStore(lake).read(STREAM)
    watermark = state.watermark if state else None
    window = plan_window(
        watermark,
        now=now or datetime.now(UTC),
        until=until,
        overlap=settings.overlap,
        settle_lag=settings.settle_lag,
        initial_lookback=settings.initial_lookback,
    )
    summary = run_slices(settings, lake, window, watermark, "sync", transport, progress)
    # After the commit: a watermark close to the API's retention horizon is worth an alert.
    summary.alerts = [
        str(a) for a in retention_alerts(lake, settings.retention, settings.retention_margin, now=now)
    ]
    return summary


def backfill_audit(
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
    progress: Progress | None = None,
) -> SyncSummary:
    """Re-read an explicit range; adds only what is missing and advances the watermark only if contiguous."""
    return run_range(
        settings, "backfill", start=start, end=end, now=now, transport=transport, progress=progress
    )


def run_range(
    settings: Settings,
    mode: Mode,
    *,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
    progress: Progress | None = None,
    after_commit: AfterCommit | None = None,
) -> SyncSummary:
    """Run the slices of an explicit range [start, min(end, now - settle lag))."""
    if end <= start:
        raise ConfigError(
            f"{mode} range is empty or inverted: start {format_utc(start)} >= end {format_utc(end)}"
        )
    end = min(end, (now or datetime.now(UTC)) - settings.settle_lag)
    lake = Lake(settings.lake_uri)
    state = StateStore(lake).read(STREAM)
    window = Window(start, end) if end > start else None
    return run_slices(
        settings, lake, window, state.watermark if state else None, mode, transport, progress, after_commit
    )


def run_slices(
    settings: Settings,
    lake: Lake,
    window: Window | None,
    watermark: datetime | None,
    mode: Mode,
    transport: httpx.BaseTransport | None,
    progress: Progress | None,
    after_commit: AfterCommit | None = None,
) -> SyncSummary:
    """Page the slices of ``window`` on up to ``settings.concurrency`` threads; commit them in order."""
    run_id = new_run_id()
    summary = SyncSummary(
        run_id,
        STREAM,
        mode,
        window.start if window else None,
        window.end if window else None,
        watermark,
        watermark,
    )
    started = time.monotonic()
    slices = split_window(window, settings.slice_length) if window else []
    sink = progress or SilentProgress()
    sink.plan(slices)
    if slices:
        tables = Tables(lake)
        # A run killed right after a commit left rows without their manifest and run record: first those.
        pointers = recover_audit_commits(lake, run_id)
        with RunaiClient(require_api(settings), transport=transport) as client:
            client.connect()  # first contact here, once: a wrong URL fails before any slice starts
            _probe(client)
            stage = partial(_stage, client, tables, run_id, settings.page_size, sink)
            # Slices are paged concurrently but committed here strictly in window order; a failed
            # slice raises at its position (after every earlier one was committed, and stopping
            # slices not started yet), so the watermark never moves over a gap.
            try:
                for _, staged in in_order(slices, stage, settings.concurrency):
                    if _commit_one(tables, staged, run_id, mode, settings.page_size, after_commit):
                        summary.watermark_after = staged.piece.end  # moved in this slice's own commit
                    summary.slices.append(staged.result)
                    sink.slice_done(staged.result)
            except _SliceFailed as failed:
                _commit_one(tables, failed.staged, run_id, mode, settings.page_size, after_commit)  # raises
        # This run's records, quarantine and reconciliation rows; and how far the recovery looked.
        manifest_pending(lake, run_id, pointers=pointers)
    summary.seconds = time.monotonic() - started
    if summary.drift():
        log.warning("audit %s %s: schema drift %s", mode, run_id, dict(sorted(summary.drift().items())))
    log.info("audit %s %s finished: %s", mode, run_id, summary.to_dict())
    return summary


def _probe(client: RunaiClient) -> None:
    """Which audit API the tenant has, asked once before any slice starts.

    A role without audit rights ends the run here, in one request. Any other failure is left to
    the first slice, which asks again and is recorded as a failed window like any other.
    """
    try:
        audit_reader(client)
    except AuthError:
        raise
    except LedgerError as exc:
        log.info("audit API probe failed before the slices (%s); the first slice asks again", exc)


class _SliceFailed(Exception):
    """Carries a failed slice from its worker to the committing thread, which records it and re-raises."""

    def __init__(self, staged: StagedSlice) -> None:
        super().__init__(str(staged.error))
        self.staged = staged


def _stage(
    client: RunaiClient, tables: Tables, run_id: str, page_size: int, sink: Progress, piece: Window
) -> StagedSlice:
    staged = stage_slice(client, tables, piece, run_id, page_size, sink)
    if staged.error is not None:
        raise _SliceFailed(staged) from staged.error  # stops slices not started yet
    return staged


def _commit_one(
    tables: Tables,
    staged: StagedSlice,
    run_id: str,
    mode: Mode,
    page_size: int,
    after_commit: AfterCommit | None,
) -> bool:
    """Commit one slice, then its quarantine, manifest and run record; a failed slice raises here.

    Returns whether the commit moved the watermark (to the slice's end), so the run's summary
    needs no second read of the table log. A failed slice raises its own error even when
    recording it fails too (the lake unwritable, say): the first error is what the user must see.
    """
    result = staged.result
    try:
        if staged.error is not None:
            raise staged.error
        done = commit_slice(tables, staged, run_id, mode)
        result.status = "mismatch" if result.status == "mismatch" else "committed"
        _write_quarantine(tables, staged, run_id)
        if done.commit is not None:
            record_audit_window(tables.lake, STREAM, result, run_id, page_size, done.commit)
        if done.watermark_moved:
            StateStore(tables.lake).mirror(STREAM, staged.piece.end, run_id)
    except Exception as exc:
        result.status, result.error = "failed", result.error or str(exc)
        try:
            _record_slice(tables, staged, run_id, mode, after_commit)
        except Exception as also:  # the slice's own error is already on its way up, in one line
            log.info("audit %s %s: the failed slice could not be recorded either: %s", mode, run_id, also)
        raise
    _record_slice(tables, staged, run_id, mode, after_commit)
    return done.watermark_moved


def _record_slice(
    tables: Tables, staged: StagedSlice, run_id: str, mode: Mode, after_commit: AfterCommit | None
) -> None:
    """The slice's ingest_runs row, then what the caller adds (recheck: the reconciliation row)."""
    record_run(tables.lake, run_id, mode, staged.result, staged.started_at)
    if after_commit is not None:
        after_commit(tables, staged, run_id)


def _write_quarantine(tables: Tables, staged: StagedSlice, run_id: str) -> None:
    """Rejected records of the committed pass, with their reasons and page offsets."""
    final = staged.final
    if final is None or not final.bad:
        return
    parts = [
        quarantine_table(
            batch.quarantined,
            stream=STREAM,
            run_id=run_id,
            window_start=staged.piece.start,
            window_end=staged.piece.end,
            page_offset=offset,
            quarantined_at=datetime.now(UTC),
        )
        for offset, batch in final.bad
    ]
    tables.append(QUARANTINE_TABLE, pa.concat_tables(parts), metadata={"stream": STREAM, "run_id": run_id})
    for offset, batch in final.bad:
        for record in batch.quarantined:
            log.warning(
                "quarantined audit record %d at offset %d: %s", record.record_index, offset, record.reason
            )
