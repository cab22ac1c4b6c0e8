"""Reading back what the lake already holds of an entity, so a run stores only what changed.

Why from the data and not a separate index: the stored rows are the truth; an index written
beside them could disagree after a crash between the two writes. The tables involved are small
(one row per observed change of a workload or org unit), so reading a few columns of every file
per run costs milliseconds to a second even for large tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from runai_extract.core.errors import StorageError
from transforms.storage import Lake


def read_rows(lake: Lake, rel_dir: str, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
    """Every stored row under ``rel_dir`` (all files), read with ``schema``; empty when none exist."""
    files = lake.list_files(rel_dir)
    wanted = list(columns) if columns is not None else schema.names
    if not files:
        return pa.schema([schema.field(name) for name in wanted]).empty_table()
    import pyarrow.dataset as ds  # lazily: it drags in pandas, which most CLI commands never need

    paths = [lake.full_path(rel) for rel in files]
    try:
        dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=lake.fs)
        return dataset.to_table(columns=wanted)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read {len(paths)} file(s) under {lake.location(rel_dir)}: {exc}") from exc


def latest_versions(
    lake: Lake, rel_dir: str, schema: pa.Schema, id_column: str, columns: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The most recently observed row of each entity id (by observed_at, then row_hash for ties)."""
    wanted = list(dict.fromkeys([id_column, "observed_at", "row_hash", *(columns or schema.names)]))
    table = read_rows(lake, rel_dir, schema, wanted)
    if table.num_rows == 0:
        return {}
    ordered = table.sort_by(
        [(id_column, "ascending"), ("observed_at", "ascending"), ("row_hash", "ascending")]
    )
    return {row[id_column]: row for row in ordered.to_pylist()}


def stored_keys(
    lake: Lake, rel_dir: str, schema: pa.Schema, key_columns: Sequence[str]
) -> set[tuple[Any, ...]]:
    """The distinct key tuples stored under ``rel_dir`` (e.g. (workload_id, row_hash) of history)."""
    table = read_rows(lake, rel_dir, schema, key_columns)
    return set(zip(*(table.column(name).to_pylist() for name in key_columns), strict=True))
