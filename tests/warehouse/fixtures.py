"""Fixture data and helpers for the warehouse tests: real Parquet/JSON files in a tmp lake.

Written with the project's schemas, so the views are tested against the same layout the
pipeline produces (hive partitions, one file per window, a quote and non-ASCII text in names);
``populate(lake, foreign_copy=True)`` adds a file the pipeline would never write: a second copy
of one event, as a hand-restored backup would leave.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from transforms.catalog import BY_NAME
from transforms.schemas import AUDIT_EVENTS, INGEST_RUNS, QUARANTINE, RECONCILIATION
from transforms.storage import Lake
from transforms.tables import Tables
from warehouse.query import run_query

DAY1 = datetime(2025, 6, 1, tzinfo=UTC)
DAY2 = datetime(2025, 6, 2, tzinfo=UTC)
QUOTED_NAME = "O'Brien's \"quoted\" project"
UNICODE_NAME = "Team Ünïcode ☃"
MARKUP_NAME = "Zoë [bold]x[/bold]"

CORE_COLUMNS = [
    ("event_id", "VARCHAR"),
    ("event_time", "TIMESTAMP WITH TIME ZONE"),
    ("event_date", "DATE"),
    ("tenant_id", "VARCHAR"),
    ("subject", "VARCHAR"),
    ("subject_type", "VARCHAR"),
    ("source_ip", "VARCHAR"),
    ("action", "VARCHAR"),
    ("http_method", "VARCHAR"),
    ("url", "VARCHAR"),
    ("entity_type", "VARCHAR"),
    ("entity_name", "VARCHAR"),
    ("entity_id", "VARCHAR"),
    ("result", "VARCHAR"),
    ("http_status_code", "INTEGER"),
    ("cluster_id", "VARCHAR"),
    ("cluster_name", "VARCHAR"),
    ("request_id", "VARCHAR"),
    ("metadata", "MAP(VARCHAR, VARCHAR)"),
    ("event_id_derived", "BOOLEAN"),
    ("api_flavour", "VARCHAR"),
    ("extra_fields", "MAP(VARCHAR, VARCHAR)"),
    ("ingest_run_id", "VARCHAR"),
    ("ingested_at", "TIMESTAMP WITH TIME ZONE"),
]


# -- fixture data ----------------------------------------------------------------------------------
def audit(
    event_id: str,
    at: datetime,
    action: str,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    entity_name: str | None = None,
    result: str | None = "Succeeded",
    status: int | None = 200,
    subject: str = "alice@example.com",
    metadata: dict[str, str] | None = None,
    run: str = "run-1",
    ingested_at: datetime = DAY1 + timedelta(hours=12),
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": at,
        "tenant_id": "12345",
        "subject": subject,
        "subject_type": "User",
        "source_ip": "10.0.0.1",
        "action": action,
        "http_method": "POST",
        "url": "/api/v1/something",
        "entity_type": entity_type,
        "entity_name": entity_name,
        "entity_id": entity_id,
        "result": result,
        "http_status_code": status,
        "cluster_id": None,
        "cluster_name": "gpu-cluster",
        "request_id": f"req-{event_id}",
        "metadata": list(metadata.items()) if metadata is not None else None,
        "event_id_derived": False,
        "ingest_run_id": run,
        "ingested_at": ingested_at,
    }


def h(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day + timedelta(hours=hour, minutes=minute)


DAY1_FILE_A = [
    audit("evt-01", h(DAY1, 8), "sign-in"),
    audit("evt-02", h(DAY1, 8, 5), "sign-in", result="Failed", status=401, subject="mallory"),
    audit("evt-03", h(DAY1, 8, 10), "create", entity_type="project", entity_id="5", entity_name=UNICODE_NAME),
    audit(
        "evt-04",
        h(DAY1, 8, 20),
        "update",
        entity_type="project",
        entity_id="5",
        entity_name=QUOTED_NAME,
        metadata={"field": "quota", "note": "it's"},
    ),
    audit("evt-15", h(DAY1, 8, 20), "update", entity_type="Projects", entity_id="5", entity_name="p5"),
    audit("evt-05", h(DAY1, 9), "create", entity_type="AccessRule", entity_id="ar-1"),
    audit("evt-06", h(DAY1, 9, 5), "delete", entity_type="access-rule", entity_id="ar-1"),
    audit("evt-07", h(DAY1, 9, 10), "update", entity_type="Department", entity_id="5"),
    audit(
        "evt-08",
        h(DAY1, 9, 15),
        "create",
        entity_type="service-account",
        entity_id="app-1",
        result="Failed",
        status=403,
    ),
    audit("evt-09", h(DAY1, 9, 20), "update", entity_type="nodepool", entity_id="np-1"),
    audit("evt-16", h(DAY1, 9, 30), "update", entity_type="workload", entity_id="wl-1", status=None),
    audit("evt-17", h(DAY1, 9, 40), "create", entity_type="project", entity_id=None, entity_name="no id"),
]
# The same event stored again in another file, as only a hand-copied or restored file can do.
DAY1_FILE_B = [
    audit(
        "evt-04",
        h(DAY1, 8, 20),
        "update",
        entity_type="project",
        entity_id="5",
        entity_name="duplicate copy",
        run="run-2",
        ingested_at=DAY2 + timedelta(hours=6),
    ),
]
DAY2_FILE = [
    audit("evt-10", h(DAY2, 0, 30), "sign-out", run="run-2"),
    audit(
        "evt-11",
        h(DAY2, 0, 40),
        "update",
        entity_type="Settings",
        entity_id="tenant",
        status=500,
        run="run-2",
    ),
    audit("evt-12", h(DAY2, 0, 50), "reset-password", subject="bob", run="run-2"),
    audit(
        "evt-13",
        h(DAY2, 1),
        "update",
        entity_type="Roles",
        entity_id="role-7",
        metadata={"k": "v"},
        run="run-2",
    ),
    audit(
        "evt-14",
        h(DAY2, 1, 10),
        "create",
        entity_type="users",
        entity_id="u-9",
        entity_name=MARKUP_NAME,
        run="run-2",
    ),
    audit("evt-18", h(DAY2, 1, 20), "SIGN_IN", subject="eve", result=None, status=None, run="run-2"),
]
DISTINCT_EVENTS = 18


def run_record(
    run_id: str, start: datetime, end: datetime, status: str, *, started: datetime, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "stream": "audit",
        "mode": "sync",
        "window_start": start,
        "window_end": end,
        "status": status,
        "pages": 1,
        "requests": 2,
        "rows_received": 4,
        "rows_written": 4,
        "rows_new": 4,
        "duplicates_dropped": 0,
        "out_of_window": 0,
        "quarantined": 0,
        "retries": 0,
        "throttled_429": 0,
        "token_refreshes": 1,
        "api_total": 4,
        "total_mismatch": status == "mismatch",
        "repaged": False,
        "drift_fields": [("newField", 3)],
        "files": ["audit_events/event_date=2025-06-01/x.parquet"],
        "error": None,
        "started_at": started,
        "finished_at": started + timedelta(seconds=3),
        "duration_s": 3.0,
        "schema_version": 1,
        "code_version": "0.1.0",
    }
    row.update(extra)
    return row


RUNS = [
    run_record(
        "run-1", DAY1, h(DAY1, 12), "committed", started=h(DAY1, 12), rows_written=12, throttled_429=2
    ),
    run_record("run-2", h(DAY1, 18), DAY2, "mismatch", started=h(DAY2, 6), api_total=5, quarantined=2),
    run_record("run-2", DAY2, h(DAY2, 6), "failed", started=h(DAY2, 6, 1), error="boom", files=[]),
    run_record("run-3", DAY2, h(DAY2, 6), "committed", started=h(DAY2, 7)),
]

QUARANTINED = [
    {
        "stream": "audit",
        "run_id": "run-2",
        "window_start": h(DAY1, 18),
        "window_end": DAY2,
        "page_offset": 0,
        "record_index": 3,
        "reason": "timestamp is not ISO-8601",
        "raw": '{"id": "bad-1", "timestamp": "nope"}',
        "quarantined_at": h(DAY2, 6),
    },
    {
        "stream": "audit",
        "run_id": "run-2",
        "window_start": h(DAY1, 18),
        "window_end": DAY2,
        "page_offset": 1000,
        "record_index": 0,
        "reason": "not a JSON object",
        "raw": "not json {",
        "quarantined_at": h(DAY2, 6),
    },
]


RECONCILED = [
    {
        "run_id": "run-4",
        "stream": "audit",
        "window_start": DAY1,
        "window_end": DAY2,
        "checked_at": h(DAY2, 8),
        "api_total": 4,
        "api_ids": 4,
        "stored_before": 3,
        "late_rows_added": 1,
        "missing_from_api": 0,
        "sample_late_ids": ["late-1"],
        "sample_missing_ids": [],
        "status": "late_rows",
        "sealed": False,
        "error": None,
    },
]


def write_parquet(lake: Lake, rel: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """Commit ``rows`` to the Delta table whose directory ``rel`` lies in (one commit per call).

    ``rel`` keeps the shape of a file path so the fixtures read like the lake they build; the
    table is the longest registered table name it starts with, and an ``event_date=`` segment
    gives the audit rows their partition.
    """
    spec = max((s for name, s in BY_NAME.items() if rel.startswith(name + "/")), key=lambda s: len(s.name))
    table = pa.Table.from_pylist(rows, schema=schema)
    for part in rel.split("/"):
        key, _, value = part.partition("=")
        if key in spec.partition_by:
            table = table.append_column(key, pa.array([date.fromisoformat(value)] * table.num_rows))
    Tables(lake).append(spec, table)


def write_state(lake: Lake, stream: str, watermark: str, run_id: str) -> None:
    doc = {
        "stream": stream,
        "watermark": watermark,
        "updated_at": "2025-06-02T07:00:03.000000Z",
        "run_id": run_id,
    }
    path = Path(lake.full_path(f"_state/{stream}.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def write_audit_day1(lake: Lake) -> None:
    write_parquet(lake, "audit_events/event_date=2025-06-01/a.parquet", DAY1_FILE_A, AUDIT_EVENTS)


def populate(lake: Lake, *, foreign_copy: bool = False) -> None:
    write_audit_day1(lake)
    if foreign_copy:
        write_parquet(lake, "audit_events/event_date=2025-06-01/b.parquet", DAY1_FILE_B, AUDIT_EVENTS)
    write_parquet(lake, "audit_events/event_date=2025-06-02/c.parquet", DAY2_FILE, AUDIT_EVENTS)
    for i, run in enumerate(RUNS):
        write_parquet(lake, f"_ops/ingest_runs/stream=audit/run-{i}.parquet", [run], INGEST_RUNS)
    write_parquet(lake, "quarantine/stream=audit/run-2.parquet", QUARANTINED, QUARANTINE)
    write_parquet(lake, "_ops/reconciliation/stream=audit/run-4.parquet", RECONCILED, RECONCILIATION)
    write_state(lake, "audit", "2025-06-02T06:00:00.000000Z", "run-3")
    write_state(lake, "workloads", "2025-06-01T00:00:00.000000Z", "run-w")


def rows(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return run_query(warehouse, sql, params).to_pylist()


def all_column_types(warehouse: Path) -> dict[str, list[tuple[str, str]]]:
    """Every view's (column, type) list, read in one go: binding all views costs a file scan."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        found: dict[str, list[tuple[str, str]]] = {}
        listing = con.sql(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE NOT internal ORDER BY table_name, column_index"
        ).fetchall()
        for table, name, dtype in listing:
            found.setdefault(str(table), []).append((str(name), str(dtype)))
        return found
    finally:
        con.close()


def column_types(warehouse: Path, view: str) -> list[tuple[str, str]]:
    return all_column_types(warehouse)[view]


def view_names(warehouse: Path) -> set[str]:
    return {
        str(r["view_name"])
        for r in rows(warehouse, "SELECT view_name FROM duckdb_views() WHERE NOT internal")
    }
