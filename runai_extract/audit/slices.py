"""One slice of the audit log, from pages to a staged file: page, normalise, dedupe, check the total.

A slice never crosses UTC midnight, so it writes one staged file in one day partition of the
``audit_events`` Delta table. Staged means written but not committed: no reader sees it until the
committing thread (audit/commit.py) makes it part of a version, in window order. Rows outside
the slice, ids the table already holds for the slice's time range and ids seen earlier in the
slice are dropped. The API's total is checked after the last page; a total that moved gets one
more pass (the first pass's file is deleted), and a total that stays wrong while standing still
is refused (ApiContractError), so nothing of that window is ever committed.

Each step returns its result: :func:`page_pass` one pass over the pages, :func:`total_verdict`
what the totals say, :func:`stage_slice` the slice ready to commit.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.compute as pc

from runai_extract.api.client import RunaiClient
from runai_extract.api.endpoints import Endpoint
from runai_extract.audit.flavours import (
    AuditReader,
    audit_reader,
    drop_seam_duplicates,
    legacy_ids_moved,
    other_flavour_keys,
)
from runai_extract.core.errors import ApiContractError, StorageError
from runai_extract.core.times import Window, format_api_time, format_utc
from runai_extract.ledger.run_records import Progress, SliceResult, add_request_stats
from transforms.audit import AuditBatch
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.digest import id_set_digest
from transforms.schemas import AUDIT_EVENTS
from transforms.storage import os_error_reason
from transforms.tables import StagedFile, StagedWriter, Tables

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 65_536
Mode = Literal["sync", "backfill", "recheck"]
Verdict = Literal["ok", "repage", "mismatch"]


@dataclass
class PagePass:
    """One pass over a slice's pages: what was received, kept, dropped, and staged."""

    pages: int = 0
    rows_received: int = 0
    duplicates_dropped: int = 0
    out_of_window: int = 0
    quarantined: int = 0
    drift: Counter[str] = field(default_factory=Counter)
    totals: set[int] = field(default_factory=set)
    kept_ids: set[str] = field(default_factory=set)  # exactly the ids in the staged file
    api_ids: set[str] = field(default_factory=set)  # every id the API served inside the slice
    bad: list[tuple[int, AuditBatch]] = field(default_factory=list)  # batches with quarantined records
    staged: StagedFile | None = None
    ids_moved: bool = False  # legacy log (no total): a second read of the window found other ids
    reader: AuditReader | None = None  # which audit API served the pass (modern or legacy)
    deprecations: list[str] = field(default_factory=list)  # deprecated endpoints in use, and by when

    @property
    def api_total(self) -> int | None:
        return max(self.totals) if self.totals else None


@dataclass
class StagedSlice:
    """A slice paged and staged, waiting for its turn to commit (or the reason it failed)."""

    piece: Window
    result: SliceResult
    started_at: datetime
    final: PagePass | None = None
    stored_before: set[str] = field(default_factory=set)
    error: BaseException | None = None


def stored_ids(tables: Tables, piece: Window, snapshot: object | None = None) -> set[str]:
    """Ids the audit table holds for ``piece``'s time range (only files whose statistics overlap)."""
    table = tables.read(
        AUDIT_EVENTS_TABLE,
        ["event_id"],
        snapshot=snapshot,  # type: ignore[arg-type]
        time_range=("event_time", piece.start, piece.end),
        partition=("event_date", piece.start.date().isoformat()),
    )
    return set(table.column("event_id").to_pylist())


def stage_slice(
    client: RunaiClient, tables: Tables, piece: Window, run_id: str, page_size: int, sink: Progress
) -> StagedSlice:
    """Page one slice into a staged file; a failure is returned in ``error``, never raised.

    Returning the failure lets the committing thread record it at the slice's position in
    window order, after every earlier slice was committed.
    """
    before = client.stats.thread_snapshot()  # this thread's requests: slices run concurrently
    outcome = StagedSlice(piece, SliceResult(piece.start, piece.end), datetime.now(UTC))
    passes: list[PagePass] = []
    try:
        outcome.stored_before = stored_ids(tables, piece)
        passes.append(page_pass(client, tables, piece, run_id, page_size, sink, outcome.stored_before))
        verdict = total_verdict(passes[-1], piece, repage=False)
        if verdict == "repage":
            _discard(tables, passes[-1])
            outcome.result.repaged = True
            passes.append(page_pass(client, tables, piece, run_id, page_size, sink, outcome.stored_before))
            verdict = total_verdict(passes[-1], piece, repage=True)
        outcome.final = passes[-1]
        _fill(outcome.result, passes[-1], verdict, piece, page_size)
    except Exception as exc:  # recorded at its position by the committing thread, then re-raised there
        for refused in passes:
            _discard(tables, refused)  # a refused window leaves no staged file behind
        if isinstance(exc, OSError):  # a disk that refuses the staged file: one line, like any lake write
            exc = StorageError(f"cannot stage audit window {piece}: {os_error_reason(exc)}")
        outcome.result.status, outcome.result.error = "failed", str(exc)
        outcome.error = exc
    finally:
        add_request_stats(outcome.result, before, client.stats.thread_snapshot())
    return outcome


def page_pass(
    client: RunaiClient,
    tables: Tables,
    piece: Window,
    run_id: str,
    page_size: int,
    sink: Progress,
    stored: set[str],
) -> PagePass:
    """Page the slice once into a new staged file of its day partition."""
    result = PagePass()
    ingested_at = datetime.now(UTC)
    day = piece.start.date().isoformat()
    partition = {"event_date": day}
    reader = result.reader = audit_reader(client)  # modern or legacy (2.18/2.19) log, probed once per run
    # Events the other audit API stored (a 2.18 tenant that upgraded), matched by content.
    stored_files = [
        f"{AUDIT_EVENTS_TABLE.name}/{f.path}"
        for f in tables.live_files(AUDIT_EVENTS_TABLE)
        if f.path.startswith(f"event_date={day}/")
    ]
    seam = other_flavour_keys(tables.lake, stored_files, reader.features.audit_flavour)
    with StagedWriter(tables, AUDIT_EVENTS_TABLE, partition, row_group_rows=ROW_GROUP_ROWS) as writer:
        for page in reader.pages(client, piece.start, piece.end, page_size):
            result.pages += 1
            result.rows_received += len(page.items)
            if page.total is not None:
                result.totals.add(page.total)
            batch = reader.normalise(page.items, run_id=run_id, ingested_at=ingested_at)
            writer.write(_keep_new(batch, piece, stored, result, seam))
            if batch.quarantined:
                result.bad.append((page.offset, batch))
            sink.rows(len(page.items))
    # The legacy log has no total: a second read of the window stands in for it.
    result.ids_moved = not reader.has_total and legacy_ids_moved(
        client, reader, piece, page_size, result.api_ids
    )
    result.deprecations = reader.notices(client)
    result.staged = writer.staged
    return result


def total_verdict(result: PagePass, piece: Window, *, repage: bool) -> Verdict:
    """Compare the API's total with the rows received: fine, page once more, or store as mismatch.

    A total that moved between pages means rows landed in the window while we paged (offsets
    shifted): one more pass reads a settled window, and a total that moves again is stored and
    marked mismatch for the re-check. A total that is stable on the second pass yet still differs
    from the rows served is a server that cannot count or silently stops paging: refusing to
    commit is the only answer that cannot lose events.
    """
    moved = len(result.totals) > 1 or result.ids_moved
    short = result.api_total is not None and result.api_total != result.rows_received
    if not (moved or short):
        return "ok"
    where = f"audit window {format_utc(piece.start)}..{format_utc(piece.end)}"
    if not repage:
        log.warning(
            "%s: API total %s (seen %s) but %d rows received; paging it once more",
            where,
            result.api_total,
            sorted(result.totals),
            result.rows_received,
        )
        return "repage"
    if not moved:
        raise ApiContractError(
            f"{where}: the API reported total={result.api_total} on every page of two passes but served "
            f"{result.rows_received} rows; nothing from this window was committed"
        )
    log.warning(
        "%s: API total still moving (seen %s, %d rows received); stored and marked mismatch",
        where,
        sorted(result.totals),
        result.rows_received,
    )
    return "mismatch"


def api_query(endpoint: Endpoint, piece: Window, page_size: int) -> str:
    """The slice's request without its offset, so a record says exactly what api_total counted."""
    params = {
        **dict(endpoint.fixed_params),
        "start": format_api_time(piece.start),
        "end": format_api_time(piece.end),
    }
    if endpoint.page_param:
        params[endpoint.page_param] = str(endpoint.page_size(page_size))
    return f"GET {endpoint.path}?{urlencode(sorted(params.items()))}"


def _fill(result: SliceResult, final: PagePass, verdict: Verdict, piece: Window, page_size: int) -> None:
    """The slice's record from its final pass (request costs are charged separately)."""
    result.pages = final.pages
    result.rows_received = final.rows_received
    result.duplicates_dropped = final.duplicates_dropped
    result.out_of_window = final.out_of_window
    result.quarantined = final.quarantined
    result.drift_fields = Counter(final.drift)
    result.api_total = final.api_total
    result.total_mismatch = verdict != "ok" or result.repaged
    result.status = "mismatch" if verdict == "mismatch" else "staged"
    result.rows_written = result.rows_new = len(final.kept_ids)
    result.id_set_digest = id_set_digest(final.kept_ids)  # exactly the ids the staged file holds
    if final.reader is not None:
        result.api_query = api_query(final.reader.endpoint, piece, page_size)
        result.api_features = final.reader.features.describe()
    result.deprecations = list(final.deprecations)


def _discard(tables: Tables, result: PagePass) -> None:
    """Delete a pass's staged file that will never be committed (no reader can have seen it)."""
    if result.staged is not None:
        tables.lake.delete(f"{AUDIT_EVENTS_TABLE.name}/{result.staged.path}")


def _keep_new(
    batch: AuditBatch,
    piece: Window,
    stored: set[str],
    result: PagePass,
    seam: Counter[tuple[object, ...]] | None = None,
) -> pa.Table:
    """Rows inside the slice whose ids are neither stored already nor seen earlier in this pass.

    ``seam`` holds content keys of rows the other audit API stored (audit/flavours.py); a row
    matching one is the same event under another kind of id, and is dropped as a duplicate.
    """
    table = batch.table
    result.quarantined += len(batch.quarantined)
    result.drift.update(batch.drift)
    times = table.column("event_time")
    time_type = AUDIT_EVENTS.field("event_time").type
    inside = pc.and_(
        pc.greater_equal(times, pa.scalar(piece.start, time_type)),
        pc.less(times, pa.scalar(piece.end, time_type)),
    )
    in_window = table.filter(inside)
    result.out_of_window += table.num_rows - in_window.num_rows
    result.api_ids.update(in_window.column("event_id").to_pylist())
    candidates = drop_seam_duplicates(in_window, seam) if seam else in_window
    ids = candidates.column("event_id").to_pylist()
    keep: list[bool] = []
    for event_id in ids:
        new = event_id not in stored and event_id not in result.kept_ids
        keep.append(new)
        if new:
            result.kept_ids.add(event_id)
    kept = candidates.filter(pa.array(keep, type=pa.bool_())) if keep else candidates
    result.duplicates_dropped += in_window.num_rows - kept.num_rows
    return kept
