"""Re-hash every manifested file and walk every manifest chain: "has anything changed since?".

What is checked, per stream (docs/compliance.md has the long form):
- the chain: manifests are named 1..n without holes, each names its own seq, is canonical JSON,
  and carries the sha256 of the one before it; a deleted, reordered, renamed or edited manifest
  breaks one of these;
- the data: every file is compared with the LATEST manifest entry naming it (a rerun of a window
  supersedes the earlier entry): a missing file is a deletion, other bytes are a change; a data
  file no manifest names is an insertion; rows and the id-set digest of every window whose files
  are all still current are recomputed, so a consistently edited last manifest is caught too;
- the signed head, when a key is given: HEAD.json's HMAC and that it names the last manifest.

Verify takes the stream's writer lock, so it never sees a window between its file and manifest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from runai_extract.ledger.manifests import (
    DATA_DIRS,
    ChainHead,
    canonical_json,
    head_hmac,
    list_manifests,
    list_streams,
    read_signed_head,
    sha256_hex,
)
from runai_extract.ledger.watermarks import StateStore, writer_lock
from transforms.digest import id_set_digest
from transforms.storage import Lake

_PART = re.compile(r"part-\d{8}T\d{12}Z-(\d{8}T\d{12}Z)\.parquet$")


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

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Entry:
    seq: int
    window: str
    manifest: str
    file: dict[str, Any]


def verify_lake(
    lake: Lake, streams: list[str] | None, key: bytes | None, wait: float = 0.0
) -> list[StreamReport]:
    """Verify the given streams (default: every stream with manifests, and audit)."""
    chosen = streams or sorted(set(list_streams(lake)) | {"audit"})
    reports = []
    for stream in chosen:
        with writer_lock(lake, stream, wait=wait):
            reports.append(verify_stream(lake, stream, key))
    return reports


def verify_stream(lake: Lake, stream: str, key: bytes | None) -> StreamReport:
    """Walk the chain of ``stream``, re-hash its files and check the signed head."""
    report = StreamReport(stream)
    docs = _walk_chain(lake, stream, report)
    latest = _latest_entries(docs)
    _check_files(lake, latest, report)
    _check_unmanifested(lake, stream, docs, latest, report)
    _check_contents(lake, docs, latest, report)
    _check_head(lake, stream, key, report)
    return report


def _walk_chain(lake: Lake, stream: str, report: StreamReport) -> list[tuple[str, dict[str, Any]]]:
    """Parse the manifests in name order; report holes, renames, edits and broken prev-hashes."""
    docs: list[tuple[str, dict[str, Any]]] = []
    prev_sha: str | None = None
    expected = 1
    for path in list_manifests(lake, stream):
        report.manifests += 1
        raw = lake.read_bytes(path) or b""
        name_seq = _name_seq(path)
        if name_seq is None:
            report.problems.append(Problem("manifest", path, "not a manifest name (<seq:08d>.json)"))
            continue
        if name_seq != expected:
            missing = f"{expected}" if name_seq == expected + 1 else f"{expected}..{name_seq - 1}"
            report.problems.append(
                Problem("chain", path, f"manifest(s) {missing} missing before seq {name_seq} (deleted)")
            )
            prev_sha = None  # the link to the missing one cannot be checked; the next can
        expected = name_seq + 1
        doc = _parse(raw)
        if doc is None:
            report.problems.append(Problem("manifest", path, "unreadable JSON (edited or truncated)"))
            prev_sha = sha256_hex(raw)
            continue
        window = _window_text(doc)
        if canonical_json(doc) != raw:
            report.problems.append(
                Problem("manifest", path, "not in canonical form (edited by hand)", window)
            )
        if doc.get("seq") != name_seq:
            report.problems.append(
                Problem(
                    "chain",
                    path,
                    f"names seq {doc.get('seq')} but is stored as {name_seq} (reordered)",
                    window,
                )
            )
        if prev_sha is not None and doc.get("prev_sha256") != prev_sha:
            report.problems.append(
                Problem(
                    "chain",
                    path,
                    "prev_sha256 does not match the manifest before it (that one was edited or replaced, "
                    "or manifests were reordered)",
                    window,
                )
            )
        prev_sha = sha256_hex(raw)
        report.head = ChainHead(stream, name_seq, prev_sha)
        docs.append((path, doc))
    return docs


def _latest_entries(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, _Entry]:
    """Each file path -> the entry of the newest manifest naming it (reruns supersede)."""
    latest: dict[str, _Entry] = {}
    for path, doc in docs:
        for item in doc.get("files") or []:
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                latest[item["path"]] = _Entry(int(doc.get("seq") or 0), _window_text(doc), path, item)
    return latest


def _check_files(lake: Lake, latest: dict[str, _Entry], report: StreamReport) -> None:
    for rel, entry in sorted(latest.items()):
        data = lake.read_bytes(rel)
        if data is None:
            report.problems.append(
                Problem("deleted", rel, f"missing; named by {entry.manifest}", entry.window)
            )
            continue
        report.files_checked += 1
        report.bytes_checked += len(data)
        if len(data) != entry.file.get("bytes") or sha256_hex(data) != entry.file.get("sha256"):
            report.problems.append(
                Problem(
                    "changed",
                    rel,
                    f"{len(data)} bytes, sha256 {sha256_hex(data)[:16]}...; {entry.manifest} recorded "
                    f"{entry.file.get('bytes')} bytes, sha256 {str(entry.file.get('sha256'))[:16]}...",
                    entry.window,
                )
            )


def _check_unmanifested(
    lake: Lake,
    stream: str,
    docs: list[tuple[str, dict[str, Any]]],
    latest: dict[str, _Entry],
    report: StreamReport,
) -> None:
    dirs = {str(doc["data_dir"]) for _, doc in docs if isinstance(doc.get("data_dir"), str)}
    dirs.update(DATA_DIRS.get(stream, ()))
    state = StateStore(lake).read(stream)
    for data_dir in sorted(dirs):
        for rel in lake.list_files(data_dir):
            if rel not in latest:
                end = _file_window_end(rel)
                hint = ""
                if state is not None and end is not None and end > state.watermark:
                    hint = " (it reaches past the watermark: likely left by a failed or interrupted run)"
                report.problems.append(Problem("inserted", rel, "a data file no manifest names" + hint))


def _check_contents(
    lake: Lake, docs: list[tuple[str, dict[str, Any]]], latest: dict[str, _Entry], report: StreamReport
) -> None:
    """Recount rows and the id-set digest of windows whose files are all still current and intact."""
    damaged = {p.path for p in report.problems if p.kind in ("changed", "deleted")}
    for path, doc in docs:
        files = [f for f in doc.get("files") or [] if isinstance(f, dict)]
        current = all(
            latest.get(f.get("path", "")) is not None and latest[f["path"]].manifest == path for f in files
        )
        if not files or not current or any(f["path"] in damaged for f in files):
            continue
        ids: list[str] = []
        id_column = str(doc.get("id_column") or "event_id")  # manifests before id_column: audit
        for item in files:
            table = pq.read_table(lake.full_path(item["path"]), columns=[id_column], filesystem=lake.fs)
            if table.num_rows != item.get("rows"):
                report.problems.append(
                    Problem(
                        "content",
                        item["path"],
                        f"holds {table.num_rows} rows; {path} says {item.get('rows')}",
                        _window_text(doc),
                    )
                )
            ids.extend(str(v) for v in _column(table, id_column))
        if id_set_digest(ids) != doc.get("id_digest"):
            report.problems.append(
                Problem(
                    "content",
                    path,
                    "id-set digest of its files does not match the manifest",
                    _window_text(doc),
                )
            )


def _check_head(lake: Lake, stream: str, key: bytes | None, report: StreamReport) -> None:
    head = read_signed_head(lake, stream)
    if key is None:
        report.signature = "unsigned" if head is None else "signed head present; not checked (no key given)"
        return
    where = f"_manifests/{stream}/HEAD.json"
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


def _column(table: pa.Table, name: str) -> list[Any]:
    return [v for v in table.column(name).to_pylist() if v is not None]


def _file_window_end(rel: str) -> datetime | None:
    """The window end encoded in a pipeline file name (part-<start>-<end>.parquet), if it is one."""
    match = _PART.search(rel)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def _name_seq(path: str) -> int | None:
    stem = path.rsplit("/", 1)[-1].removesuffix(".json")
    return int(stem) if stem.isdigit() else None


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
