"""The audit row store: integer columns kept sorted by (timestamp, id).

That one canonical order makes the common request cheap: a time window is two binary searches
and a page sorted by timestamp is a slice. Ties on the same millisecond (bursts) are broken by
the id, compared as the 128-bit number behind the uuid, which is also the order of the uuid's
lowercase hex text, so "tie broken by id" means the same thing to the fake and to a client.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.generic]
Columns = dict[str, Array]

# Column -> dtype. Text lives once in TenantTables; rows carry codes into it.
COLUMN_TYPES: dict[str, type[np.generic]] = {
    "ts_ms": np.int64,  # UTC milliseconds since the epoch
    "id_hi": np.uint64,  # the row id as a 128-bit uuid4, high and low halves
    "id_lo": np.uint64,
    "req_hi": np.uint64,  # request_id, same shape
    "req_lo": np.uint64,
    "subject": np.int32,
    "ip": np.int32,
    "action": np.int8,
    "method": np.int8,
    "url": np.int32,
    "entity": np.int32,
    "status": np.int16,
    "meta": np.int32,  # -1: the row has no metadata
}


def columns_from_lists(values: dict[str, list[int]] | Columns) -> Columns:
    """Typed numpy columns from per-column sequences of equal length."""
    columns = {name: np.asarray(values[name], dtype=dtype) for name, dtype in COLUMN_TYPES.items()}
    lengths = {len(column) for column in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns differ in length: {sorted(lengths)}")
    return columns


def canonical_order(columns: Columns) -> npt.NDArray[np.intp]:
    """Positions that sort rows by timestamp, then id."""
    return np.lexsort((columns["id_lo"], columns["id_hi"], columns["ts_ms"]))


class AuditStore:
    """Rows in canonical order, growing only by :meth:`insert` (late arrivals, drift).

    ``version`` increases with every insert so cached query results know they are stale. The
    store is not thread-safe on its own: TenantSimulator serialises access to it.
    """

    def __init__(self, columns: Columns) -> None:
        order = canonical_order(columns)
        self._columns: Columns = {name: column[order] for name, column in columns.items()}
        self.version = 0

    def __len__(self) -> int:
        return len(self._columns["ts_ms"])

    def column(self, name: str) -> Array:
        return self._columns[name]

    def window(self, start_us: int, end_us: int) -> tuple[int, int]:
        """Row range [lo, hi) with start_us <= timestamp <= end_us (both ends inclusive)."""
        first_ms = -(-start_us // 1000)  # ceil: a row at .5 ms past start is not before it
        last_ms = end_us // 1000
        ts = self._columns["ts_ms"]
        lo = int(np.searchsorted(ts, first_ms, side="left"))
        hi = int(np.searchsorted(ts, last_ms, side="right"))
        return lo, max(lo, hi)

    def insert(self, batch: Columns) -> None:
        """Merge new rows into their canonical places (an O(rows) copy per column, no re-sort)."""
        batch = {name: column[canonical_order(batch)] for name, column in batch.items()}
        keys = zip(batch["ts_ms"].tolist(), batch["id_hi"].tolist(), batch["id_lo"].tolist(), strict=True)
        positions = [self._position(ts, hi, lo) for ts, hi, lo in keys]
        self._columns = {
            name: np.insert(column, positions, batch[name]) for name, column in self._columns.items()
        }
        self.version += 1

    def _position(self, ts_ms: int, id_hi: int, id_lo: int) -> int:
        """Where a row with this key goes: after every smaller (timestamp, id)."""
        ts = self._columns["ts_ms"]
        lo = int(np.searchsorted(ts, ts_ms, side="left"))
        hi = int(np.searchsorted(ts, ts_ms, side="right"))
        his, los = self._columns["id_hi"], self._columns["id_lo"]
        while lo < hi and (int(his[lo]), int(los[lo])) < (id_hi, id_lo):
            lo += 1
        return lo
