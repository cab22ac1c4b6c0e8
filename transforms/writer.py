"""Atomic, reproducible Parquet files in the lake, and the small tables that describe a run.

Every data file of a Delta table is written here (transforms/tables.py stages them, then commits).
Why atomic: a reader must never see half a file, and on a local disk a half-written file would
otherwise sit under its final name. All bytes go through :meth:`Lake.open_output`, which publishes
the file only when the block exits cleanly.

Why fixed writer options: zstd, statistics and page checksums on, no wall-clock values in the
file. The same table and library version give the same bytes, which the hash-chained manifests
and deterministic export bundles rely on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.schemas import (
    INGEST_RUNS,
    QUARANTINE,
    RECONCILIATION,
)
from transforms.storage import Lake

if TYPE_CHECKING:
    from transforms.audit import QuarantinedRecord

__all__ = [
    "WRITER_OPTIONS",
    "ParquetStreamWriter",
    "WrittenFile",
    "ingest_run_table",
    "quarantine_table",
    "reconciliation_table",
    "write_table",
]

# Options that change the bytes of a file. Dictionary encoding and statistics help DuckDB skip
# row groups; page checksums let `verify` tell corruption from tampering.
WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "write_statistics": True,
    "use_dictionary": True,
    "write_page_checksum": True,
    "version": "2.6",
}


@dataclass(frozen=True)
class WrittenFile:
    """A file that now exists in the lake."""

    path: str
    rows: int
    bytes: int


def _window(window_start: datetime, window_end: datetime) -> tuple[datetime, datetime]:
    start, end = _utc(window_start, "window_start"), _utc(window_end, "window_end")
    if end <= start:
        raise ValueError(f"empty window {start.isoformat()} .. {end.isoformat()}")
    return start, end


def _utc(value: datetime, name: str) -> datetime:
    """Naive datetimes are a bug (they shift windows by the host's offset); aware ones become UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


# -- writing ---------------------------------------------------------------------------------------
class ParquetStreamWriter:
    """Append tables to one Parquet file that appears atomically when the ``with`` block ends.

    Each write() becomes a row group. Callers that write small pages can pass ``row_group_rows``
    to gather writes into row groups of at least that many rows (fewer, larger row groups read
    faster in DuckDB and compress better) at the cost of holding that many rows in memory.

    The file is opened on the first non-empty write, so a window with no rows produces no file
    unless ``allow_empty`` asks for a schema-only one (``produced`` says which). On an exception
    inside the ``with`` block nothing appears and no temporary is left behind.
    """

    def __init__(
        self,
        lake: Lake,
        rel_path: str,
        schema: pa.Schema,
        *,
        allow_empty: bool = False,
        row_group_rows: int = 0,
    ) -> None:
        lake.full_path(rel_path)  # validates the path before any work is done
        self.lake = lake
        self.rel_path = rel_path
        self.schema = schema
        self.allow_empty = allow_empty
        self.row_group_rows = row_group_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0
        self.bytes = 0
        self.path: str | None = None
        self._stack: ExitStack | None = None
        self._sink: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._closed = False

    def __enter__(self) -> ParquetStreamWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._abort(exc)

    def write(self, table: pa.Table) -> None:
        """Append ``table`` as a row group; it must have exactly the writer's schema."""
        if self._closed:
            raise ValueError(f"writer for {self.rel_path} is closed")
        if not table.schema.equals(self.schema):
            raise ValueError(
                f"table schema does not match {self.rel_path}:\n{table.schema}\n!=\n{self.schema}"
            )
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = self._pending[0] if len(self._pending) == 1 else pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        self._open().write_table(table)  # Arrow still splits beyond its 1Mi-row default

    @property
    def produced(self) -> bool:
        """True once close() published a file; False for an empty writer without ``allow_empty``."""
        return self.path is not None

    @property
    def written(self) -> WrittenFile | None:
        """The published file, or None (not closed yet, or nothing to write)."""
        return None if self.path is None else WrittenFile(self.path, self.rows, self.bytes)

    def close(self) -> None:
        """Publish the file (or nothing when empty and not ``allow_empty``)."""
        if self._closed:
            return
        self._closed = True
        self._flush()
        if self._writer is None and self.allow_empty:
            self._open()
        if self._writer is None or self._stack is None:
            return
        try:
            self._writer.close()
            self.bytes = int(self._sink.tell())
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack.close()
        self.path = self.rel_path

    def _open(self) -> pq.ParquetWriter:
        if self._writer is not None:
            return self._writer
        stack = ExitStack()
        self._sink = stack.enter_context(self.lake.open_output(self.rel_path))
        try:
            self._writer = pq.ParquetWriter(self._sink, self.schema, **WRITER_OPTIONS)
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack = stack
        return self._writer

    def _abort(self, exc: BaseException) -> None:
        """Drop the temporary; the caller's exception is the one that propagates."""
        self._closed = True
        self._pending = []
        if self._stack is None or self.path is not None:
            return
        if self._writer is not None:
            _close_writer_quietly(self._writer)
        self._stack.__exit__(type(exc), exc, exc.__traceback__)


def _close_writer_quietly(writer: pq.ParquetWriter) -> None:
    try:
        writer.close()
    except (OSError, pa.ArrowException):
        return  # the file is being discarded; the error that made us discard it is the one to report


def write_table(lake: Lake, rel_path: str, table: pa.Table) -> WrittenFile:
    """Write one table as one file (quarantine, run records); an empty table gives an empty file."""
    with ParquetStreamWriter(lake, rel_path, table.schema, allow_empty=True) as writer:
        writer.write(table)
    return WrittenFile(rel_path, writer.rows, writer.bytes)


# -- run tables ------------------------------------------------------------------------------------
def quarantine_table(
    records: Sequence[QuarantinedRecord],
    *,
    stream: str,
    run_id: str,
    window_start: datetime,
    window_end: datetime,
    page_offset: int | None,
    quarantined_at: datetime,
) -> pa.Table:
    """The QUARANTINE rows for one page's rejected records: what, why, and where it came from."""
    start, end = _window(window_start, window_end)
    at = _utc(quarantined_at, "quarantined_at")
    n = len(records)
    columns: dict[str, list[Any]] = {
        "stream": [stream] * n,
        "run_id": [run_id] * n,
        "window_start": [start] * n,
        "window_end": [end] * n,
        "page_offset": [page_offset] * n,
        "record_index": [r.record_index for r in records],
        "reason": [r.reason for r in records],
        "raw": [r.raw for r in records],
        "quarantined_at": [at] * n,
    }
    return _table(QUARANTINE, columns)


def ingest_run_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """INGEST_RUNS rows; a missing required key or an unknown one is a ValueError naming it.

    Strict on purpose: a typo in a key would otherwise silently store a null in the one table
    that proves completeness.
    """
    return _strict_table(INGEST_RUNS, rows, "ingest run")


def reconciliation_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """RECONCILIATION rows, as strict as ingest_run_table: this table is what auditors sign off on."""
    return _strict_table(RECONCILIATION, rows, "reconciliation")


def _strict_table(schema: pa.Schema, rows: Sequence[Mapping[str, Any]], label: str) -> pa.Table:
    """``rows`` as a table of ``schema``, refusing missing required keys and unknown ones."""
    required = [f.name for f in schema if not f.nullable]
    known = set(schema.names)
    for i, row in enumerate(rows):
        missing = [name for name in required if name not in row]
        if missing:
            raise ValueError(f"{label} row {i}: missing required key(s) {', '.join(missing)}")
        unknown = sorted(set(row) - known)
        if unknown:
            raise ValueError(f"{label} row {i}: unknown key(s) {', '.join(unknown)}")
    columns = {
        f.name: [_run_value(f, row.get(f.name), i, label) for i, row in enumerate(rows)] for f in schema
    }
    return _table(schema, columns)


def _run_value(field: pa.Field, value: Any, row: int, label: str = "ingest run") -> Any:
    """Aware datetimes become UTC; drift maps are sorted so the same run gives the same bytes."""
    if value is None:
        if not field.nullable:
            raise ValueError(f"{label} row {row}: {field.name} must not be null")
        return None
    if pa.types.is_timestamp(field.type):
        return _utc(value, f"{label} row {row}: {field.name}")
    if pa.types.is_map(field.type):
        if not isinstance(value, Mapping):
            raise ValueError(f"{label} row {row}: {field.name} must be a mapping, got {type(value).__name__}")
        return sorted(value.items())
    return value


def _table(schema: pa.Schema, columns: Mapping[str, list[Any]]) -> pa.Table:
    arrays = []
    for f in schema:
        try:
            arrays.append(pa.array(columns[f.name], type=f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ValueError(f"{schema.metadata[b'runai_ledger.entity'].decode()}.{f.name}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)
