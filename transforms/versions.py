"""Reading back what a table already holds of an entity, so a run stores only what changed.

Why from the data and not a separate index: the stored rows are the truth; an index written
beside them could disagree after a crash between the two writes. The tables involved are small
(one row per observed change of a workload or org unit) and compacted, so reading a few columns
per run costs milliseconds to a second even for large tenants. Callers pass the snapshot they
read so that their commit is checked against exactly that version (transforms/tables.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from transforms.storage import Lake
from transforms.tables import Tables, TableSpec

if TYPE_CHECKING:
    from deltalake import DeltaTable


def read_rows(
    lake: Lake, spec: TableSpec, columns: Sequence[str] | None = None, snapshot: DeltaTable | None = None
) -> pa.Table:
    """Every stored row of ``spec`` (the snapshot given, else the newest); empty when none exist."""
    return Tables(lake).read(
        spec, list(columns) if columns is not None else spec.schema.names, snapshot=snapshot
    )


def latest_versions(
    lake: Lake,
    spec: TableSpec,
    id_column: str,
    columns: Sequence[str] | None = None,
    snapshot: DeltaTable | None = None,
) -> dict[str, dict[str, Any]]:
    """The most recently observed row of each entity id (by observed_at, then row_hash for ties)."""
    wanted = list(dict.fromkeys([id_column, "observed_at", "row_hash", *(columns or spec.schema.names)]))
    table = read_rows(lake, spec, wanted, snapshot)
    if table.num_rows == 0:
        return {}
    ordered = table.sort_by(
        [(id_column, "ascending"), ("observed_at", "ascending"), ("row_hash", "ascending")]
    )
    return {row[id_column]: row for row in ordered.to_pylist()}


def stored_keys(
    lake: Lake, spec: TableSpec, key_columns: Sequence[str], snapshot: DeltaTable | None = None
) -> set[tuple[Any, ...]]:
    """The distinct key tuples stored in ``spec`` (e.g. (workload_id, row_hash) of history)."""
    table = read_rows(lake, spec, key_columns, snapshot)
    return set(zip(*(table.column(name).to_pylist() for name in key_columns), strict=True))
