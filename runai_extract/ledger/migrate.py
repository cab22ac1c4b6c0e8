"""Converting a lake written before Delta Lake into Delta tables, in place (`runai-ledger migrate`).

The old layout kept plain Parquet files in the same directories the tables use now
(``audit_events/event_date=D/part-*.parquet``, ``_ops/ingest_runs/stream=S/*.parquet``, ...),
watermarks in ``_state/<stream>.json`` and a hash chain of JSON manifests in
``_manifests/<stream>/<seq>.json``. Those files are already what a Delta table holds, so the
migration copies nothing: it checks every file against the newest old manifest naming it (a
tampered file stops the migration), then commits the files as they are, one commit per table,
with the old watermark as the table's app transaction, and manifests each commit in the new
chain together with the old chain's head. The old manifests and state files stay where they were
until the user removes them. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pyarrow.parquet as pq

from runai_extract.core.errors import StateError
from runai_extract.core.times import parse_iso
from runai_extract.ledger.manifests import Manifested, append_manifest, manifest_pending, stream_of
from runai_extract.ledger.watermarks import StateStore, commit_app, to_micros, watermark_app
from transforms.catalog import ALL_TABLES, AUDIT_EVENTS_TABLE, MANIFESTS_TABLE
from transforms.storage import Lake
from transforms.tables import Commit, StagedFile, Tables, TableSpec, file_columns_app, file_stats

OLD_MANIFESTS = "_manifests"


@dataclass
class MigrationReport:
    tables: dict[str, int] = field(default_factory=dict)  # table -> files committed
    watermarks: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # tables that already were Delta tables

    def __str__(self) -> str:
        files = sum(self.tables.values())
        moved = ", ".join(f"{k} {v}" for k, v in sorted(self.watermarks.items())) or "none"
        return (
            f"{files} file(s) in {len(self.tables)} table(s) committed as Delta tables; watermarks: {moved}"
        )


def migrate(lake: Lake, run_id: str = "migrate") -> MigrationReport:
    """Commit the old layout's files as Delta tables, after checking them against the old manifests."""
    tables = Tables(lake)
    recorded = _old_manifest_entries(lake)
    old_state = _old_watermarks(lake)
    report = MigrationReport()
    for spec in ALL_TABLES:
        if spec == MANIFESTS_TABLE:
            continue
        if tables.exists(spec):
            report.skipped.append(spec.name)
            continue
        paths = [p for p in lake.list_files(spec.name) if ".tmp-" not in p]
        if not paths:
            continue
        _check_against_old_manifests(lake, paths, recorded)
        # The old files are committed as they are, with the columns of their day: not uniform
        # (maintenance checks them and stamps the table once they all have today's columns).
        txns = {file_columns_app(spec): 0}
        if spec == AUDIT_EVENTS_TABLE and "audit" in old_state:
            txns |= {watermark_app("audit"): to_micros(old_state["audit"]), commit_app("audit"): 1}
        commit = tables.commit(
            spec, [_as_staged(lake, spec, p) for p in paths], app_txns=txns, metadata={"migrated_by": run_id}
        )
        report.tables[spec.name] = len(paths)
        if spec in _manifested_tables():
            _manifest(lake, spec, commit, run_id)
    manifest_pending(lake, run_id)  # the migrated run records, quarantine and reconciliation rows
    store = StateStore(lake)
    for stream, mark in sorted(old_state.items()):
        if stream == "audit":
            store.mirror(stream, mark, run_id)
        else:
            store.commit(stream, mark, run_id)
        report.watermarks[stream] = mark.isoformat()
    return report


def _manifested_tables() -> set[TableSpec]:
    from transforms.catalog import STREAM_TABLES

    return {spec for name, specs in STREAM_TABLES.items() if name != "ledger" for spec in specs}


def _as_staged(lake: Lake, spec: TableSpec, rel: str) -> StagedFile:
    """An old file as a Delta add action: its path inside the table, partition and statistics."""
    inside = rel[len(spec.name) + 1 :]
    partition = {}
    for part in inside.split("/")[:-1]:
        key, _, value = part.partition("=")
        if key in spec.partition_by:
            partition[key] = value
    meta = pq.read_metadata(lake.full_path(rel), filesystem=lake.fs)
    return StagedFile(inside, lake.file_size(rel), meta.num_rows, partition, file_stats(meta))


def _manifest(lake: Lake, spec: TableSpec, commit: Commit, run_id: str) -> None:
    stream = stream_of(spec)
    now = datetime.now(UTC)
    head = _old_head(lake, stream)
    record = Manifested(
        stream=stream,
        status="migrated",
        window_start=now,
        window_end=now,
        commits=[commit],
        id_column=spec.id_column,
        params={"old_chain_head": head} if head else {},
    )
    append_manifest(lake, record, run_id)


def _old_manifest_entries(lake: Lake) -> dict[str, dict[str, object]]:
    """Each file path -> the newest old manifest entry naming it (a rerun superseded earlier ones)."""
    latest: dict[str, dict[str, object]] = {}
    for path in lake.list_files(OLD_MANIFESTS, ".json"):
        name = path.rsplit("/", 1)[-1]
        if not name.removesuffix(".json").isdigit():
            continue
        doc = orjson.loads(lake.read_bytes(path) or b"{}")
        for item in doc.get("files") or []:
            latest[str(item["path"])] = item
    return latest


def _check_against_old_manifests(
    lake: Lake, paths: list[str], recorded: dict[str, dict[str, object]]
) -> None:
    changed = []
    for rel in paths:
        entry = recorded.get(rel)
        if entry is None:
            continue  # run records and quarantine were never manifested in the old layout
        data = lake.read_bytes(rel) or b""
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            changed.append(rel)
    if changed:
        raise StateError(
            f"{len(changed)} file(s) differ from the old manifests (first: {changed[0]}); "
            "nothing was migrated: restore them or investigate before migrating"
        )


def _old_watermarks(lake: Lake) -> dict[str, datetime]:
    marks = {}
    for path in lake.list_files("_state", ".json"):
        doc = orjson.loads(lake.read_bytes(path) or b"{}")
        if "watermark" in doc and "stream" in doc:
            marks[str(doc["stream"])] = parse_iso(str(doc["watermark"]))[0]
    return marks


def _old_head(lake: Lake, stream: str) -> dict[str, object] | None:
    numbered = [
        p
        for p in lake.list_files(f"{OLD_MANIFESTS}/{stream}", ".json")
        if p.rsplit("/", 1)[-1][:-5].isdigit()
    ]
    if not numbered:
        return None
    raw = lake.read_bytes(numbered[-1]) or b""
    return {"seq": int(numbered[-1].rsplit("/", 1)[-1][:-5]), "sha256": hashlib.sha256(raw).hexdigest()}
