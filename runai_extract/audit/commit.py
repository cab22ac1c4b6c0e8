"""Committing a staged audit slice: its rows and (when contiguous) the watermark, in one Delta commit.

Runs in the one committing thread, in window order. Each attempt reads the table's newest
version, drops from the staged file any id that version already holds for the slice's time
range (another writer may have stored the same window meanwhile), and commits the file with two
application transactions: the stream's commit counter, which makes two writers of the audit log
conflict instead of both landing, and the watermark, moved to the slice's end only when the slice
starts at or before the current watermark (a backfill past a gap must not hide the gap). On a
conflict the attempt is repeated against the newer version; nothing is re-paged.

After the commit come the manifest and the run record (ledger/): a crash between them leaves the
rows and the watermark together without those two, and the next audit run (or ``compact``)
writes them from the commit's own metadata (ledger/manifests.recover_audit_commits) before it
does anything else, so after a rerun ``verify`` passes and ``status`` shows no gap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from runai_extract.audit.slices import StagedSlice, stored_ids
from runai_extract.core.errors import ConcurrentCommitError, StorageError
from runai_extract.core.times import format_utc
from runai_extract.ledger.watermarks import commit_app, from_micros, to_micros, watermark_app
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.digest import id_set_digest
from transforms.tables import Commit, StagedFile, Tables

log = logging.getLogger(__name__)

STREAM = "audit"
MAX_COMMIT_ATTEMPTS = 8


@dataclass(frozen=True)
class SliceCommit:
    """What committing one slice did: the Delta commit (None when there was nothing to commit)."""

    commit: Commit | None
    watermark_moved: bool


def commit_slice(tables: Tables, staged: StagedSlice, run_id: str, mode: str) -> SliceCommit:
    """Commit ``staged`` (already paged and checked) as one version of the audit table."""
    if staged.final is None:
        raise StorageError(f"slice {format_utc(staged.piece.start)} has nothing staged to commit")
    for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
        snapshot = tables.ensure(AUDIT_EVENTS_TABLE)
        files = _without_stored(tables, staged, snapshot)
        txns = _transactions(tables, staged, snapshot)
        moves = watermark_app(STREAM) in txns
        if not files and not moves:
            return SliceCommit(None, False)
        try:
            commit = tables.commit(
                AUDIT_EVENTS_TABLE,
                files,
                snapshot=snapshot,
                app_txns=txns,
                metadata=_metadata(staged, run_id, mode),
            )
        except ConcurrentCommitError:
            log.info("audit slice %s: another writer committed first (attempt %d)", _where(staged), attempt)
            continue
        staged.result.files = [f"{AUDIT_EVENTS_TABLE.name}/{add.path}" for add in commit.adds]
        return SliceCommit(commit, moves)
    raise ConcurrentCommitError(
        f"audit slice {_where(staged)}: other writers kept committing first ({MAX_COMMIT_ATTEMPTS} attempts); "
        "rerun the sync"
    )


def _without_stored(tables: Tables, staged: StagedSlice, snapshot: object) -> list[StagedFile]:
    """The staged file, rewritten without ids the table gained since the slice was paged."""
    final = staged.final
    if final is None or final.staged is None:
        return []
    now_stored = stored_ids(tables, staged.piece, snapshot) - staged.stored_before
    overlap = final.kept_ids & now_stored
    if not overlap:
        return [final.staged]
    table_dir = AUDIT_EVENTS_TABLE.name
    path = f"{table_dir}/{final.staged.path}"
    rows = tables.lake.read_parquet(path)
    keep = pc.invert(pc.is_in(rows.column("event_id"), value_set=pa.array(sorted(overlap))))
    remaining = rows.filter(keep)
    tables.lake.delete(path)
    final.kept_ids -= overlap
    staged.stored_before |= now_stored
    staged.result.duplicates_dropped += len(overlap)
    staged.result.rows_written = staged.result.rows_new = len(final.kept_ids)
    staged.result.id_set_digest = id_set_digest(final.kept_ids)
    final.staged = None
    if remaining.num_rows:
        final.staged = tables.stage(AUDIT_EVENTS_TABLE, remaining, final_partition(staged))
    return [final.staged] if final.staged else []


def final_partition(staged: StagedSlice) -> dict[str, str]:
    return {"event_date": staged.piece.start.date().isoformat()}


def _transactions(tables: Tables, staged: StagedSlice, snapshot: object) -> dict[str, int]:
    counter = tables.app_version(AUDIT_EVENTS_TABLE, commit_app(STREAM), snapshot=snapshot)  # type: ignore[arg-type]
    txns = {commit_app(STREAM): (counter or 0) + 1}
    current = tables.app_version(AUDIT_EVENTS_TABLE, watermark_app(STREAM), snapshot=snapshot)  # type: ignore[arg-type]
    contiguous = current is None or staged.piece.start <= from_micros(current)
    if contiguous and (current is None or to_micros(staged.piece.end) > current):
        txns[watermark_app(STREAM)] = to_micros(staged.piece.end)
    return txns


def _metadata(staged: StagedSlice, run_id: str, mode: str) -> dict[str, object]:
    """Kept in the commit itself: which run and window, what the API said (for verify and people)."""
    result = staged.result
    return {
        "stream": STREAM,
        "run_id": run_id,
        "mode": mode,
        "window_start": format_utc(staged.piece.start),
        "window_end": format_utc(staged.piece.end),
        "status": "mismatch" if result.status == "mismatch" else "committed",
        "api_total": result.api_total,
        "api_query": result.api_query,
        "rows": result.rows_new,
    }


def _where(staged: StagedSlice) -> str:
    return f"{format_utc(staged.piece.start)}..{format_utc(staged.piece.end)}"
