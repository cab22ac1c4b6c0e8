"""Every table of the lake, by name: where it lives, its columns, how it is partitioned.

One registry so that writers, the warehouse's source views, compaction and verify agree on the
same list; adding a table means adding it here. Only the audit log is partitioned (by UTC day):
it is the one table that grows by thousands of rows a day and is queried by day. The others are
small enough that compaction keeps each in a handful of files.
"""

from __future__ import annotations

import pyarrow as pa

from transforms.metric_schemas import (
    METRIC_FETCHES,
    METRIC_FETCHES_DIR,
    METRIC_SAMPLES_DIR,
    ORG_UNIT_METRIC_SAMPLES,
    ORG_UNIT_SAMPLES_DIR,
    RUNAI_REPORTS,
    RUNAI_REPORTS_DIR,
    WORKLOAD_METRIC_SAMPLES,
)
from transforms.schemas import (
    AUDIT_EVENTS,
    AUDIT_EVENTS_DIR,
    INGEST_RUNS,
    INGEST_RUNS_DIR,
    QUARANTINE,
    QUARANTINE_DIR,
    RECONCILIATION,
    RECONCILIATION_DIR,
)
from transforms.tables import TableSpec
from transforms.usage_schemas import (
    ORG_DIR,
    ORG_SCHEMAS,
    WORKLOAD_EVENTS,
    WORKLOAD_EVENTS_DIR,
    WORKLOAD_HISTORY,
    WORKLOAD_HISTORY_DIR,
    WORKLOAD_SNAPSHOTS,
    WORKLOAD_SNAPSHOTS_DIR,
)

EVENT_DATE = pa.field("event_date", pa.date32(), nullable=False)

# The hash-chained manifests (ledger/manifests.py): one row per manifest, its canonical JSON and hash.
MANIFESTS = pa.schema(
    [
        pa.field("stream", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("prev_sha256", pa.string(), nullable=False),
        pa.field("manifest", pa.string(), nullable=False),
        pa.field("written_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
MANIFESTS_TABLE = TableSpec("_ledger/manifests", MANIFESTS, id_column="sha256")

# Closed days are clustered by subject when compacted: "what did this person do" is the common
# review question, and sorted subjects also compress and group faster (docs/performance.md).
AUDIT_EVENTS_TABLE = TableSpec(
    AUDIT_EVENTS_DIR,
    pa.schema([*AUDIT_EVENTS, EVENT_DATE]),
    ("event_date",),
    id_column="event_id",
    cluster_by=("subject",),
    compact_row_group_rows=32_768,
)
QUARANTINE_TABLE = TableSpec(QUARANTINE_DIR, QUARANTINE, id_column="run_id")
INGEST_RUNS_TABLE = TableSpec(INGEST_RUNS_DIR, INGEST_RUNS, id_column="run_id")
RECONCILIATION_TABLE = TableSpec(RECONCILIATION_DIR, RECONCILIATION, id_column="run_id")
WORKLOAD_SNAPSHOTS_TABLE = TableSpec(WORKLOAD_SNAPSHOTS_DIR, WORKLOAD_SNAPSHOTS)
WORKLOAD_HISTORY_TABLE = TableSpec(WORKLOAD_HISTORY_DIR, WORKLOAD_HISTORY)
WORKLOAD_EVENTS_TABLE = TableSpec(WORKLOAD_EVENTS_DIR, WORKLOAD_EVENTS)
ORG_TABLES: dict[str, TableSpec] = {
    kind: TableSpec(f"{ORG_DIR}/{kind}", schema) for kind, schema in sorted(ORG_SCHEMAS.items())
}
# GPU efficiency (issue 15): metric samples, what was fetched (cursors and gaps), Run:ai's reports.
WORKLOAD_METRIC_SAMPLES_TABLE = TableSpec(METRIC_SAMPLES_DIR, WORKLOAD_METRIC_SAMPLES)
ORG_UNIT_METRIC_SAMPLES_TABLE = TableSpec(ORG_UNIT_SAMPLES_DIR, ORG_UNIT_METRIC_SAMPLES)
METRIC_FETCHES_TABLE = TableSpec(METRIC_FETCHES_DIR, METRIC_FETCHES)
RUNAI_REPORTS_TABLE = TableSpec(RUNAI_REPORTS_DIR, RUNAI_REPORTS)
GPU_METRIC_TABLES = (
    WORKLOAD_METRIC_SAMPLES_TABLE,
    ORG_UNIT_METRIC_SAMPLES_TABLE,
    METRIC_FETCHES_TABLE,
    RUNAI_REPORTS_TABLE,
)

ALL_TABLES: tuple[TableSpec, ...] = (
    AUDIT_EVENTS_TABLE,
    QUARANTINE_TABLE,
    INGEST_RUNS_TABLE,
    RECONCILIATION_TABLE,
    WORKLOAD_SNAPSHOTS_TABLE,
    WORKLOAD_HISTORY_TABLE,
    WORKLOAD_EVENTS_TABLE,
    *ORG_TABLES.values(),
    MANIFESTS_TABLE,
    *GPU_METRIC_TABLES,
)
# The tables each stream writes its data to (manifests, verify and maintenance walk these).
STREAM_TABLES: dict[str, tuple[TableSpec, ...]] = {
    "audit": (AUDIT_EVENTS_TABLE,),
    "workloads": (WORKLOAD_SNAPSHOTS_TABLE, WORKLOAD_HISTORY_TABLE, WORKLOAD_EVENTS_TABLE),
    "org": tuple(ORG_TABLES.values()),
    # The ledger's own records: manifested once per run (ledger/manifests.manifest_pending).
    "ledger": (INGEST_RUNS_TABLE, QUARANTINE_TABLE, RECONCILIATION_TABLE),
    # Workload metrics and the org units' daily quota series share one chain (and the fetch log).
    "metrics": (WORKLOAD_METRIC_SAMPLES_TABLE, ORG_UNIT_METRIC_SAMPLES_TABLE, METRIC_FETCHES_TABLE),
    "reports": (RUNAI_REPORTS_TABLE,),
}
BY_NAME: dict[str, TableSpec] = {spec.name: spec for spec in ALL_TABLES}
