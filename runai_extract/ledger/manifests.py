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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runai_extract import __version__
from runai_extract.core.errors import ConcurrentCommitError, StateError
from runai_extract.core.times import format_utc, parse_iso
from runai_extract.ledger.run_records import SliceResult, record_run
from runai_extract.ledger.watermarks import commit_app
from transforms.catalog import AUDIT_EVENTS_TABLE, INGEST_RUNS_TABLE, MANIFESTS_TABLE, STREAM_TABLES
from transforms.digest import id_set_digest
from transforms.schemas import SCHEMA_VERSION
from transforms.storage import Lake
from transforms.tables import LOG_DIR, Commit, Tables, TableSpec, parse_commit

if TYPE_CHECKING:
    from deltalake import DeltaTable

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
# How far another writer's clock may lag when missed manifests are looked for by written_at.
RECOVERY_CLOCK_MARGIN = timedelta(hours=1)


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
    lake: Lake,
    record: Manifested,
    run_id: str,
    extra_txns: Mapping[str, int] | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Hash the files ``record`` names and append its manifest to the stream's chain; returns it.

    ``extra`` adds keys to the manifest (``recovered_by``: the run that wrote a missed manifest).
    """
    body = {**_body(lake, record, run_id), **dict(extra or {})}
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


def recover_audit_commits(lake: Lake, run_id: str) -> dict[str, int]:
    """Finish what runs killed after an audit commit left undone: its manifest and its run record.

    Why: a slice's data commit, its manifest and its run record are three commits (three
    tables), so a run killed after the first (SIGKILL, a lost node) leaves rows that are stored,
    watermarked and read by every view, but that no manifest names (``verify`` would call them
    INSERTED for ever) and no run record covers (``status`` and export bundles would show a gap
    where the rows are). The next audit run (or maintenance) calls this first and writes both
    from what the commit recorded about itself (run, mode, window, rows, the API's total); a
    recovered manifest says ``recovered_by`` which run wrote it. Only the ledger's own commits
    (its commit token, stream and commit counter) are taken, and a manifest only while the
    commit's files are all live: a commit made by anyone else stays INSERTED, and files a
    compaction already vouched for need nothing more. A run still between its commit and its
    manifest at that moment gets a second manifest and run record of the same commit (verify
    reads the later one; the window is covered either way).

    Returns the pointer to store with the run's next manifest (``manifest_pending(pointers=)``):
    the audit version up to which every such commit is now complete, so the next run scans only
    what came after (empty while the audit table does not exist).
    """
    tables = Tables(lake)
    audit = tables.load(AUDIT_EVENTS_TABLE)
    if audit is None:
        return {}
    newest = audit.version()
    pointer = {manifested_app(AUDIT_EVENTS_TABLE): newest}
    ours = [
        commit
        for commit in _commits(tables, AUDIT_EVENTS_TABLE, _audit_scan_start(lake, tables), newest)
        if commit.operation != "OPTIMIZE" and _is_ledger_commit(commit, "audit")
    ]
    if not ours:
        return pointer
    _recover_manifests(lake, tables, audit, [c for c in ours if c.adds], run_id)
    _recover_run_records(lake, ours)
    return pointer


def _recover_manifests(
    lake: Lake, tables: Tables, audit: DeltaTable, commits: list[Commit], run_id: str
) -> None:
    if not commits:
        return
    named = _named_versions(lake, "audit", AUDIT_EVENTS_TABLE.name, min(c.timestamp for c in commits))
    live = {f.path for f in tables.live_files(AUDIT_EVENTS_TABLE, snapshot=audit)}
    for commit in commits:
        if commit.version in named or not all(a.path in live for a in commit.adds):
            continue
        meta = commit.metadata
        start, end = _window_of(commit)
        record = Manifested(
            stream="audit",
            status=str(meta.get("status") or "committed"),
            window_start=start,
            window_end=end,
            commits=[commit],
            id_column="event_id",
            api_total=_int_or_none(meta.get("api_total")),
            params={"start": format_utc(start), "end": format_utc(end), **AUDIT_SORT},
        )
        append_manifest(
            lake,
            record,
            str(meta.get("run_id") or run_id),
            {manifested_app(AUDIT_EVENTS_TABLE): commit.version},
            extra={"recovered_by": run_id},
        )


def _recover_run_records(lake: Lake, commits: list[Commit]) -> None:
    """The ingest_runs row of each commit whose run died before writing it (coverage reads these)."""
    windows = [(commit, *_window_of(commit)) for commit in commits]
    low = min(start for _, start, _ in windows)
    high = max(start for _, start, _ in windows) + timedelta(microseconds=1)
    rows = Tables(lake).read(
        INGEST_RUNS_TABLE, ["run_id", "stream", "window_start"], time_range=("window_start", low, high)
    )
    recorded = {(r["run_id"], r["window_start"]) for r in rows.to_pylist() if r["stream"] == "audit"}
    for commit, start, end in windows:
        meta = commit.metadata
        run = str(meta.get("run_id") or "")
        if (run, start) in recorded:
            continue
        rows_new = _int_or_none(meta.get("rows")) or 0
        result = SliceResult(
            start,
            end,
            status=str(meta.get("status") or "committed"),
            rows_written=rows_new,
            rows_new=rows_new,
            api_total=_int_or_none(meta.get("api_total")),
            api_query=meta.get("api_query") if isinstance(meta.get("api_query"), str) else None,
            files=[f"{AUDIT_EVENTS_TABLE.name}/{a.path}" for a in commit.adds],
        )
        record_run(
            lake, run, str(meta.get("mode") or "sync"), result, commit.timestamp, finished_at=commit.timestamp
        )
        recorded.add((run, start))


def _window_of(commit: Commit) -> tuple[datetime, datetime]:
    meta = commit.metadata
    start = _parse_utc(meta.get("window_start")) or commit.timestamp
    return start, _parse_utc(meta.get("window_end")) or commit.timestamp


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _audit_scan_start(lake: Lake, tables: Tables) -> int:
    """The first audit version not yet known to be manifested.

    From the pointer the last recovery stored; a chain written before there was a pointer starts
    at the newest audit version its head manifest names (older commits were written when a
    missing manifest could only be reported, and their log entries may be cleaned up by now).
    """
    chain = tables.load(MANIFESTS_TABLE)
    if chain is None:
        return 0
    done = tables.app_version(MANIFESTS_TABLE, manifested_app(AUDIT_EVENTS_TABLE), snapshot=chain)
    if done is not None:
        return done + 1
    head = chain_head(lake, "audit")
    if head is None:
        return 0
    rows = tables.read(
        MANIFESTS_TABLE,
        ["stream", "seq", "manifest"],
        snapshot=chain,
        time_range=("seq", head.seq, head.seq + 1),
    )
    versions = [
        int(c.get("version", -1))
        for row in rows.to_pylist()
        if row["stream"] == "audit"
        for c in (orjson.loads(row["manifest"]).get("commits") or [])
        if isinstance(c, dict) and c.get("table") == AUDIT_EVENTS_TABLE.name
    ]
    # Inclusive: a run killed between the head's manifest and its run record left the record undone.
    return max(versions, default=0)


def _commits(tables: Tables, spec: TableSpec, first: int, last: int) -> list[Commit]:
    """Versions ``first..last`` of ``spec`` as their log entries record them; an entry the log's
    cleanup already removed is skipped (its commit can no longer be described, only reported)."""
    found: list[Commit] = []
    for version in range(first, last + 1):
        raw = tables.lake.read_bytes(f"{spec.name}/{LOG_DIR}/{version:020d}.json")
        if raw is not None:  # other read errors raise: the run fails rather than skip a commit
            found.append(parse_commit(spec.name, version, raw))
    return found


def _is_ledger_commit(commit: Commit, stream: str) -> bool:
    """A data commit of ``stream`` as the ledger makes them: its token, stream and commit counter."""
    return (
        "commit_token" in commit.metadata
        and commit.metadata.get("stream") == stream
        and commit_app(stream) in commit.txns
    )


def _named_versions(lake: Lake, stream: str, table: str, since: datetime) -> set[int]:
    """Versions of ``table`` named by manifests of ``stream`` written since ``since`` (less an hour,
    for clocks of other writers): a manifest is always written after the commit it names."""
    rows = Tables(lake).read(
        MANIFESTS_TABLE,
        ["stream", "manifest"],
        time_range=("written_at", since - RECOVERY_CLOCK_MARGIN, datetime(9999, 1, 1, tzinfo=UTC)),
    )
    named: set[int] = set()
    for row in rows.to_pylist():
        if row["stream"] != stream:
            continue
        for item in orjson.loads(row["manifest"]).get("commits") or []:
            if isinstance(item, dict) and item.get("table") == table:
                named.add(int(item.get("version", -1)))
    return named


def _parse_utc(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_iso(text)[0]
    except ValueError:
        return None


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


def manifest_pending(
    lake: Lake, run_id: str, stream: str = LEDGER_STREAM, *, pointers: Mapping[str, int] | None = None
) -> dict[str, Any] | None:
    """One manifest for every commit the ledger made to ``stream``'s tables since the last one.

    Used for the ledger's own records (run records, quarantine, reconciliation), which take a
    commit per window: manifesting them once per run keeps the chain short. Only commits that
    carry the ledger's commit token are taken; a commit made by anyone else stays unmanifested
    and ``verify`` names its files. Compactions have manifests of their own (maintenance.py).
    ``pointers`` are stored with it too (how far :func:`recover_audit_commits` looked).
    """
    tables = Tables(lake)
    commits: list[Commit] = []
    pointers = dict(pointers or {})
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
