"""Reading the lake as a user's engine would: the Delta tables' current snapshots, never raw globs.

A glob over a table directory also sees files a compaction retired and files a writer staged but
never committed; tests that count rows must read what the tables hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables, TableSpec


def _tables(lake: Path | str) -> Tables:
    return Tables(Lake(str(lake)))


def table_rows(lake: Path | str, spec: TableSpec, columns: list[str] | None = None) -> pa.Table:
    """The rows of ``spec``'s newest snapshot (empty when the table does not exist)."""
    return _tables(lake).read(spec, columns or spec.schema.names)


def stored_audit_ids(lake: Path | str) -> list[str]:
    """Every event id the audit table holds, repeats included (so duplicates can be counted)."""
    return [str(i) for i in table_rows(lake, AUDIT_EVENTS_TABLE, ["event_id"]).column("event_id").to_pylist()]


def audit_rows(lake: Path | str) -> list[dict[str, Any]]:
    return table_rows(lake, AUDIT_EVENTS_TABLE).to_pylist()


def live_files(lake: Path | str, spec: TableSpec = AUDIT_EVENTS_TABLE) -> list[Path]:
    """The data files of the newest snapshot of ``spec``, as paths."""
    tables = _tables(lake)
    return [Path(tables.lake.full_path(f"{spec.name}/{f.path}")) for f in tables.live_files(spec)]


def watermark_text(lake: Path | str, stream: str = "audit") -> str | None:
    """The committed watermark of ``stream`` as ISO text (format_utc), or None."""
    from runai_extract.core.times import format_utc
    from runai_extract.ledger.watermarks import StateStore

    state = StateStore(Lake(str(lake))).read(stream)
    return None if state is None else format_utc(state.watermark)
