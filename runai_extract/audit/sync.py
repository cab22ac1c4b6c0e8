"""Sync and backfill of the audit log: plan -> page -> normalise -> write -> commit, per slice.

The commit protocol (docs/architecture.md has the long form):
1. Plan the window from the stored watermark and fix its end before the first request.
2. Split it into slices that never cross UTC midnight, so each slice writes one day partition.
3. Page each slice ascending by timestamp; normalise; drop rows outside the slice (the API's
   bounds are inclusive at both ends), ids already stored in *other* files of the partition, and
   ids seen earlier in the slice; stream the rest into one Parquet file with a deterministic name.
4. Compare the API's ``total`` with the rows received; re-page the slice once if they disagree,
   and refuse to commit a window whose total stays wrong while standing still.
5. Make the file appear atomically, then write the slice's run record, then advance the watermark.

Rerunning a slice overwrites its own file (its ids are excluded from the dedupe set), so a crash
at any point and any number of reruns leave every event id stored exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from runai_extract.api.client import RunaiClient
from runai_extract.audit.slice_pool import in_order
from runai_extract.audit.slices import Mode, ingest_slice
from runai_extract.audit.windows import plan_window, split_window
from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import Settings, require_api
from runai_extract.core.times import Window, format_utc
from runai_extract.ledger.manifests import record_audit_window
from runai_extract.ledger.retention import retention_alerts
from runai_extract.ledger.run_records import (
    STREAM,
    Progress,
    SilentProgress,
    SliceResult,
    SyncSummary,
    new_run_id,
)
from runai_extract.ledger.watermarks import StateStore, writer_lock
from transforms.schemas import AUDIT_EVENTS_DIR
from transforms.storage import Lake

__all__ = [
    "STREAM",
    "Progress",
    "SilentProgress",
    "SliceResult",
    "SliceRunner",
    "SyncSummary",
    "backfill_audit",
    "run_range",
    "run_slices",
    "sync_audit",
]

log = logging.getLogger(__name__)

# Ingests one slice of a run and returns its record; recheck wraps the default one.
SliceRunner = Callable[["RunaiClient", Lake, Window, str, "Progress"], "SliceResult"]


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
    store = StateStore(lake)
    with writer_lock(lake, STREAM, wait=settings.lock_wait):
        state = store.read(STREAM)
        watermark = state.watermark if state else None
        window = plan_window(
            watermark,
            now=now or datetime.now(UTC),
            until=until,
            overlap=settings.overlap,
            settle_lag=settings.settle_lag,
            initial_lookback=settings.initial_lookback,
        )
        summary = run_slices(settings, lake, store, window, watermark, "sync", transport, progress)
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
    ingest: SliceRunner | None = None,
) -> SyncSummary:
    """Run the slices of an explicit range [start, min(end, now - settle lag)) under the writer lock."""
    if end <= start:
        raise ConfigError(
            f"{mode} range is empty or inverted: start {format_utc(start)} >= end {format_utc(end)}"
        )
    end = min(end, (now or datetime.now(UTC)) - settings.settle_lag)
    lake = Lake(settings.lake_uri)
    store = StateStore(lake)
    with writer_lock(lake, STREAM, wait=settings.lock_wait):
        state = store.read(STREAM)
        watermark = state.watermark if state else None
        window = Window(start, end) if end > start else None
        return run_slices(settings, lake, store, window, watermark, mode, transport, progress, ingest)


def run_slices(
    settings: Settings,
    lake: Lake,
    store: StateStore,
    window: Window | None,
    watermark: datetime | None,
    mode: Mode,
    transport: httpx.BaseTransport | None,
    progress: Progress | None,
    ingest: SliceRunner | None = None,
) -> SyncSummary:
    """Page the slices of ``window`` through ``ingest`` (default: slices.ingest_slice) on up to
    ``settings.concurrency`` threads, committing each result in window order as allowed."""
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
    if ingest is None:
        ingest = _default_runner(mode, settings.page_size)
    if slices:
        lake.remove_stale_temporaries(AUDIT_EVENTS_DIR)
        with RunaiClient(require_api(settings), transport=transport) as client:
            runner = ingest
            finished: list[SliceResult] = []  # every slice that completed, in any order

            def page(piece: Window) -> SliceResult:
                result = runner(client, lake, piece, run_id, sink)
                finished.append(result)
                return result

            # Slices are paged concurrently but committed here strictly in window order; a failed
            # slice raises at its position, so the watermark never moves over a gap.
            try:
                for piece, result in in_order(slices, page, settings.concurrency):
                    summary.slices.append(result)
                    record_audit_window(lake, STREAM, result, run_id, settings.page_size)
                    if _may_advance(watermark, piece):
                        watermark = store.commit(STREAM, piece.end, run_id).watermark
                        summary.watermark_after = watermark
                    sink.slice_done(result)
            except Exception:
                _manifest_stragglers(lake, finished, summary, run_id, settings.page_size)
                raise
    summary.seconds = time.monotonic() - started
    if summary.drift():
        log.warning("audit %s %s: schema drift %s", mode, run_id, dict(sorted(summary.drift().items())))
    log.info("audit %s %s finished: %s", mode, run_id, summary.to_dict())
    return summary


def _manifest_stragglers(
    lake: Lake, finished: list[SliceResult], summary: SyncSummary, run_id: str, page_size: int
) -> None:
    """Manifest the slices that completed after the one that failed (they ran in parallel).

    Their files are complete and stay (deleting them could remove what a backfill stored under
    the same name); like a backfill past a gap they get manifests but never move the watermark,
    so the rerun pages those windows again and `verify` still accounts for every file.
    """
    committed = {id(result) for result in summary.slices}
    for result in sorted(finished, key=lambda r: r.window_start):
        if id(result) not in committed:
            record_audit_window(lake, STREAM, result, run_id, page_size)


def _default_runner(mode: Mode, page_size: int) -> SliceRunner:
    """Sync and backfill ingest each slice as is; recheck passes its own runner that wraps this one."""

    def run(client: RunaiClient, lake: Lake, piece: Window, run_id: str, sink: Progress) -> SliceResult:
        return ingest_slice(client, lake, piece, run_id, mode, page_size, sink)

    return run


def _may_advance(watermark: datetime | None, piece: Window) -> bool:
    """Advance only over contiguous data: a backfill that starts past the watermark would leave a gap."""
    return watermark is None or piece.start <= watermark
