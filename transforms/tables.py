"""Every table of the lake is a Delta Lake table (delta-rs): atomic commits, time travel, compaction.

Why Delta and not our own file layout: a commit is one atomic step in ``_delta_log/`` on any
filesystem or object store, so a window's rows and the watermark that covers them land together;
two writers are ordered by the log (an optimistic commit, retried on conflict) rather than by a
local lock; compaction and vacuum are commits too, so a reader's snapshot never sees a row twice
or misses one; and Spark, Trino, Databricks, polars or DuckDB's delta extension read the same
tables. docs/storage.md has the protocol and the measurements behind these choices.

Two delta-rs facts the ledger builds on (checked with deltalake 1.6.6):
- application transactions (``txn`` actions, app id -> a number) are part of the snapshot, so a
  watermark committed with its data is read back with the table (:meth:`Tables.app_version`);
- two commits that set the same app id conflict: the later one fails with CommitFailedError
  instead of landing blindly. Every data commit of a stream carries the stream's commit app id,
  so concurrent writers are serialised by the log and the loser re-reads before retrying.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from runai_extract.core.errors import ConcurrentCommitError, StorageError
from transforms.storage import Lake

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

LOG_DIR = "_delta_log"
T = TypeVar("T")
# A checkpoint every 10 commits (Delta's default is 100): opening a table replays the JSON commits
# since its last checkpoint, 32 ms at 93 commits vs 8 ms right after one, and a run opens several
# tables a few times; writing a checkpoint costs about one such open. Log entries are kept as long
# as retired files (maintenance sets it to its vacuum retention, 7 days by default), not Delta's
# 30 days: time travel needs no more, and on local disk opening a table lists the whole log (96
# syncs a day leave ~200 entries a day per table). maintenance.py sets both on older tables.
TABLE_PROPERTIES = {"delta.checkpointInterval": "10", "delta.logRetentionDuration": "interval 168 hours"}

# The newest snapshot of each table, kept per Lake object (so for one run) and brought up to date
# incrementally before every use: see Tables.with_newest.
_NEWEST: weakref.WeakKeyDictionary[Lake, dict[str, DeltaTable]] = weakref.WeakKeyDictionary()
_NEWEST_LOCK = threading.Lock()
# zstd level 1 compresses as well as snappy at the same speed and 40% smaller (docs/performance.md).
_COMPRESSION = ("ZSTD", 1)


@dataclass(frozen=True)
class TableSpec:
    """A table of the lake: where it lives (relative to the lake root), its columns, its partitions.

    ``schema`` is the full Delta schema, partition columns included (Delta keeps them in the
    directory names, not inside the files).
    """

    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    # The column whose values make a commit's id set (manifests, verify, compaction proofs).
    id_column: str = "row_hash"
    # Columns compaction clusters rows by (delta-rs z-order), written in row groups of
    # ``compact_row_group_rows`` so the row-group min/max of those columns let readers skip most of
    # a file (docs/performance.md: at 10M audit rows a filter on subject reads 1/13 of the row groups).
    cluster_by: tuple[str, ...] = ()
    compact_row_group_rows: int = 0


@dataclass(frozen=True)
class FileAction:
    """One file a commit added (or removed), relative to the table's directory."""

    path: str
    size: int = 0
    rows: int | None = None
    data_change: bool = True


@dataclass(frozen=True)
class Commit:
    """What one version of a table did, read back from its log entry."""

    table: str
    version: int
    operation: str
    timestamp: datetime
    adds: tuple[FileAction, ...]
    removes: tuple[FileAction, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    txns: Mapping[str, int] = field(default_factory=dict)


class Tables:
    """The lake's Delta tables, opened through one Lake (local path or object store)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    # -- locations ---------------------------------------------------------------------------
    def uri(self, spec: TableSpec) -> str:
        """What delta-rs opens: an absolute path locally, a URI on object stores."""
        return self.lake.location(spec.name)

    def file_location(self, spec: TableSpec, rel: str) -> str:
        """Where DuckDB (or a person) finds one data file of ``spec``."""
        return self.lake.location(f"{spec.name}/{rel}")

    def live_locations(self, spec: TableSpec) -> list[str]:
        """Where DuckDB finds every data file of the newest snapshot (what a view reads)."""
        return [self.file_location(spec, f.path) for f in self.live_files(spec)]

    def exists(self, spec: TableSpec) -> bool:
        return self.lake.exists(f"{spec.name}/{LOG_DIR}")

    # -- opening -------------------------------------------------------------------------------
    def load(self, spec: TableSpec, *, version: int | None = None) -> DeltaTable | None:
        """The table at its newest (or a given) version; None when nothing was ever committed."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        if not self.exists(spec):
            return None
        try:
            return DeltaTable(self.uri(spec), version=version, storage_options=self._options())
        except TableNotFoundError:
            return None
        except (DeltaError, OSError) as exc:
            raise StorageError(f"cannot open table {self.uri(spec)}: {_first_line(exc)}") from exc

    def with_newest(self, spec: TableSpec, use: Callable[[DeltaTable | None], T]) -> T:
        """``use`` applied to the table's newest snapshot (None when the table does not exist yet).

        ``use`` must answer from the snapshot and not keep it (nor call back into this method).

        Why: opening a table replays its checkpoint, a cost that grows with the number of live
        files (14 ms at a year of daily files, bench/long_life.py), and one sync asks for the
        newest version of the audit table a dozen times (watermark, commit counter, stored ids,
        file list). The snapshot is opened once per Lake object and brought up to date before
        each use by reading only the commits made since (~1.5 ms), which answers exactly what a
        fresh open would. It never leaves this method, so no caller holds a version that moves
        under it: a writer deciding what to commit opens its own (:meth:`ensure`).
        """
        from deltalake.exceptions import DeltaError

        with _NEWEST_LOCK:
            kept = _NEWEST.setdefault(self.lake, {})
            table = kept.get(spec.name) if self.exists(spec) else None
            if table is not None:
                try:
                    table.update_incremental()
                except (DeltaError, OSError):  # the table was removed or replaced: open it afresh
                    table = None
            if table is None:
                table = self.load(spec)
                if table is None:
                    kept.pop(spec.name, None)
                else:
                    kept[spec.name] = table
            return use(table)

    def load_as_of(self, spec: TableSpec, moment: datetime) -> DeltaTable | None:
        """The table as it stood at ``moment`` (time travel, within the vacuum retention)."""
        table = self.load(spec)
        if table is None:
            return None
        from deltalake.exceptions import DeltaError

        try:
            table.load_as_version(moment.astimezone(UTC))
        except (DeltaError, ValueError, OSError) as exc:
            message = _first_line(exc)
            if "before" in message.lower() or "not found" in message.lower() or "earliest" in message.lower():
                return None  # the table did not exist yet at that moment
            raise StorageError(f"cannot read {self.uri(spec)} as of {moment.isoformat()}: {message}") from exc
        return table

    def ensure(self, spec: TableSpec) -> DeltaTable:
        """The table, created empty on first use (creating twice at once is harmless).

        The creating commit stamps the table as holding only files with the spec's columns
        (:func:`file_columns_app`): every file this code writes has exactly those, so readers may
        skip reading every file's footer to reconcile schemas (see :meth:`uniform`).
        """
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError
        from deltalake.transaction import CommitProperties, Transaction

        table = self.load(spec)
        if table is not None:
            return table
        try:
            DeltaTable.create(
                self.uri(spec),
                schema=spec.schema,
                partition_by=list(spec.partition_by) or None,
                mode="ignore",
                storage_options=self._options(),
                configuration=TABLE_PROPERTIES,
                commit_properties=CommitProperties(app_transactions=[Transaction(file_columns_app(spec), 1)]),
            )
        except (DeltaError, OSError) as exc:
            # Two writers creating the table at once: the loser's create fails, the table is there.
            raced = self.load(spec)
            if raced is not None:
                return raced
            raise StorageError(f"cannot create table {self.uri(spec)}: {_first_line(exc)}") from exc
        created = self.load(spec)
        if created is None:
            raise StorageError(f"table {self.uri(spec)} vanished right after it was created")
        return created

    # -- writing -------------------------------------------------------------------------------
    def stage(
        self, spec: TableSpec, data: pa.Table, partition: Mapping[str, str] | None = None
    ) -> StagedFile:
        """Write ``data`` as one new file in the table's directory, not yet part of any version."""
        writer = StagedWriter(self, spec, partition)
        with writer:
            writer.write(data)
        staged = writer.staged
        if staged is None:
            raise StorageError(f"nothing was staged for {spec.name}")
        return staged

    def commit(
        self,
        spec: TableSpec,
        files: Sequence[StagedFile],
        *,
        snapshot: DeltaTable | None = None,
        app_txns: Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Commit:
        """Make staged ``files`` (possibly none) part of the table in one commit.

        ``snapshot`` is the version the caller decided on (which rows are new); the commit is
        validated against everything committed after it. When another writer committed one of
        ``app_txns`` first it fails with ConcurrentCommitError: re-read and decide again. With no
        files the commit still records the app transactions (a watermark moving over an empty
        window).
        """
        from deltalake.exceptions import CommitFailedError, DeltaError
        from deltalake.transaction import AddAction, CommitProperties, PostCommitHookProperties, Transaction

        table = snapshot if snapshot is not None else self.ensure(spec)
        token = uuid.uuid4().hex
        doc = {**dict(metadata or {}), "commit_token": token}
        props = CommitProperties(
            custom_metadata={"runai_ledger": orjson.dumps(doc).decode()},
            app_transactions=[Transaction(app, int(v)) for app, v in sorted((app_txns or {}).items())],
        )
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        actions = [AddAction(f.path, f.size, dict(f.partition_values), now_ms, True, f.stats) for f in files]
        try:
            table.create_write_transaction(
                actions,  # type: ignore[arg-type]
                mode="append",
                schema=spec.schema,
                partition_by=list(spec.partition_by) or None,
                commit_properties=props,
                # Checkpoints as the table says (every 10 commits), but no log clean-up here: it
                # lists the whole log at every commit (+3.5 ms per commit at 850 log files);
                # the daily maintenance cleans the log (Tables.checkpoint).
                post_commithook_properties=PostCommitHookProperties(
                    create_checkpoint=True, cleanup_expired_logs=False
                ),
            )
        except CommitFailedError as exc:
            raise ConcurrentCommitError(
                f"another writer committed to {spec.name} first ({_first_line(exc)}); re-read and retry"
            ) from exc
        except (DeltaError, OSError) as exc:
            raise StorageError(f"cannot commit to table {self.uri(spec)}: {_first_line(exc)}") from exc
        return self._find_commit(spec, table.version() + 1, token)

    def append(
        self,
        spec: TableSpec,
        data: pa.Table,
        *,
        app_txns: Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Commit:
        """Stage ``data`` (when it has rows) and commit it: run records, quarantine, reconciliation."""
        table = self.ensure(spec)
        files = [self.stage(spec, part, values) for values, part in _by_partition(spec, data)]
        return self.commit(spec, files, snapshot=table, app_txns=app_txns, metadata=metadata)

    def _find_commit(self, spec: TableSpec, first: int, token: str) -> Commit:
        """Our commit, found by its token at or after ``first`` (others may have landed in between)."""
        version = first
        while True:
            raw = self.lake.read_bytes(f"{spec.name}/{LOG_DIR}/{version:020d}.json")
            if raw is None:
                raise StorageError(f"the commit just made to {self.uri(spec)} cannot be found in its log")
            commit = parse_commit(spec.name, version, raw)
            if commit.metadata.get("commit_token") == token:
                return commit
            version += 1

    # -- reading -------------------------------------------------------------------------------
    def version(self, spec: TableSpec) -> int | None:
        """The table's newest version; None when nothing was ever committed."""
        return self.with_newest(spec, lambda table: None if table is None else table.version())

    def app_version(self, spec: TableSpec, app_id: str, *, snapshot: DeltaTable | None = None) -> int | None:
        """The number last committed under ``app_id`` (a watermark, a commit counter), or None."""
        if snapshot is not None:
            return snapshot.transaction_version(app_id)
        return self.with_newest(
            spec, lambda table: None if table is None else table.transaction_version(app_id)
        )

    def uniform(self, spec: TableSpec, snapshot: DeltaTable) -> bool:
        """Whether every live file of ``snapshot`` holds exactly the spec's columns.

        True for a table this version of the ledger created (or that maintenance checked file by
        file, :meth:`stamp_uniform`); false once files of other columns were added (a migration
        commits the old layout's files as they are, an older ledger wrote fewer columns). Why it
        matters: DuckDB reads a list of files either by the first file's columns or, with
        ``union_by_name``, by reading every file's footer first: 45 ms per query on a year of
        daily files on local disk, a request per file on S3.
        """
        return snapshot.transaction_version(file_columns_app(spec)) == 1

    def stamp_uniform(self, spec: TableSpec) -> bool:
        """Check every live file's columns and, when all are the spec's, stamp the table uniform.

        Maintenance's job for tables from before the stamp existed; reads one footer per live
        file, once. Returns whether the table is (now) uniform.
        """
        snapshot = self.load(spec)
        if snapshot is None or self.uniform(spec, snapshot):
            return snapshot is not None
        wanted = set(file_columns(spec))
        for action in self.live_files(spec, snapshot=snapshot):
            path = self.lake.full_path(f"{spec.name}/{action.path}")
            if set(pq.read_schema(path, filesystem=self.lake.fs).names) != wanted:
                return False
        try:
            self.commit(spec, [], snapshot=snapshot, app_txns={file_columns_app(spec): 1})
        except ConcurrentCommitError:
            return False  # someone else committed the stamp (or its opposite) first; next time
        return True

    def apply_properties(self, spec: TableSpec, overrides: Mapping[str, str] | None = None) -> bool:
        """Give the table the ledger's properties (plus ``overrides``); True when it changed."""
        from deltalake.exceptions import DeltaError

        table = self.load(spec)
        if table is None:
            return False
        current = table.metadata().configuration
        wanted = {**TABLE_PROPERTIES, **(overrides or {})}
        missing = {k: v for k, v in wanted.items() if current.get(k) != v}
        if not missing:
            return False
        try:
            table.alter.set_table_properties(missing, raise_if_not_exists=False)
        except (DeltaError, OSError) as exc:
            raise StorageError(f"cannot set the properties of {self.uri(spec)}: {_first_line(exc)}") from exc
        return True

    def live_files(self, spec: TableSpec, *, snapshot: DeltaTable | None = None) -> list[FileAction]:
        """The data files of the snapshot (newest by default), sorted by path."""
        adds = (
            _add_actions(snapshot) if snapshot is not None else self.with_newest(spec, _add_actions_or_none)
        )
        if adds is None:
            return []
        rows = adds.column("num_records").to_pylist() if "num_records" in adds.column_names else None
        paths = adds.column("path").to_pylist()
        sizes = adds.column("size_bytes").to_pylist()
        files = [
            FileAction(path, int(size), None if rows is None else rows[i])
            for i, (path, size) in enumerate(zip(paths, sizes, strict=True))
        ]
        return sorted(files, key=lambda f: f.path)

    def read(
        self,
        spec: TableSpec,
        columns: Sequence[str],
        *,
        snapshot: DeltaTable | None = None,
        time_range: tuple[str, Any, Any] | None = None,
        partition: tuple[str, str] | None = None,
    ) -> pa.Table:
        """Columns of the snapshot's rows; empty (typed) when the table does not exist yet.

        ``time_range`` (column, low, high) keeps rows with low <= value < high and skips files
        whose min/max statistics cannot hold one (timestamps or integers); ``partition`` (column,
        value) skips other partitions. Both are how a window's stored ids, or a chain's head, are
        read without touching the rest of the history.
        """
        # Not Schema.empty_table(): it imports pandas (~0.5 s) in every command that reads a table.
        empty = pa.Table.from_batches([], schema=pa.schema([spec.schema.field(c) for c in columns]))
        if snapshot is not None:
            files = self._candidate_files(snapshot, time_range, partition)
        else:
            files = self.with_newest(
                spec,
                lambda table: [] if table is None else self._candidate_files(table, time_range, partition),
            )
        parts = [self._read_file(spec, path, values, columns, time_range) for path, values in files]
        return pa.concat_tables(parts).cast(empty.schema) if parts else empty

    def _candidate_files(
        self,
        table: DeltaTable,
        time_range: tuple[str, Any, Any] | None,
        partition: tuple[str, str] | None,
    ) -> list[tuple[str, dict[str, str]]]:
        import pyarrow.compute as pc  # here, not at the top: 0.07-0.15 s that `status` never needs

        adds = _add_actions(table)
        if partition is not None:
            column = f"partition.{partition[0]}"
            values = pc.cast(adds.column(column), pa.string())
            adds = adds.filter(pc.equal(values, partition[1]))
        if time_range is not None:
            name, start, end = time_range
            low, high = f"min.{name}", f"max.{name}"
            if low in adds.column_names and high in adds.column_names:
                lows, highs = adds.column(low), adds.column(high)
                overlaps = pc.and_kleene(
                    pc.less(lows, pa.scalar(end, lows.type)),
                    pc.greater_equal(highs, pa.scalar(start, highs.type)),
                )
                adds = adds.filter(pc.fill_null(overlaps, True))  # no statistics: read the file
        names = [c for c in adds.column_names if c.startswith("partition.")]
        values = [
            dict(zip([n.removeprefix("partition.") for n in names], row, strict=True))
            for row in zip(*(pc.cast(adds.column(n), pa.string()).to_pylist() for n in names), strict=True)
        ]
        paths = adds.column("path").to_pylist()
        if not names:
            values = [{} for _ in paths]
        return sorted(zip(paths, values, strict=True), key=lambda item: item[0])

    def _read_file(
        self,
        spec: TableSpec,
        path: str,
        values: Mapping[str, str],
        columns: Sequence[str],
        time_range: tuple[str, Any, Any] | None,
    ) -> pa.Table:
        stored = [c for c in columns if c not in spec.partition_by]
        wanted = list(dict.fromkeys([*stored, *([time_range[0]] if time_range else [])]))
        try:
            part = self.lake.read_parquet(f"{spec.name}/{path}", wanted)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read {self.file_location(spec, path)}: {exc}") from exc
        if time_range is not None:
            import pyarrow.compute as pc  # see _candidate_files

            name, start, end = time_range
            times = part.column(name)
            inside = pc.and_(
                pc.greater_equal(times, pa.scalar(start, times.type)),
                pc.less(times, pa.scalar(end, times.type)),
            )
            part = part.filter(inside)
        part = part.select(stored)
        for name in columns:
            if name in spec.partition_by:  # kept in the directory name, not in the file
                kind = spec.schema.field(name).type
                constant = pa.array([values.get(name)] * part.num_rows, pa.string()).cast(kind)
                part = part.append_column(name, constant)
        return part.select(list(columns))

    # -- the log -------------------------------------------------------------------------------
    def commit_at(self, spec: TableSpec, version: int) -> Commit:
        """Version ``version`` of ``spec`` as its log entry records it (adds, removes, metadata)."""
        raw = self.lake.read_bytes(f"{spec.name}/{LOG_DIR}/{version:020d}.json")
        if raw is None:
            raise StorageError(f"{self.uri(spec)} has no log entry for version {version} (cleaned up?)")
        return parse_commit(spec.name, version, raw)

    # -- maintenance ---------------------------------------------------------------------------
    def compact(self, spec: TableSpec, *, partition: tuple[str, str] | None = None) -> Commit | None:
        """Rewrite the small files of the table (or of one partition) as few large ones.

        A commit with ``dataChange=false``: readers of older snapshots keep working, and
        concurrent appends are not in conflict with it. None when there was nothing to merge.
        A spec with ``cluster_by`` is z-ordered by those columns as it is compacted.
        """
        from deltalake import WriterProperties
        from deltalake.exceptions import DeltaError

        table = self.load(spec)
        if table is None:
            return None
        before = table.version()
        filters = [(partition[0], "=", partition[1])] if partition else None
        try:
            if spec.cluster_by:
                props = WriterProperties(
                    max_row_group_size=spec.compact_row_group_rows or None, compression="ZSTD"
                )
                table.optimize.z_order(
                    list(spec.cluster_by), partition_filters=filters, writer_properties=props
                )
            else:
                table.optimize.compact(partition_filters=filters)
        except (DeltaError, OSError) as exc:
            raise StorageError(f"cannot compact {self.uri(spec)}: {_first_line(exc)}") from exc
        after = table.version()
        return None if after == before else self.commit_at(spec, after)

    def checkpoint(self, spec: TableSpec) -> None:
        """Write a checkpoint so opening the table reads one Parquet file, not every log entry."""
        table = self.load(spec)
        if table is not None:
            table.create_checkpoint()
            table.cleanup_metadata()

    def vacuum(self, spec: TableSpec, retention_hours: int) -> list[str]:
        """Delete files retired longer than ``retention_hours`` ago; returns their paths."""
        from deltalake.exceptions import DeltaError

        table = self.load(spec)
        if table is None:
            return []
        try:
            return list(
                table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
            )
        except (DeltaError, OSError) as exc:
            raise StorageError(f"cannot vacuum {self.uri(spec)}: {_first_line(exc)}") from exc

    def _options(self) -> dict[str, str] | None:
        """delta-rs storage options: none for a local path; endpoint, keys, conditional put on S3."""
        return self.lake.delta_options()


@dataclass(frozen=True)
class StagedFile:
    """A data file written into a table's directory and not yet committed: invisible to readers.

    If the commit never happens (a crash, a conflict), vacuum removes it; nothing reads it.
    """

    path: str  # relative to the table directory
    size: int
    rows: int
    partition_values: Mapping[str, str]
    stats: str  # Delta's per-file statistics (JSON): row count, nulls, min/max of ordered columns


class StagedWriter:
    """Stream tables into one new staged file of ``spec`` (row groups of ``row_group_rows``).

    Used by the audit slices, which page in parallel and hand their files to the committing
    thread in window order; the file is built like every other lake file (transforms.writer).
    """

    def __init__(
        self,
        tables: Tables,
        spec: TableSpec,
        partition: Mapping[str, str] | None = None,
        row_group_rows: int = 0,
    ) -> None:
        from transforms.writer import ParquetStreamWriter

        self.spec = spec
        self.tables = tables
        self.partition = dict(partition or {})
        prefix = "".join(f"{k}={v}/" for k, v in sorted(self.partition.items()))
        self.path = f"{prefix}part-{uuid.uuid4().hex}.parquet"
        self._file_schema = pa.schema([f for f in spec.schema if f.name not in spec.partition_by])
        self._writer = ParquetStreamWriter(
            tables.lake, f"{spec.name}/{self.path}", self._file_schema, row_group_rows=row_group_rows
        )
        self.staged: StagedFile | None = None

    @property
    def rows(self) -> int:
        return self._writer.rows

    def __enter__(self) -> StagedWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._writer.__exit__(exc_type, exc, tb)
        if exc is None and self._writer.written is not None:
            written = self._writer.written
            meta = pq.read_metadata(self.tables.lake.full_path(written.path), filesystem=self.tables.lake.fs)
            self.staged = StagedFile(self.path, written.bytes, written.rows, self.partition, file_stats(meta))

    def write(self, data: pa.Table) -> None:
        self._writer.write(data.select(self._file_schema.names).cast(self._file_schema))


def file_stats(meta: pq.FileMetaData) -> str:
    """Delta statistics of one Parquet file from its footer: rows, nulls, min/max of timestamps and numbers.

    Readers (ours in :meth:`Tables.read`, other engines') skip files by these. Timestamps are
    widened to whole milliseconds (min down, max up), the precision Delta stats are read at.
    """
    nulls: dict[str, int] = {}
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    schema = meta.schema.to_arrow_schema()
    for col in range(meta.num_columns):
        field_ = schema.field(col) if col < len(schema) else None
        if field_ is None or not _has_order(field_.type):
            continue
        name = field_.name
        for rg in range(meta.num_row_groups):
            chunk = meta.row_group(rg).column(col)
            st = chunk.statistics
            if st is None:
                continue
            nulls[name] = nulls.get(name, 0) + int(st.null_count or 0)
            if st.has_min_max:
                low, high = _stat_value(field_.type, st.min, False), _stat_value(field_.type, st.max, True)
                lows[name] = low if name not in lows else min(lows[name], low)
                highs[name] = high if name not in highs else max(highs[name], high)
    doc = {
        "numRecords": meta.num_rows,
        "nullCount": nulls,
        "minValues": {k: _stat_text(v) for k, v in lows.items()},
        "maxValues": {k: _stat_text(v) for k, v in highs.items()},
    }
    return orjson.dumps(doc).decode()


def _has_order(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_integer(kind) or pa.types.is_date(kind)


def _stat_value(kind: pa.DataType, value: Any, upper: bool) -> Any:
    if pa.types.is_timestamp(kind) and isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        floored = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if upper and floored != moment:
            floored = floored + timedelta(milliseconds=1)
        return floored.astimezone(UTC)
    return value


def _stat_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    return value


def _by_partition(spec: TableSpec, data: pa.Table) -> list[tuple[dict[str, str], pa.Table]]:
    """``data`` split by the values of the table's partition columns (one file per partition)."""
    if data.num_rows == 0:
        return []
    if not spec.partition_by:
        return [({}, data)]
    import pyarrow.compute as pc  # see Tables._candidate_files

    keys = pa.Table.from_arrays(
        [pc.cast(data.column(c), pa.string()) for c in spec.partition_by], names=list(spec.partition_by)
    )
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, row in enumerate(zip(*(keys.column(c).to_pylist() for c in spec.partition_by), strict=True)):
        groups.setdefault(tuple(row), []).append(index)
    return [
        (dict(zip(spec.partition_by, values, strict=True)), data.take(pa.array(indexes)))
        for values, indexes in sorted(groups.items())
    ]


def parse_commit(table: str, version: int, raw: bytes) -> Commit:
    """A Delta log entry (newline-delimited JSON actions) as a Commit."""
    adds: list[FileAction] = []
    removes: list[FileAction] = []
    txns: dict[str, int] = {}
    info: dict[str, Any] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        action = orjson.loads(line)
        if "add" in action:
            add = action["add"]
            stats = orjson.loads(add["stats"]) if add.get("stats") else {}
            adds.append(
                FileAction(
                    add["path"],
                    int(add.get("size") or 0),
                    stats.get("numRecords"),
                    bool(add.get("dataChange", True)),
                )
            )
        elif "remove" in action:
            rem = action["remove"]
            removes.append(
                FileAction(rem["path"], int(rem.get("size") or 0), None, bool(rem.get("dataChange", True)))
            )
        elif "txn" in action:
            txns[action["txn"]["appId"]] = int(action["txn"]["version"])
        elif "commitInfo" in action:
            info = action["commitInfo"]
    ours = info.get("runai_ledger")
    metadata = orjson.loads(ours) if isinstance(ours, str) else {}
    stamp = datetime.fromtimestamp(int(info.get("timestamp") or 0) / 1000, UTC)
    return Commit(
        table, version, str(info.get("operation") or ""), stamp, tuple(adds), tuple(removes), metadata, txns
    )


def file_columns(spec: TableSpec) -> list[str]:
    """The columns inside each data file of ``spec`` (partition columns live in directory names)."""
    return [name for name in spec.schema.names if name not in spec.partition_by]


def file_columns_app(spec: TableSpec) -> str:
    """The app transaction that says "every live file has exactly these columns" (1) or not (0).

    Named after a digest of the column names, so a release that adds a column finds no stamp
    for its new set until maintenance has checked the files again.
    """
    digest = hashlib.sha256(",".join(file_columns(spec)).encode()).hexdigest()[:16]
    return f"runai-ledger/file-columns/{digest}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _add_actions_or_none(table: DeltaTable | None) -> pa.Table | None:
    return None if table is None else _add_actions(table)


def _add_actions(table: DeltaTable) -> pa.Table:
    """The snapshot's add actions (one row per live file) as a pyarrow table.

    Read through the Arrow C stream rather than ``pa.table(...)``: the latter first asks whether
    its argument is a pandas DataFrame, which imports pandas (~0.4 s) in every command that lists
    a table's files, `status` and `build-views` included (bench/long_life.py measures those).
    """
    return pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
