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
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from runai_extract import __version__
from runai_extract.client import RunaiClient
from runai_extract.errors import ApiContractError, ConfigError, LedgerError
from runai_extract.pagination import audit_pages
from runai_extract.settings import Settings, require_api
from runai_extract.state import StateStore, format_utc, writer_lock
from runai_extract.windows import Window, plan_window, split_window
from transforms.audit import AuditBatch, normalise_audit
from transforms.schemas import AUDIT_EVENTS, AUDIT_EVENTS_DIR, SCHEMA_VERSION
from transforms.storage import Lake
from transforms.writer import (
    ParquetStreamWriter,
    audit_file_path,
    ingest_run_path,
    ingest_run_table,
    quarantine_file_path,
    quarantine_table,
    read_event_ids,
    write_table,
)

log = logging.getLogger(__name__)

STREAM = "audit"
ROW_GROUP_ROWS = 65_536
Mode = Literal["sync", "backfill", "recheck"]
# Ingests one slice of a run and returns its record; recheck wraps the default one.
SliceRunner = Callable[["RunaiClient", Lake, Window, str, "Progress"], "SliceResult"]


class Progress(Protocol):
    """What a progress display hears about; the CLI draws it with rich, Airflow logs it."""

    def plan(self, slices: list[Window]) -> None: ...
    def rows(self, n: int) -> None: ...
    def slice_done(self, result: SliceResult) -> None: ...


class SilentProgress:
    """The progress sink for runs nobody watches (Airflow, pipes, tests)."""

    def plan(self, slices: list[Window]) -> None:
        return None

    def rows(self, n: int) -> None:
        return None

    def slice_done(self, result: SliceResult) -> None:
        return None


@dataclass
class SliceResult:
    """Everything ingest_runs records about one slice of one run."""

    window_start: datetime
    window_end: datetime
    status: str = "running"
    pages: int = 0
    requests: int = 0
    rows_received: int = 0
    rows_written: int = 0  # rows in the file this slice wrote (a rerun rewrites its own file)
    rows_new: int = 0  # of those, rows that were not stored before this run
    duplicates_dropped: int = 0
    out_of_window: int = 0
    quarantined: int = 0
    retries: int = 0
    throttled_429: int = 0
    token_refreshes: int = 0
    api_total: int | None = None
    total_mismatch: bool = False
    repaged: bool = False
    drift_fields: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class SyncSummary:
    """A small, JSON-able account of a run: what the CLI prints and what Airflow puts in XCom."""

    run_id: str
    stream: str
    mode: str
    window_start: datetime | None
    window_end: datetime | None
    watermark_before: datetime | None
    watermark_after: datetime | None
    slices: list[SliceResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_new(self) -> int:
        return sum(s.rows_new for s in self.slices)

    @property
    def rows_received(self) -> int:
        return sum(s.rows_received for s in self.slices)

    def totals(self) -> dict[str, int]:
        keys = (
            "pages",
            "requests",
            "rows_received",
            "rows_written",
            "rows_new",
            "duplicates_dropped",
            "out_of_window",
            "quarantined",
            "retries",
            "throttled_429",
            "token_refreshes",
        )
        return {k: sum(int(getattr(s, k)) for s in self.slices) for k in keys}

    def drift(self) -> Counter[str]:
        """Unknown fields and enum values seen across the run, with counts."""
        total: Counter[str] = Counter()
        for piece in self.slices:
            total.update(piece.drift_fields)
        return total

    def to_dict(self) -> dict[str, Any]:
        def ts(value: datetime | None) -> str | None:
            return format_utc(value) if value else None

        return {
            "run_id": self.run_id,
            "stream": self.stream,
            "mode": self.mode,
            "window_start": ts(self.window_start),
            "window_end": ts(self.window_end),
            "watermark_before": ts(self.watermark_before),
            "watermark_after": ts(self.watermark_after),
            "slices": len(self.slices),
            "mismatched_slices": sum(1 for s in self.slices if s.total_mismatch),
            "drift": dict(sorted(self.drift().items())),
            "seconds": round(self.seconds, 3),
            **self.totals(),
        }


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
        return _run(settings, lake, store, window, watermark, "sync", transport, progress)


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
    if end <= start:
        raise ConfigError(
            f"backfill range is empty or inverted: start {format_utc(start)} >= end {format_utc(end)}"
        )
    current = now or datetime.now(UTC)
    end = min(end, current - settings.settle_lag)
    lake = Lake(settings.lake_uri)
    store = StateStore(lake)
    with writer_lock(lake, STREAM, wait=settings.lock_wait):
        state = store.read(STREAM)
        watermark = state.watermark if state else None
        window = Window(start, end) if end > start else None
        return _run(settings, lake, store, window, watermark, "backfill", transport, progress)


def _run(
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
    """Page every slice of ``window`` through ``ingest`` (default: _ingest_slice), committing as allowed."""
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
            for piece in slices:
                result = ingest(client, lake, piece, run_id, sink)
                summary.slices.append(result)
                if _may_advance(watermark, piece):
                    watermark = store.commit(STREAM, piece.end, run_id).watermark
                    summary.watermark_after = watermark
                sink.slice_done(result)
    summary.seconds = time.monotonic() - started
    if summary.drift():
        log.warning("audit %s %s: schema drift %s", mode, run_id, dict(sorted(summary.drift().items())))
    log.info("audit %s %s finished: %s", mode, run_id, summary.to_dict())
    return summary


def _default_runner(mode: Mode, page_size: int) -> SliceRunner:
    """Sync and backfill ingest each slice as is; recheck passes its own runner that wraps this one."""

    def run(client: RunaiClient, lake: Lake, piece: Window, run_id: str, sink: Progress) -> SliceResult:
        return _ingest_slice(client, lake, piece, run_id, mode, page_size, sink)

    return run


def _may_advance(watermark: datetime | None, piece: Window) -> bool:
    """Advance only over contiguous data: a backfill that starts past the watermark would leave a gap."""
    return watermark is None or piece.start <= watermark


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _ingest_slice(
    client: RunaiClient,
    lake: Lake,
    piece: Window,
    run_id: str,
    mode: Mode,
    page_size: int,
    sink: Progress,
    api_ids: set[str] | None = None,
) -> SliceResult:
    """Ingest one slice, record it in ingest_runs, and re-raise any failure after recording it.

    ``api_ids``, when given, collects every id the API served inside the slice (of the final
    pass), for a recheck to compare with what was stored.
    """
    started_at = datetime.now(UTC)
    before = client.stats.snapshot()
    result = SliceResult(piece.start, piece.end)
    try:
        try:
            bad = _page_into_file(client, lake, piece, run_id, page_size, result, sink, api_ids=api_ids)
        except _Repage:
            bad = _page_into_file(
                client, lake, piece, run_id, page_size, result, sink, repage=True, api_ids=api_ids
            )
        for part, (offset, batch) in enumerate(bad):
            _write_quarantine(lake, batch, run_id, piece, offset, part)
        result.status = "mismatch" if result.total_mismatch else "committed"
    except LedgerError as exc:
        result.status, result.error = "failed", str(exc)
        raise
    finally:
        _add_request_stats(result, before, client.stats.snapshot())
        _record_run(lake, run_id, mode, result, started_at)
    return result


def _page_into_file(
    client: RunaiClient,
    lake: Lake,
    piece: Window,
    run_id: str,
    page_size: int,
    result: SliceResult,
    sink: Progress,
    *,
    repage: bool = False,
    api_ids: set[str] | None = None,
) -> list[tuple[int, AuditBatch]]:
    """Page the slice into its deterministic file; sets result.total_mismatch when counts disagree.

    Returns the batches that had quarantined records (with their page offsets), to be written once
    the final pass is known, so a re-page never leaves the first pass's quarantine behind.
    """
    target = audit_file_path(piece.start, piece.end)
    partition = target.rsplit("/", 1)[0]
    existing = lake.list_files(partition)
    stored = read_event_ids(lake, [p for p in existing if p != target])
    own_before = read_event_ids(lake, [target]) if target in existing else set()
    _reset_counts(result, repage)
    if api_ids is not None:
        api_ids.clear()  # a re-page replaces the first pass's view of the API
    seen: set[str] = set()
    totals: set[int] = set()
    ingested_at = datetime.now(UTC)
    bad: list[tuple[int, AuditBatch]] = []
    # Pages are gathered into large row groups: smaller files that DuckDB scans faster.
    with ParquetStreamWriter(lake, target, AUDIT_EVENTS, row_group_rows=ROW_GROUP_ROWS) as writer:
        for page in audit_pages(client, piece.start, piece.end, page_size):
            result.pages += 1
            result.rows_received += len(page.items)
            if page.total is not None:
                totals.add(page.total)
            batch = normalise_audit(page.items, run_id=run_id, ingested_at=ingested_at)
            kept = _keep_new(batch, piece, stored, seen, result, api_ids)
            writer.write(kept)
            result.rows_written += kept.num_rows
            result.rows_new += _count_new(kept, own_before)
            if batch.quarantined:
                bad.append((page.offset, batch))
            sink.rows(len(page.items))
        # Checked inside the writer's block: raising here means this pass's file never appears.
        _check_total(result, totals, piece, repage)
    result.files = [target] if writer.rows else []
    return bad


class _Repage(Exception):
    """Internal: the first pass saw the API's total disagree; discard it and page the slice again."""


def _check_total(result: SliceResult, totals: set[int], piece: Window, repage: bool) -> None:
    """Compare the API's total with the rows received; re-page once, refuse a total that stays wrong.

    A total that moved between pages means rows landed in the window while we paged (offsets
    shifted): one more pass reads a settled window, and a total that moves again is recorded as
    a mismatch for the re-check. A total that is stable on the second pass yet still differs from
    the rows served is a server that cannot count or silently stops paging: refusing to commit
    is the only answer that cannot lose events.
    """
    result.api_total = max(totals) if totals else None
    moved = len(totals) > 1
    short = result.api_total is not None and result.api_total != result.rows_received
    result.total_mismatch = moved or short
    if not result.total_mismatch:
        return
    where = f"audit window {format_utc(piece.start)}..{format_utc(piece.end)}"
    if not repage:
        log.warning(
            "%s: API total %s (seen %s) but %d rows received; paging it once more",
            where,
            result.api_total,
            sorted(totals),
            result.rows_received,
        )
        raise _Repage
    if not moved:
        raise ApiContractError(
            f"{where}: the API reported total={result.api_total} on every page of two passes but served "
            f"{result.rows_received} rows; nothing from this window was committed"
        )
    log.warning(
        "%s: API total still moving (seen %s, %d rows received); stored and marked mismatch",
        where,
        sorted(totals),
        result.rows_received,
    )


def _reset_counts(result: SliceResult, repage: bool) -> None:
    """A re-page replaces the first pass's row counts (its file is overwritten) but keeps request costs."""
    result.repaged = repage
    result.pages = result.rows_received = result.rows_written = result.rows_new = 0
    result.duplicates_dropped = result.out_of_window = result.quarantined = 0
    result.drift_fields = Counter()


def _keep_new(
    batch: AuditBatch,
    piece: Window,
    stored: set[str],
    seen: set[str],
    result: SliceResult,
    api_ids: set[str] | None = None,
) -> pa.Table:
    """Rows inside the slice whose ids are neither stored elsewhere nor seen earlier in this slice."""
    table = batch.table
    result.quarantined += len(batch.quarantined)
    result.drift_fields.update(batch.drift)
    times = table.column("event_time")
    inside = pc.and_(
        pc.greater_equal(times, pa.scalar(piece.start, AUDIT_EVENTS.field("event_time").type)),
        pc.less(times, pa.scalar(piece.end, AUDIT_EVENTS.field("event_time").type)),
    )
    in_window = table.filter(inside)
    result.out_of_window += table.num_rows - in_window.num_rows
    if api_ids is not None:
        api_ids.update(in_window.column("event_id").to_pylist())
    keep: list[bool] = []
    for event_id in in_window.column("event_id").to_pylist():
        new = event_id not in stored and event_id not in seen
        keep.append(new)
        if new:
            seen.add(event_id)
    kept = in_window.filter(pa.array(keep, type=pa.bool_())) if keep else in_window
    result.duplicates_dropped += in_window.num_rows - kept.num_rows
    return kept


def _count_new(kept: pa.Table, own_before: set[str]) -> int:
    if not own_before:
        return kept.num_rows
    return sum(1 for event_id in kept.column("event_id").to_pylist() if event_id not in own_before)


def _write_quarantine(
    lake: Lake, batch: AuditBatch, run_id: str, piece: Window, offset: int, part: int
) -> None:
    table = quarantine_table(
        batch.quarantined,
        stream=STREAM,
        run_id=run_id,
        window_start=piece.start,
        window_end=piece.end,
        page_offset=offset,
        quarantined_at=datetime.now(UTC),
    )
    write_table(lake, quarantine_file_path(STREAM, run_id, piece.start, piece.end, part), table)
    for record in batch.quarantined:
        log.warning(
            "quarantined audit record %d at offset %d: %s", record.record_index, offset, record.reason
        )


_STAT_KEYS = {
    "requests": "requests",
    "retries": "retries",
    "throttled_429": "throttled_429",
    "token_refreshes": "token_requests",
}


def _add_request_stats(result: SliceResult, before: dict[str, int], after: dict[str, int]) -> None:
    for ours, theirs in _STAT_KEYS.items():
        setattr(result, ours, getattr(result, ours) + after.get(theirs, 0) - before.get(theirs, 0))


def _record_run(lake: Lake, run_id: str, mode: str, result: SliceResult, started_at: datetime) -> None:
    finished = datetime.now(UTC)
    row = asdict(result)
    row.update(
        run_id=run_id,
        stream=STREAM,
        mode=mode,
        drift_fields=dict(result.drift_fields),
        started_at=started_at,
        finished_at=finished,
        duration_s=(finished - started_at).total_seconds(),
        schema_version=SCHEMA_VERSION,
        code_version=__version__,
    )
    write_table(
        lake, ingest_run_path(STREAM, run_id, result.window_start, result.window_end), ingest_run_table([row])
    )
