"""Walk every manifest chain and compare it with the tables: "has anything changed since?".

What is checked, per stream (docs/compliance.md has the long form):
- the chain: manifests are numbered 1..n without holes, each row's sha256 is the hash of its own
  canonical JSON, which names its own seq and the sha256 of the one before it; a deleted,
  reordered or edited manifest breaks one of these;
- the tables: replaying the manifests (files added, files retired by compaction) gives the files
  each of the stream's Delta tables must hold now. A live file no manifest names is an insertion
  (a commit made outside the ledger, or a run interrupted between its commit and its manifest);
  a named file the table no longer holds was removed without a manifest (deleted); a file whose
  bytes differ from its manifest is changed;
- the contents: rows and the id-set digest of every manifest whose files are all still live and
  intact are recomputed, so a consistently edited manifest is caught too; a compaction's new
  files must hold exactly the ids of the files it retired (recorded before they were vacuumed);
- the signed head, when a key is given: HEAD.json's HMAC and that it names the last manifest.

Reads one snapshot of each table; no lock is needed (writers never change a committed file).

Incremental by default: after a clean verify, a checkpoint (ledger/verify_checkpoints.py) records
where it ended, and the next verify proves only what came after and re-hashes only files whose size
or modification time changed, so its cost follows the new data, not the age of the ledger.
``full=True`` (``verify --full``) ignores the checkpoint and re-derives everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from runai_extract.ledger.manifests import (
    GENESIS,
    ChainHead,
    StoredManifest,
    canonical_json,
    head_hmac,
    head_path,
    list_streams,
    read_chain,
    read_chain_since,
    read_links,
    read_signed_head,
    sha256_hex,
    stream_tables,
)
from runai_extract.ledger.verify_checkpoints import Checkpoint, read_checkpoint, write_checkpoint
from transforms.digest import id_set_digest
from transforms.storage import Lake
from transforms.tables import Tables


@dataclass(frozen=True)
class Problem:
    """One finding: what kind, which file, which window (when known), and what exactly differs."""

    kind: str  # changed | deleted | inserted | chain | manifest | signature | content
    path: str
    detail: str
    window: str = ""


@dataclass
class StreamReport:
    """What verify found for one stream."""

    stream: str
    manifests: int = 0
    files_checked: int = 0
    bytes_checked: int = 0
    head: ChainHead | None = None
    signature: str = "unsigned"
    problems: list[Problem] = field(default_factory=list)
    # "full", or "incremental from #<seq>": what this verify proved anew.
    mode: str = "full"
    files_unchanged: int = 0  # live files not re-hashed: same size and mtime as when last verified
    note: str = ""  # why an incremental verify ran in full (a checkpoint it could not use)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Entry:
    seq: int
    window: str
    file: dict[str, Any]


def verify_lake(
    lake: Lake, streams: list[str] | None, key: bytes | None, *, full: bool = False
) -> list[StreamReport]:
    """Verify the given streams (default: every stream with manifests, and audit)."""
    chosen = streams or sorted(set(list_streams(lake)) | {"audit"})
    return [verify_stream(lake, stream, key, full=full) for stream in chosen]


def verify_stream(lake: Lake, stream: str, key: bytes | None, *, full: bool = False) -> StreamReport:
    """Walk the chain of ``stream``, compare it with the stream's tables, check the signed head.

    From the stream's verify checkpoint unless ``full`` (or there is no usable checkpoint); a
    clean result moves the checkpoint to the head it proved.
    """
    report = StreamReport(stream)
    checkpoint = None
    if not full:
        checkpoint, report.note = read_checkpoint(lake, stream, key)
    if checkpoint is None:
        docs = _walk_chain(read_chain(lake, stream), report)
        expected = _expected_files(docs)
    else:
        report.mode = f"incremental from #{checkpoint.seq}"
        links = read_links(lake, stream)
        _check_links(links, report)
        docs = _walk_since(read_chain_since(lake, stream, checkpoint.seq), checkpoint, report)
        report.manifests = links.num_rows
        expected = _expected_files(docs, start=_checkpointed(checkpoint))
    live = _live_files(lake, stream)
    stamps = _stamps(lake, stream)
    _check_files(lake, expected, live, report, stamps=stamps, known=checkpoint.files if checkpoint else {})
    _check_contents(lake, docs, expected, live, report)
    _check_head(lake, stream, key, report)
    if report.ok and report.head is not None:
        write_checkpoint(lake, _next_checkpoint(report.head, checkpoint, expected, stamps), key)
    return report


def _walk_since(
    rows: list[StoredManifest], checkpoint: Checkpoint, report: StreamReport
) -> list[tuple[str, dict[str, Any]]]:
    """The chain from the checkpointed manifest on: that one unchanged, the rest walked in full."""
    where = f"manifest {checkpoint.stream}#{checkpoint.seq}"
    first = rows[0] if rows else None
    if first is None or first.seq != checkpoint.seq:
        report.problems.append(
            Problem(
                "chain", where, "the manifest the last verify ended at is gone (deleted); run verify --full"
            )
        )
        return _walk_chain(rows, report, start=(checkpoint.seq + 1, checkpoint.sha256))
    if first.sha256 != checkpoint.sha256 or sha256_hex(first.raw) != first.sha256:
        report.problems.append(
            Problem("manifest", where, "changed since the last verify proved it (edited); run verify --full")
        )
    report.head = ChainHead(first.stream, first.seq, first.sha256)
    return _walk_chain(rows[1:], report, start=(checkpoint.seq + 1, checkpoint.sha256))


def _check_links(links: pa.Table, report: StreamReport) -> None:
    """Seqs 1..n without holes, each naming the recorded hash of the one before: three columns only.

    What an incremental verify keeps checking about the manifests before its checkpoint (a
    deleted, reordered or relinked manifest), without re-reading their JSON.
    """
    seqs = links.column("seq").to_pylist()
    shas = links.column("sha256").to_pylist()
    prevs = links.column("prev_sha256").to_pylist()
    before = GENESIS
    for index, (seq, sha, prev) in enumerate(zip(seqs, shas, prevs, strict=True)):
        where = f"manifest {report.stream}#{seq}"
        if seq != index + 1:
            report.problems.append(
                Problem("chain", where, f"stored as #{seq} where #{index + 1} belongs (deleted or reordered)")
            )
            return
        if prev != before:
            report.problems.append(
                Problem("chain", where, "prev_sha256 does not match the manifest before it (relinked)")
            )
            return
        before = sha


def _walk_chain(
    rows: list[StoredManifest], report: StreamReport, start: tuple[int, str] = (1, GENESIS)
) -> list[tuple[str, dict[str, Any]]]:
    """Parse the manifests in seq order; report holes, edits and broken links.

    Each row records its manifest's sha256; the next manifest links to that recorded hash. An
    edited manifest therefore shows as content that no longer matches its own hash, and one
    whose recorded hash was "fixed up" as well breaks the next manifest's link.
    """
    docs: list[tuple[str, dict[str, Any]]] = []
    expected, prev_sha_start = start
    prev_sha: str | None = prev_sha_start
    for row in rows:
        report.manifests += 1
        where = f"manifest {row.stream}#{row.seq}"
        if row.seq != expected:
            missing = f"{expected}" if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
            report.problems.append(
                Problem("chain", where, f"manifest(s) {missing} missing before seq {row.seq} (deleted)")
            )
            prev_sha = None  # the link to the missing one cannot be checked; the next can
        expected = row.seq + 1
        doc = _parse(row.raw)
        window = _window_text(doc) if doc else ""
        if sha256_hex(row.raw) != row.sha256:
            report.problems.append(
                Problem("manifest", where, "its content does not match its recorded sha256 (edited)", window)
            )
        if doc is None:
            report.problems.append(Problem("manifest", where, "unreadable JSON (edited or truncated)"))
            prev_sha = row.sha256
            continue
        if canonical_json(doc) != row.raw:
            report.problems.append(
                Problem("manifest", where, "not in canonical form (edited by hand)", window)
            )
        if doc.get("seq") != row.seq:
            report.problems.append(
                Problem(
                    "chain",
                    where,
                    f"names seq {doc.get('seq')} but is stored as {row.seq} (reordered)",
                    window,
                )
            )
        if prev_sha is not None and (doc.get("prev_sha256") != prev_sha or row.prev_sha256 != prev_sha):
            report.problems.append(
                Problem(
                    "chain",
                    where,
                    "prev_sha256 does not match the manifest before it (that one was edited or replaced, "
                    "or manifests were reordered)",
                    window,
                )
            )
        prev_sha = row.sha256
        report.head = ChainHead(row.stream, row.seq, row.sha256)
        docs.append((where, doc))
    return docs


def _expected_files(
    docs: list[tuple[str, dict[str, Any]]], start: dict[str, _Entry] | None = None
) -> dict[str, _Entry]:
    """Replay the manifests: each file that should be live now -> the manifest entry naming it."""
    live: dict[str, _Entry] = dict(start or {})
    for _, doc in docs:
        for item in doc.get("files") or []:
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                live[item["path"]] = _Entry(int(doc.get("seq") or 0), _window_text(doc), item)
        for path in doc.get("removed") or []:
            live.pop(str(path), None)
    return live


def _checkpointed(checkpoint: Checkpoint) -> dict[str, _Entry]:
    return {
        rel: _Entry(int(item["seq"]), str(item.get("window", "")), dict(item["file"]))
        for rel, item in checkpoint.files.items()
    }


def _next_checkpoint(
    head: ChainHead,
    previous: Checkpoint | None,
    expected: dict[str, _Entry],
    stamps: dict[str, tuple[int, int]],
) -> Checkpoint:
    """What a clean verify proved: its head and every expected file with the stamp it had."""
    now = datetime.now(UTC).isoformat()
    files = {
        rel: {"seq": entry.seq, "window": entry.window, "file": entry.file, "stamp": list(stamps[rel])}
        for rel, entry in expected.items()
        if rel in stamps
    }
    full_at = now if previous is None else previous.full_at
    return Checkpoint(head.stream, head.seq, head.sha256, now, full_at, files)


def _live_files(lake: Lake, stream: str) -> set[str]:
    tables = Tables(lake)
    return {f"{spec.name}/{f.path}" for spec in stream_tables(stream) for f in tables.live_files(spec)}


def _stamps(lake: Lake, stream: str) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file of the stream's tables, from one listing per table."""
    stamps: dict[str, tuple[int, int]] = {}
    for spec in stream_tables(stream):
        stamps.update(lake.file_stamps(spec.name))
    return stamps


def _unchanged(
    rel: str, entry: _Entry, known: dict[str, dict[str, Any]], stamps: dict[str, tuple[int, int]]
) -> bool:
    """True when the last verify hashed this very file (same entry) and storage shows it untouched."""
    item = known.get(rel)
    if item is None or rel not in stamps:
        return False
    return item.get("file") == entry.file and tuple(item.get("stamp") or ()) == stamps[rel]


def _check_files(
    lake: Lake,
    expected: dict[str, _Entry],
    live: set[str],
    report: StreamReport,
    *,
    stamps: dict[str, tuple[int, int]],
    known: dict[str, dict[str, Any]],
) -> None:
    for rel in sorted(live - set(expected)):
        report.problems.append(
            Problem("inserted", rel, "a data file of the table that no manifest names (a commit made outside "
                    "the ledger, or a run interrupted between its commit and its manifest)")
        )  # fmt: skip
    for rel, entry in sorted(expected.items()):
        if rel in live and _unchanged(rel, entry, known, stamps):
            report.files_unchanged += 1
            continue
        data = lake.read_bytes(rel)
        if data is None or rel not in live:
            how = (
                "missing from storage"
                if data is None
                else "removed from the table by a commit no manifest records"
            )
            report.problems.append(
                Problem("deleted", rel, f"{how}; named by manifest #{entry.seq}", entry.window)
            )
            continue
        report.files_checked += 1
        report.bytes_checked += len(data)
        if len(data) != entry.file.get("bytes") or sha256_hex(data) != entry.file.get("sha256"):
            report.problems.append(
                Problem(
                    "changed",
                    rel,
                    f"{len(data)} bytes, sha256 {sha256_hex(data)[:16]}...; manifest #{entry.seq} recorded "
                    f"{entry.file.get('bytes')} bytes, sha256 {str(entry.file.get('sha256'))[:16]}...",
                    entry.window,
                )
            )


def _check_contents(
    lake: Lake,
    docs: list[tuple[str, dict[str, Any]]],
    expected: dict[str, _Entry],
    live: set[str],
    report: StreamReport,
) -> None:
    """Recount rows and the id-set digest of manifests whose files are all still live and intact."""
    damaged = {p.path for p in report.problems if p.kind in ("changed", "deleted")}
    for where, doc in docs:
        files = [f for f in doc.get("files") or [] if isinstance(f, dict)]
        current = all(
            f.get("path") in expected and expected[f["path"]].seq == doc.get("seq") and f["path"] in live
            for f in files
        )
        if not files or not current or any(f["path"] in damaged for f in files):
            continue
        id_column = str(doc.get("id_column") or "event_id")
        ids: list[str] = []
        for item in files:
            table = lake.read_parquet(item["path"], [id_column])
            if table.num_rows != item.get("rows"):
                report.problems.append(
                    Problem("content", item["path"], f"holds {table.num_rows} rows; {where} says {item.get('rows')}",
                            _window_text(doc))
                )  # fmt: skip
            ids.extend(str(v) for v in table.column(id_column).drop_null().to_pylist())
        digest = id_set_digest(ids)
        if digest != doc.get("id_digest"):
            report.problems.append(
                Problem(
                    "content",
                    where,
                    "id-set digest of its files does not match the manifest",
                    _window_text(doc),
                )
            )
        retired = doc.get("removed_id_digest")
        if retired is not None and retired != digest:
            report.problems.append(
                Problem("content", where, "a compaction's files do not hold exactly the ids of the files it "
                        "retired (rows lost or added)", _window_text(doc))
            )  # fmt: skip


def _check_head(lake: Lake, stream: str, key: bytes | None, report: StreamReport) -> None:
    head = read_signed_head(lake, stream)
    if key is None:
        report.signature = "unsigned" if head is None else "signed head present; not checked (no key given)"
        return
    where = head_path(stream)
    if head is None:
        report.signature = "missing"
        if report.head is not None:
            report.problems.append(
                Problem("signature", where, "a key was given but the chain head is not signed")
            )
        return
    claimed = ChainHead(stream, int(head.get("seq") or 0), str(head.get("sha256") or ""))
    if head.get("stream") != stream or head.get("hmac") != head_hmac(claimed, key):
        report.signature = "INVALID"
        report.problems.append(Problem("signature", where, "HMAC does not match (wrong key or edited head)"))
        return
    if report.head is None or (claimed.seq, claimed.sha256) != (report.head.seq, report.head.sha256):
        report.signature = "stale"
        report.problems.append(
            Problem(
                "signature",
                where,
                f"signed head is seq {claimed.seq} but the chain ends at "
                f"{report.head.seq if report.head else 'nothing'} (manifests added, removed or edited since)",
            )
        )
        return
    report.signature = "valid"


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _window_text(doc: dict[str, Any]) -> str:
    window = doc.get("window")
    if isinstance(window, dict):
        return f"{window.get('start')} .. {window.get('end')}"
    return ""
