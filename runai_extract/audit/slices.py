"""One slice of the audit log, from pages to a committed-ready file: page, normalise, dedupe, check.

A slice never crosses UTC midnight, so it writes exactly one file in one day partition, under a
deterministic name. Rows outside the slice, ids stored in other files of the partition and ids
seen earlier in the slice are dropped; the API's total is checked (one re-page, then refusal)
inside the writer's block so a refused pass never leaves its file. The caller commits the
watermark only after ingest_slice returns.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.compute as pc

from runai_extract.api.client import RunaiClient
from runai_extract.api.endpoints import Endpoint
from runai_extract.audit.flavours import (
    audit_reader,
    drop_seam_duplicates,
    legacy_ids_moved,
    other_flavour_keys,
)
from runai_extract.core.errors import ApiContractError, LedgerError
from runai_extract.core.times import Window, format_api_time, format_utc
from runai_extract.ledger.run_records import STREAM, Progress, SliceResult, add_request_stats, record_run
from transforms.audit import AuditBatch
from transforms.digest import id_set_digest
from transforms.schemas import AUDIT_EVENTS
from transforms.storage import Lake
from transforms.writer import (
    ParquetStreamWriter,
    audit_file_path,
    quarantine_file_path,
    quarantine_table,
    read_event_ids,
    write_table,
)

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 65_536
Mode = Literal["sync", "backfill", "recheck"]


def ingest_slice(
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
    before = client.stats.thread_snapshot()  # this thread's requests: slices run concurrently
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
        add_request_stats(result, before, client.stats.thread_snapshot())
        record_run(lake, run_id, mode, result, started_at)
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
    reader = audit_reader(client)  # modern or legacy (2.18/2.19) audit log, probed once per run
    window_ids: set[str] = set()
    # Events the other audit API stored (a 2.18 tenant that upgraded), matched by content.
    seam = other_flavour_keys(lake, [p for p in existing if p != target], reader.features.audit_flavour)
    with ParquetStreamWriter(lake, target, AUDIT_EVENTS, row_group_rows=ROW_GROUP_ROWS) as writer:
        for page in reader.pages(client, piece.start, piece.end, page_size):
            result.pages += 1
            result.rows_received += len(page.items)
            if page.total is not None:
                totals.add(page.total)
            batch = reader.normalise(page.items, run_id=run_id, ingested_at=ingested_at)
            kept = _keep_new(batch, piece, stored, seen, result, window_ids, seam)
            writer.write(kept)
            result.rows_written += kept.num_rows
            result.rows_new += _count_new(kept, own_before)
            if batch.quarantined:
                bad.append((page.offset, batch))
            sink.rows(len(page.items))
        # Checked inside the writer's block: raising here means this pass's file never appears.
        # The legacy log has no total: a second read of the window stands in for it.
        ids_moved = not reader.has_total and legacy_ids_moved(client, reader, piece, page_size, window_ids)
        _check_total(result, totals, piece, repage, ids_moved=ids_moved)
    if api_ids is not None:
        api_ids.update(window_ids)
    result.files = [target] if writer.rows else []
    result.api_query = _api_query(reader.endpoint, piece, page_size)
    result.api_features = reader.features.describe()
    result.deprecations = reader.notices(client)
    result.id_set_digest = id_set_digest(seen)  # seen holds exactly the ids written to the file
    return bad


def _api_query(endpoint: Endpoint, piece: Window, page_size: int) -> str:
    """The slice's request without its offset, so a record says exactly what api_total counted."""
    params = {
        **dict(endpoint.fixed_params),
        "start": format_api_time(piece.start),
        "end": format_api_time(piece.end),
    }
    if endpoint.page_param:
        params[endpoint.page_param] = str(endpoint.page_size(page_size))
    return f"GET {endpoint.path}?{urlencode(sorted(params.items()))}"


class _Repage(Exception):
    """Internal: the first pass saw the API's total disagree; discard it and page the slice again."""


def _check_total(
    result: SliceResult, totals: set[int], piece: Window, repage: bool, *, ids_moved: bool = False
) -> None:
    """Compare the API's total with the rows received; re-page once, refuse a total that stays wrong.

    A total that moved between pages means rows landed in the window while we paged (offsets
    shifted): one more pass reads a settled window, and a total that moves again is recorded as
    a mismatch for the re-check. A total that is stable on the second pass yet still differs from
    the rows served is a server that cannot count or silently stops paging: refusing to commit
    is the only answer that cannot lose events.
    """
    result.api_total = max(totals) if totals else None
    moved = len(totals) > 1 or ids_moved
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
    seam: Counter[tuple[object, ...]] | None = None,
) -> pa.Table:
    """Rows inside the slice whose ids are neither stored elsewhere nor seen earlier in this slice.

    ``seam`` holds content keys of rows the other audit API stored (audit/flavours.py); a row
    matching one is the same event under another kind of id, and is dropped as a duplicate.
    """
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
    candidates = drop_seam_duplicates(in_window, seam) if seam else in_window
    keep: list[bool] = []
    for event_id in candidates.column("event_id").to_pylist():
        new = event_id not in stored and event_id not in seen
        keep.append(new)
        if new:
            seen.add(event_id)
    kept = candidates.filter(pa.array(keep, type=pa.bool_())) if keep else candidates
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
