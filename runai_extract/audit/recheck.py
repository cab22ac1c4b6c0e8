"""Re-checking closed windows: find late rows a sync's overlap can no longer see, and say so.

A sync re-reads only ``overlap`` before its watermark, so a row that appears in the API later with
an older timestamp (a late write on the control plane) is never read again. A recheck re-pages an
explicit range exactly like a backfill (same slices, deterministic files, dedupe and watermark
rules, so late rows are stored once) and, per slice, compares the ids the API served with the
ids stored for that slice's time range before the recheck. The comparison is recorded in
``_ops/reconciliation/`` so an auditor can see which windows were clean, which gained late rows
and which lost rows from the API (retention, deletion), and which are sealed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import httpx

from runai_extract.api.client import RunaiClient
from runai_extract.audit.slices import ingest_slice
from runai_extract.audit.sync import STREAM, Progress, SliceResult, SliceRunner, SyncSummary, run_range
from runai_extract.core.settings import Settings
from runai_extract.core.times import Window, format_utc
from transforms.storage import Lake
from transforms.writer import (
    audit_file_path,
    read_event_ids_between,
    reconciliation_path,
    reconciliation_table,
    write_table,
)

log = logging.getLogger(__name__)

SAMPLE_IDS = 20


@dataclass
class Reconciliation:
    """One slice's comparison of the API's ids with the stored ones: a RECONCILIATION row."""

    window_start: datetime
    window_end: datetime
    api_total: int | None = None
    api_ids: int = 0
    stored_before: int = 0
    late_rows_added: int = 0
    missing_from_api: int = 0
    sample_late_ids: list[str] = field(default_factory=list)
    sample_missing_ids: list[str] = field(default_factory=list)
    status: str = "running"
    sealed: bool = False
    error: str | None = None


@dataclass
class RecheckSummary(SyncSummary):
    """A backfill's summary plus the reconciliation of every slice it re-checked."""

    reconciliations: list[Reconciliation] = field(default_factory=list)

    @property
    def late_rows(self) -> int:
        return sum(r.late_rows_added for r in self.reconciliations)

    @property
    def missing_from_api(self) -> int:
        return sum(r.missing_from_api for r in self.reconciliations)

    def sample_ids(self, kind: str) -> list[str]:
        """Up to SAMPLE_IDS ids of ``kind`` ('late' or 'missing') across the slices, for the summary."""
        ids = [i for r in self.reconciliations for i in getattr(r, f"sample_{kind}_ids")]
        return ids[:SAMPLE_IDS]

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(
            late_rows=self.late_rows,
            missing_from_api=self.missing_from_api,
            sealed_windows=sum(1 for r in self.reconciliations if r.sealed),
        )
        return data


def recheck_audit(
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
    progress: Progress | None = None,
) -> RecheckSummary:
    """Re-page [start, min(end, now - settle lag)), store late rows, record one reconciliation per slice."""
    current = now or datetime.now(UTC)
    found: list[Reconciliation] = []
    runner = _recheck_runner(settings.page_size, current - settings.seal_after, found)
    summary = run_range(
        settings, "recheck", start=start, end=end, now=current, transport=transport, progress=progress,
        ingest=runner,
    )  # fmt: skip
    base = {f.name: getattr(summary, f.name) for f in fields(SyncSummary)}
    # Slices may finish out of order on the worker threads; report them in window order.
    return RecheckSummary(**base, reconciliations=sorted(found, key=lambda r: r.window_start))


def _recheck_runner(page_size: int, seal_before: datetime, found: list[Reconciliation]) -> SliceRunner:
    """A slice runner that ingests like a backfill and records how the API and the lake compare."""

    def run(client: RunaiClient, lake: Lake, piece: Window, run_id: str, sink: Progress) -> SliceResult:
        record = Reconciliation(piece.start, piece.end)
        found.append(record)
        api_ids: set[str] = set()
        try:
            stored = _stored_ids(lake, piece)
            record.stored_before = len(stored)
            result = ingest_slice(client, lake, piece, run_id, "recheck", page_size, sink, api_ids)
            _compare(record, result, stored, api_ids, seal_before)
        except Exception as exc:
            record.status, record.error = "failed", str(exc)
            raise
        finally:
            _record(lake, run_id, record)
        return result

    return run


def _stored_ids(lake: Lake, piece: Window) -> set[str]:
    """Ids stored for the slice's time range, in any file of its day partition."""
    partition = audit_file_path(piece.start, piece.end).rsplit("/", 1)[0]
    return read_event_ids_between(lake, lake.list_files(partition), piece.start, piece.end)


def _compare(
    record: Reconciliation, result: SliceResult, stored: set[str], api_ids: set[str], seal_before: datetime
) -> None:
    """Fill in the comparison; missing rows outrank late ones because they cannot be re-fetched."""
    late, missing = api_ids - stored, stored - api_ids
    record.api_total = result.api_total
    record.api_ids = len(api_ids)
    record.late_rows_added = result.rows_new
    record.missing_from_api = len(missing)
    record.sample_late_ids = sorted(late)[:SAMPLE_IDS]
    record.sample_missing_ids = sorted(missing)[:SAMPLE_IDS]
    if missing:
        record.status = "missing_from_api"
    elif record.late_rows_added:
        record.status = "late_rows"
    else:
        record.status = "clean"
    record.sealed = record.status == "clean" and record.window_end <= seal_before
    if record.status != "clean":
        log.warning(
            "audit recheck %s..%s: %s (%d late rows added, %d stored ids no longer returned)",
            format_utc(record.window_start),
            format_utc(record.window_end),
            record.status,
            record.late_rows_added,
            record.missing_from_api,
        )


def _record(lake: Lake, run_id: str, record: Reconciliation) -> None:
    row = {
        **{f.name: getattr(record, f.name) for f in fields(Reconciliation)},
        "run_id": run_id,
        "stream": STREAM,
        "checked_at": datetime.now(UTC),
    }
    path = reconciliation_path(STREAM, run_id, record.window_start, record.window_end)
    write_table(lake, path, reconciliation_table([row]))


__all__ = ["RecheckSummary", "Reconciliation", "recheck_audit"]
