"""Tamper-evident manifests: one per committed window, chained by the sha256 of the previous one.

Why: an auditor asks "has anything changed since it was stored?". Every window a sync, backfill
or recheck stores gets a manifest naming its files (sha256, byte size, rows), its id-set digest,
event-time range, the API's total and the query that produced it. Each manifest carries the
sha256 of the previous manifest of its stream, so editing, deleting or reordering any manifest
breaks the chain, and editing a data file no longer matches the latest manifest naming it.

Manifests live in the lake at ``_manifests/<stream>/<seq:08d>.json`` as canonical JSON (sorted
keys, no whitespace), so their hash is reproducible from the stored bytes alone. They are
written by the one writer holding the stream's lock, in window order, right before the
watermark commit; a crash between the two leaves a complete chain and the rerun appends a new
manifest that supersedes the old entry for the same file path.

When a signing key is configured the chain head is also signed with HMAC-SHA256 in
``_manifests/<stream>/HEAD.json``; the key is read from the environment and never logged.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runai_extract import __version__
from runai_extract.core.errors import StateError
from runai_extract.core.times import format_utc
from runai_extract.ledger.run_records import SliceResult
from transforms.digest import id_set_digest
from transforms.schemas import AUDIT_EVENTS_DIR, SCHEMA_VERSION
from transforms.storage import Lake
from transforms.usage_schemas import (
    ORG_DIR,
    WORKLOAD_EVENTS_DIR,
    WORKLOAD_HISTORY_DIR,
    WORKLOAD_SNAPSHOTS_DIR,
)

MANIFESTS_DIR = "_manifests"
HEAD_NAME = "HEAD.json"
GENESIS = "0" * 64
SIGNING_KEY_ENV = "RUNAI_LEDGER_SIGNING_KEY"
MANIFEST_FORMAT = 1
# Where each stream keeps its data files: verify flags files there that no manifest names.
DATA_DIRS: dict[str, tuple[str, ...]] = {
    "audit": (AUDIT_EVENTS_DIR,),
    "org": (ORG_DIR,),
    "workloads": (WORKLOAD_SNAPSHOTS_DIR, WORKLOAD_HISTORY_DIR, WORKLOAD_EVENTS_DIR),
}
# The column whose values make a window's id set: event ids for audit; for the usage streams,
# whose rows are versions of entities, the row_hash every row carries.
USAGE_ID_COLUMN = "row_hash"
# Query parameters the audit extractor sends for every window (pagination.audit_pages).
AUDIT_SORT = {"sortBy": "timestamp", "sortOrder": "asc"}


@dataclass(frozen=True)
class FileEntry:
    """One data file a window stored, with the rows it holds."""

    path: str
    rows: int


@dataclass(frozen=True)
class WindowRecord:
    """What a stream hands over to be manifested; generic so other streams can use it."""

    stream: str
    data_dir: str
    window_start: datetime
    window_end: datetime
    status: str
    files: list[FileEntry]
    id_digest: str
    id_count: int
    min_event_time: datetime | None
    max_event_time: datetime | None
    api_total: int | None
    params: Mapping[str, Any] = field(default_factory=dict)
    id_column: str = "event_id"


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """The one byte form of a manifest: sorted keys, compact; its sha256 is the manifest's hash."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def code_version() -> str:
    """Package version plus ``git describe`` when the code runs from a checkout; never fails."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--tags"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    suffix = described.stdout.strip() if described.returncode == 0 else ""
    return f"{__version__}+{suffix}" if suffix else __version__


def stream_dir(stream: str) -> str:
    return f"{MANIFESTS_DIR}/{stream}"


def manifest_path(stream: str, seq: int) -> str:
    return f"{stream_dir(stream)}/{seq:08d}.json"


def list_manifests(lake: Lake, stream: str) -> list[str]:
    """The stream's manifest paths in sequence-name order (the head file excluded)."""
    return [p for p in lake.list_files(stream_dir(stream), ".json") if not p.endswith("/" + HEAD_NAME)]


def list_streams(lake: Lake) -> list[str]:
    """Streams that have at least one manifest."""
    streams = {p.split("/")[1] for p in lake.list_files(MANIFESTS_DIR, ".json") if p.count("/") == 2}
    return sorted(streams)


@dataclass(frozen=True)
class ChainHead:
    """The last manifest of a stream: what an export is cut from and what HEAD.json signs."""

    stream: str
    seq: int
    sha256: str


def chain_head(lake: Lake, stream: str) -> ChainHead | None:
    """The newest manifest by file name, hashed as stored.

    Deliberately not parsed: a damaged newest manifest must not stop ingestion. The next one
    still chains to its bytes, and verify reports the damage.
    """
    numbered = [p for p in list_manifests(lake, stream) if _stem(p).isdigit()]
    if not numbered:
        return None
    raw = lake.read_bytes(numbered[-1])
    if raw is None:
        raise StateError(f"manifest {numbered[-1]} vanished while being read; run runai-ledger verify")
    return ChainHead(stream, int(_stem(numbered[-1])), sha256_hex(raw))


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".json")


def append_manifest(lake: Lake, record: WindowRecord, run_id: str) -> dict[str, Any]:
    """Hash the window's files and append its manifest to the stream's chain; returns the manifest.

    The caller must hold the stream's writer lock (state.writer_lock): the chain has one writer.
    """
    head = chain_head(lake, record.stream)
    files = []
    for entry in record.files:
        data = lake.read_bytes(entry.path)
        if data is None:
            raise StateError(f"{entry.path} vanished before its manifest was written")
        files.append({"path": entry.path, "rows": entry.rows, "bytes": len(data), "sha256": sha256_hex(data)})
    doc: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "stream": record.stream,
        "seq": head.seq + 1 if head else 1,
        "prev_sha256": head.sha256 if head else GENESIS,
        "run_id": run_id,
        "status": record.status,
        "data_dir": record.data_dir,
        "window": {"start": format_utc(record.window_start), "end": format_utc(record.window_end)},
        "files": files,
        "rows": sum(e.rows for e in record.files),
        "id_count": record.id_count,
        "id_digest": record.id_digest,
        "id_column": record.id_column,
        "min_event_time": _ts(record.min_event_time),
        "max_event_time": _ts(record.max_event_time),
        "api_total": record.api_total,
        "params": dict(record.params),
        "schema_version": SCHEMA_VERSION,
        "code_version": code_version(),
        "written_at": format_utc(datetime.now(UTC)),
    }
    raw = canonical_json(doc)
    lake.write_bytes(manifest_path(record.stream, doc["seq"]), raw)
    key = signing_key(SIGNING_KEY_ENV)
    if key is not None:
        write_signed_head(lake, ChainHead(record.stream, doc["seq"], sha256_hex(raw)), key)
    return doc


def record_audit_window(lake: Lake, stream: str, result: SliceResult, run_id: str, page_size: int) -> None:
    """The audit pipeline's one call: manifest a committed or mismatch slice (others are skipped)."""
    if result.status not in ("committed", "mismatch"):
        return
    if result.id_set_digest is not None:  # the slice digested exactly the ids it wrote
        rows, _, low, high = _scan_audit(lake, result.files, read_ids=False)
        digest, id_count = result.id_set_digest, sum(rows.values())
    else:
        rows, ids, low, high = _scan_audit(lake, result.files, read_ids=True)
        digest, id_count = id_set_digest(ids), len(ids)
    record = WindowRecord(
        stream=stream,
        data_dir=AUDIT_EVENTS_DIR,
        window_start=result.window_start,
        window_end=result.window_end,
        status=result.status,
        files=[FileEntry(p, rows[p]) for p in result.files],
        id_digest=digest,
        id_count=id_count,
        min_event_time=low,
        max_event_time=high,
        api_total=result.api_total,
        params={
            "start": format_utc(result.window_start),
            "end": format_utc(result.window_end),
            **AUDIT_SORT,
            "numberOfSamples": page_size,
        },
    )
    append_manifest(lake, record, run_id)


def record_usage_run(
    lake: Lake,
    stream: str,
    result: SliceResult,
    run_id: str,
    params: Mapping[str, Any],
) -> None:
    """Manifest one run of a usage stream (workloads, org): its files and their rows' hashes.

    A usage run is a window [since, server time) over a live list rather than a time-sliced
    query, so its manifest names the files the run wrote in all of the stream's directories and
    digests their row_hash values; a run that found nothing new still gets a manifest, the record
    that the period was looked at.
    """
    rows: dict[str, int] = {}
    hashes: list[str] = []
    for rel in result.files:
        table = pq.read_table(lake.full_path(rel), columns=[USAGE_ID_COLUMN], filesystem=lake.fs)
        rows[rel] = table.num_rows
        hashes.extend(table.column(USAGE_ID_COLUMN).to_pylist())
    record = WindowRecord(
        stream=stream,
        data_dir=DATA_DIRS[stream][0],
        window_start=result.window_start,
        window_end=result.window_end,
        status=result.status,
        files=[FileEntry(p, rows[p]) for p in result.files],
        id_digest=id_set_digest(hashes),
        id_count=len(set(hashes)),
        min_event_time=None,
        max_event_time=None,
        api_total=result.api_total,
        params=params,
        id_column=USAGE_ID_COLUMN,
    )
    append_manifest(lake, record, run_id)


def _scan_audit(
    lake: Lake, paths: list[str], *, read_ids: bool
) -> tuple[dict[str, int], list[str], datetime | None, datetime | None]:
    """Rows per file, the event ids (when asked) and the event-time range, reading those columns only.

    Times are reduced in Arrow (min/max), not converted row by row: a day of events is
    hundreds of thousands of rows and this runs inside the commit step.
    """
    rows: dict[str, int] = {}
    ids: list[str] = []
    lows: list[datetime] = []
    highs: list[datetime] = []
    columns = ["event_id", "event_time"] if read_ids else ["event_time"]
    for rel in paths:
        table = pq.read_table(lake.full_path(rel), columns=columns, filesystem=lake.fs)
        rows[rel] = table.num_rows
        if read_ids:
            ids.extend(table.column("event_id").drop_null().to_pylist())
        bounds = pc.min_max(table.column("event_time"))
        if bounds["min"].is_valid:
            lows.append(bounds["min"].as_py())
            highs.append(bounds["max"].as_py())
    return rows, ids, (min(lows) if lows else None), (max(highs) if highs else None)


def _ts(value: datetime | None) -> str | None:
    return format_utc(value) if value else None


# -- signing -----------------------------------------------------------------


def signing_key(env_name: str) -> bytes | None:
    """The HMAC key from ``env_name``, or None when unset; callers never log or echo it."""
    value = os.environ.get(env_name, "")
    return value.encode() if value else None


def head_hmac(head: ChainHead, key: bytes) -> str:
    message = f"{head.stream}\n{head.seq}\n{head.sha256}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def write_signed_head(lake: Lake, head: ChainHead, key: bytes) -> None:
    doc = {"stream": head.stream, "seq": head.seq, "sha256": head.sha256, "hmac": head_hmac(head, key)}
    lake.write_bytes(f"{stream_dir(head.stream)}/{HEAD_NAME}", canonical_json(doc))


def read_signed_head(lake: Lake, stream: str) -> dict[str, Any] | None:
    raw = lake.read_bytes(f"{stream_dir(stream)}/{HEAD_NAME}")
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
