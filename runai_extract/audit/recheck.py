"""Re-checking closed windows: find late rows a sync's overlap can no longer see, and say so.

A sync re-reads only ``overlap`` before its watermark, so a row that appears in the API later with
an older timestamp (a late write on the control plane) is never read again. A recheck re-pages an
explicit range exactly like a backfill (same slices, deterministic files, dedupe and watermark
rules, so late rows are stored once) and, per slice, compares the ids the API served with the
ids stored for that slice's time range before the recheck. The comparison is recorded in
the ``_ops/reconciliation`` table so an auditor can see which windows were clean, which gained late rows
and which lost rows from the API (retention, deletion), and which are sealed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import httpx

from runai_extract.audit.slices import StagedSlice
from runai_extract.audit.sync import STREAM, AfterCommit, run_range
from runai_extract.core.settings import Settings
from runai_extract.core.times import format_utc
from runai_extract.ledger.run_records import Progress, SyncSummary
from transforms.catalog import RECONCILIATION_TABLE
from transforms.tables import Tables
from transforms.writer import reconciliation_table

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
    summary = run_range(
        settings, "recheck", start=start, end=end, now=current, transport=transport, progress=progress,
        after_commit=_reconcile(current - settings.seal_after, found),
    )  # fmt: skip
    base = {f.name: getattr(summary, f.name) for f in fields(SyncSummary)}
    return RecheckSummary(**base, reconciliations=found)


def _reconcile(seal_before: datetime, found: list[Reconciliation]) -> AfterCommit:
    """Compare each slice's API ids with what was stored before it, once it is committed (or failed)."""

    def after(tables: Tables, staged: StagedSlice, run_id: str) -> None:
        record = Reconciliation(staged.piece.start, staged.piece.end, stored_before=len(staged.stored_before))
        found.append(record)
        if staged.result.status == "failed" or staged.final is None:
            record.status, record.error = "failed", staged.result.error
        else:
            _compare(record, staged, seal_before)
        _record(tables, run_id, record)

    return after


def _compare(record: Reconciliation, staged: StagedSlice, seal_before: datetime) -> None:
    """Fill in the comparison; missing rows outrank late ones because they cannot be re-fetched."""
    api_ids = staged.final.api_ids if staged.final else set()
    stored = staged.stored_before
    late, missing = api_ids - stored, stored - api_ids
    record.api_total = staged.result.api_total
    record.api_ids = len(api_ids)
    record.late_rows_added = staged.result.rows_new
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


def _record(tables: Tables, run_id: str, record: Reconciliation) -> None:
    row = {
        **{f.name: getattr(record, f.name) for f in fields(Reconciliation)},
        "run_id": run_id,
        "stream": STREAM,
        "checked_at": datetime.now(UTC),
    }
    tables.append(
        RECONCILIATION_TABLE, reconciliation_table([row]), metadata={"stream": STREAM, "run_id": run_id}
    )


__all__ = ["RecheckSummary", "Reconciliation", "recheck_audit"]
