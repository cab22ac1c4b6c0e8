"""Tamper-evident manifests: one per committed window, run or compaction, chained by sha256.

Why: an auditor asks "has anything changed since it was stored?". Every Delta commit a stream
makes gets a manifest naming the table versions it made, the files each added (sha256, bytes,
rows) and removed, its id-set digest, event-time range, the API's total and the query that
produced it. Each manifest carries the sha256 of the previous manifest of its stream, so editing,
deleting or reordering any manifest breaks the chain, and editing a data file no longer matches
the manifest naming it. A compaction's manifest also records the id-set digest of the files it
retired, so ``verify`` can prove it lost nothing after those files are vacuumed.

Manifests are rows of the ``_ledger/manifests`` Delta table (stream, seq, sha256, prev_sha256,
the canonical JSON). Appending one is an optimistic commit that sets the app transaction
``runai-ledger/manifests/<stream>`` to the new seq: two writers extending one chain at once
conflict, and the loser re-reads the head and appends after it, so the chain never forks. The
head is found from that transaction and one pruned read, not by listing anything.

When a signing key is configured the chain head is also signed with HMAC-SHA256 in
``_manifests/<stream>/HEAD.json``; the key is read from the environment and never logged.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runai_extract import __version__
from runai_extract.core.errors import ConcurrentCommitError, StateError
from runai_extract.core.times import format_utc
from runai_extract.ledger.run_records import SliceResult
from transforms.catalog import MANIFESTS_TABLE, STREAM_TABLES
from transforms.digest import id_set_digest
from transforms.schemas import SCHEMA_VERSION
from transforms.storage import Lake
from transforms.tables import Commit, Tables, TableSpec

if TYPE_CHECKING:
    from deltalake import DeltaTable

HEAD_DIR = "_manifests"
HEAD_NAME = "HEAD.json"
GENESIS = "0" * 64
SIGNING_KEY_ENV = "RUNAI_LEDGER_SIGNING_KEY"
MANIFEST_FORMAT = 2
MAX_APPEND_ATTEMPTS = 8
# Query parameters the audit extractor sends for every window (pagination.audit_pages).
AUDIT_SORT = {"sortBy": "timestamp", "sortOrder": "asc"}


@dataclass(frozen=True)
class ChainHead:
    """The last manifest of a stream: what an export is cut from and what HEAD.json signs."""

    stream: str
    seq: int
    sha256: str


@dataclass(frozen=True)
class StoredManifest:
    """One row of the manifests table, as stored."""

    stream: str
    seq: int
    sha256: str
    prev_sha256: str
    raw: bytes


@dataclass
class Manifested:
    """What one manifest vouches for: commits, files added and retired, and their ids."""

    stream: str
    status: str
    window_start: datetime
    window_end: datetime
    commits: list[Commit]
    id_column: str
    api_total: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    removed_id_digest: str | None = None  # compactions: the ids of the files they retired


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


def chain_app(stream: str) -> str:
    return f"runai-ledger/manifests/{stream}"


def chain_head(lake: Lake, stream: str) -> ChainHead | None:
    """The newest manifest of ``stream``, hashed as stored; None before the first."""
    tables = Tables(lake)
    return tables.with_newest(MANIFESTS_TABLE, lambda snapshot: head_at(tables, snapshot, stream))


def head_at(tables: Tables, snapshot: DeltaTable | None, stream: str) -> ChainHead | None:
    """The newest manifest of ``stream`` in ``snapshot`` of the manifests table."""
    if snapshot is None:
        return None
    seq = tables.app_version(MANIFESTS_TABLE, chain_app(stream), snapshot=snapshot)
    if seq is None:
        return None
    rows = tables.read(
        MANIFESTS_TABLE, ["stream", "seq", "sha256"], snapshot=snapshot, time_range=("seq", seq, seq + 1)
    )
    for row in rows.to_pylist():
        if row["stream"] == stream:
            return ChainHead(stream, seq, row["sha256"])
    raise StateError(
        f"the manifest chain of {stream} names seq {seq} but its row is missing; run runai-ledger verify"
    )


def read_chain(lake: Lake, stream: str) -> list[StoredManifest]:
    """Every manifest of ``stream`` in seq order (verify walks these)."""
    rows = Tables(lake).read(MANIFESTS_TABLE, ["stream", "seq", "sha256", "prev_sha256", "manifest"])
    mine = rows.filter(pc.equal(rows.column("stream"), stream)).sort_by("seq")
    return [
        StoredManifest(r["stream"], int(r["seq"]), r["sha256"], r["prev_sha256"], r["manifest"].encode())
        for r in mine.to_pylist()
    ]


def read_chain_since(lake: Lake, stream: str, seq: int) -> list[StoredManifest]:
    """The manifests of ``stream`` from ``seq`` on, in seq order (an incremental verify's part)."""
    rows = Tables(lake).read(
        MANIFESTS_TABLE,
        ["stream", "seq", "sha256", "prev_sha256", "manifest"],
        time_range=("seq", seq, 2**62),
    )
    mine = rows.filter(pc.equal(rows.column("stream"), stream)).sort_by("seq")
    return [
        StoredManifest(r["stream"], int(r["seq"]), r["sha256"], r["prev_sha256"], r["manifest"].encode())
        for r in mine.to_pylist()
    ]


def read_links(lake: Lake, stream: str) -> pa.Table:
    """(seq, sha256, prev_sha256) of every manifest of ``stream``, in seq order: the chain's links."""
    rows = Tables(lake).read(MANIFESTS_TABLE, ["stream", "seq", "sha256", "prev_sha256"])
    return rows.filter(pc.equal(rows.column("stream"), stream)).sort_by("seq")


def list_streams(lake: Lake) -> list[str]:
    """Streams that have at least one manifest."""
    rows = Tables(lake).read(MANIFESTS_TABLE, ["stream"])
    return sorted(set(rows.column("stream").to_pylist()))


def append_manifest(
    lake: Lake, record: Manifested, run_id: str, extra_txns: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Hash the files ``record`` names and append its manifest to the stream's chain; returns it."""
    body = _body(lake, record, run_id)
    tables = Tables(lake)
    for _ in range(MAX_APPEND_ATTEMPTS):
        snapshot = tables.ensure(MANIFESTS_TABLE)
        head = head_at(tables, snapshot, record.stream)
        doc = {**body, "seq": head.seq + 1 if head else 1, "prev_sha256": head.sha256 if head else GENESIS}
        doc["written_at"] = format_utc(datetime.now(UTC))
        raw = canonical_json(doc)
        row = pa.table(
            {
                "stream": [record.stream],
                "seq": [doc["seq"]],
                "sha256": [sha256_hex(raw)],
                "prev_sha256": [doc["prev_sha256"]],
                "manifest": [raw.decode()],
                "written_at": [datetime.now(UTC)],
            },
            schema=MANIFESTS_TABLE.schema,
        )
        files = [tables.stage(MANIFESTS_TABLE, row)]
        try:
            tables.commit(
                MANIFESTS_TABLE,
                files,
                snapshot=snapshot,
                app_txns={chain_app(record.stream): doc["seq"], **dict(extra_txns or {})},
            )
        except ConcurrentCommitError:
            lake.delete(f"{MANIFESTS_TABLE.name}/{files[0].path}")
            continue
        key = signing_key(SIGNING_KEY_ENV)
        if key is not None:
            write_signed_head(lake, ChainHead(record.stream, doc["seq"], sha256_hex(raw)), key)
        return doc
    raise ConcurrentCommitError(f"the manifest chain of {record.stream} kept moving; rerun")


def _body(lake: Lake, record: Manifested, run_id: str) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    removed: list[str] = []
    ids: list[str] = []
    times: list[datetime] = []
    for commit in record.commits:
        for add in commit.adds:
            rel = f"{commit.table}/{add.path}"
            data = lake.read_bytes(rel)
            if data is None:
                raise StateError(f"{rel} vanished before its manifest was written")
            files.append(
                {"path": rel, "rows": int(add.rows or 0), "bytes": len(data), "sha256": sha256_hex(data)}
            )
            ids.extend(_ids(lake, rel, record.id_column, times))
        removed.extend(f"{commit.table}/{rem.path}" for rem in commit.removes)
    return {
        "format": MANIFEST_FORMAT,
        "stream": record.stream,
        "run_id": run_id,
        "status": record.status,
        "commits": [
            {"table": c.table, "version": c.version, "operation": c.operation} for c in record.commits
        ],
        "window": {"start": format_utc(record.window_start), "end": format_utc(record.window_end)},
        "files": sorted(files, key=lambda f: f["path"]),
        "removed": sorted(removed),
        "rows": sum(f["rows"] for f in files),
        "id_count": len(set(ids)),
        "id_digest": id_set_digest(ids),
        "id_column": record.id_column,
        "removed_id_digest": record.removed_id_digest,
        "min_event_time": format_utc(min(times)) if times else None,
        "max_event_time": format_utc(max(times)) if times else None,
        "api_total": record.api_total,
        "params": dict(record.params),
        "schema_version": SCHEMA_VERSION,
        "code_version": code_version(),
    }


def _ids(lake: Lake, rel: str, id_column: str, times: list[datetime]) -> list[str]:
    """The id column of one file (and its event-time range when it has one), reading only those."""
    schema = pq.read_schema(lake.full_path(rel), filesystem=lake.fs)
    columns = [id_column] + (["event_time"] if "event_time" in schema.names else [])
    table = lake.read_parquet(rel, columns)
    if "event_time" in columns:
        bounds = pc.min_max(table.column("event_time"))
        if bounds["min"].is_valid:
            times.extend([bounds["min"].as_py(), bounds["max"].as_py()])
    return [str(v) for v in table.column(id_column).drop_null().to_pylist()]


def file_ids(lake: Lake, rels: Sequence[str], id_column: str) -> list[str]:
    """The ids held by the files ``rels`` (a compaction's retired files, before vacuum)."""
    ignored: list[datetime] = []
    return [i for rel in rels for i in _ids(lake, rel, id_column, ignored)]


def record_audit_window(
    lake: Lake, stream: str, result: SliceResult, run_id: str, page_size: int, commit: Commit
) -> None:
    """The audit pipeline's one call: manifest a committed (or mismatch) window's commit."""
    record = Manifested(
        stream=stream,
        status=result.status,
        window_start=result.window_start,
        window_end=result.window_end,
        commits=[commit],
        id_column="event_id",
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
    commits: list[Commit],
    params: Mapping[str, Any],
) -> None:
    """Manifest one run of a usage stream (workloads, org): the commits it made to its tables.

    A usage run is a window [since, server time) over a live list rather than a time-sliced
    query; a run that found nothing new still gets a manifest, the record that the period was
    looked at.
    """
    record = Manifested(
        stream=stream,
        status=result.status,
        window_start=result.window_start,
        window_end=result.window_end,
        commits=commits,
        id_column="row_hash",
        api_total=result.api_total,
        params=params,
    )
    append_manifest(lake, record, run_id)


def stream_tables(stream: str) -> tuple[TableSpec, ...]:
    return STREAM_TABLES.get(stream, ())


def stream_of(spec: TableSpec) -> str:
    """The stream whose manifest chain vouches for ``spec``'s files."""
    for stream, specs in STREAM_TABLES.items():
        if spec in specs:
            return stream
    raise StateError(f"table {spec.name} belongs to no manifested stream")


LEDGER_STREAM = "ledger"


def manifested_app(spec: TableSpec) -> str:
    return f"runai-ledger/manifested/{spec.name}"


def manifest_pending(lake: Lake, run_id: str, stream: str = LEDGER_STREAM) -> dict[str, Any] | None:
    """One manifest for every commit the ledger made to ``stream``'s tables since the last one.

    Used for the ledger's own records (run records, quarantine, reconciliation), which take a
    commit per window: manifesting them once per run keeps the chain short. Only commits that
    carry the ledger's commit token are taken; a commit made by anyone else stays unmanifested
    and ``verify`` names its files. Compactions have manifests of their own (maintenance.py).
    """
    tables = Tables(lake)
    commits: list[Commit] = []
    pointers: dict[str, int] = {}
    for spec in stream_tables(stream):
        newest = tables.version(spec)
        if newest is None:
            continue
        done = tables.app_version(MANIFESTS_TABLE, manifested_app(spec))
        start = 0 if done is None else done + 1
        for version in range(start, newest + 1):
            commit = tables.commit_at(spec, version)
            if commit.operation != "OPTIMIZE" and "commit_token" in commit.metadata and commit.adds:
                commits.append(commit)
        pointers[manifested_app(spec)] = newest
    if not commits:
        return None
    times = [c.timestamp for c in commits]
    record = Manifested(LEDGER_STREAM, "committed", min(times), max(times), commits, id_column="run_id")
    return append_manifest(lake, record, run_id, pointers)


# -- signing -----------------------------------------------------------------


def signing_key(env_name: str) -> bytes | None:
    """The HMAC key from ``env_name``, or None when unset; callers never log or echo it."""
    value = os.environ.get(env_name, "")
    return value.encode() if value else None


def head_hmac(head: ChainHead, key: bytes) -> str:
    message = f"{head.stream}\n{head.seq}\n{head.sha256}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_path(stream: str) -> str:
    return f"{HEAD_DIR}/{stream}/{HEAD_NAME}"


def write_signed_head(lake: Lake, head: ChainHead, key: bytes) -> None:
    doc = {"stream": head.stream, "seq": head.seq, "sha256": head.sha256, "hmac": head_hmac(head, key)}
    lake.write_bytes(head_path(head.stream), canonical_json(doc))


def read_signed_head(lake: Lake, stream: str) -> dict[str, Any] | None:
    raw = lake.read_bytes(head_path(stream))
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
