"""The single source of truth for column names and types of everything the lake stores.

Nothing is left to pandas' type inference: an int column with a missing value would turn into
float, a timestamp without a zone would shift windows. Timestamps are microsecond, UTC-aware.
Enumerations (action, result, ...) are plain strings so a new value from a newer control plane is
stored rather than rejected; unknown *fields* are counted as drift instead.

SCHEMA_VERSION changes whenever a stored schema changes; it is recorded with every run.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 2  # 2: audit_events.api_flavour + extra_fields, ingest_runs.api_features

UTC_TS = pa.timestamp("us", tz="UTC")

# The audit log's wire keys (snake_case, 2.24), in the order the API documents them.
AUDIT_WIRE_FIELDS: tuple[str, ...] = (
    "id",
    "timestamp",
    "tenant_id",
    "subject",
    "subject_type",
    "source_ip",
    "action",
    "http_method",
    "url",
    "entity_type",
    "entity_name",
    "entity_id",
    "result",
    "http_status_code",
    "cluster_name",
    "cluster_id",
    "request_id",
    "metadata",
)

# Stored audit events. event_date is the hive partition key (from the directory name), not a
# column inside the files. ingest_run_id and ingested_at are lineage: which run wrote the row.
AUDIT_EVENTS = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_time", UTC_TS, nullable=False),
        pa.field("tenant_id", pa.string()),
        pa.field("subject", pa.string()),
        pa.field("subject_type", pa.string()),
        pa.field("source_ip", pa.string()),
        pa.field("action", pa.string()),
        pa.field("http_method", pa.string()),
        pa.field("url", pa.string()),
        pa.field("entity_type", pa.string()),
        pa.field("entity_name", pa.string()),
        pa.field("entity_id", pa.string()),
        pa.field("result", pa.string()),
        pa.field("http_status_code", pa.int32()),
        pa.field("cluster_id", pa.string()),
        pa.field("cluster_name", pa.string()),
        pa.field("request_id", pa.string()),
        pa.field("metadata", pa.map_(pa.string(), pa.string())),
        pa.field("event_id_derived", pa.bool_(), nullable=False),
        # Which API produced the row: 'audit_log' (GET /api/v1/audit/log, 2.19 on) or 'k8s_audit'
        # (the legacy GET /v1/k8s/audit of 2.18/2.19, camelCase, integer ids). Files written before
        # the column existed read as null, meaning 'audit_log'.
        pa.field("api_flavour", pa.string()),
        # Top-level keys of the record that no column holds (fields a newer API added): key ->
        # the value's JSON text, null when there were none. Stored, so an auditor loses nothing,
        # and counted as drift ``field:<key>`` in the run record.
        pa.field("extra_fields", pa.map_(pa.string(), pa.string())),
        pa.field("ingest_run_id", pa.string(), nullable=False),
        pa.field("ingested_at", UTC_TS, nullable=False),
    ],
    metadata={"runai_ledger.schema_version": str(SCHEMA_VERSION), "runai_ledger.entity": "audit_events"},
)

# Records that failed validation, kept with the reason and the raw payload (never dropped).
QUARANTINE = pa.schema(
    [
        pa.field("stream", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("window_start", UTC_TS, nullable=False),
        pa.field("window_end", UTC_TS, nullable=False),
        pa.field("page_offset", pa.int64()),
        pa.field("record_index", pa.int64()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("quarantined_at", UTC_TS, nullable=False),
    ],
    metadata={"runai_ledger.schema_version": str(SCHEMA_VERSION), "runai_ledger.entity": "quarantine"},
)

# One row per run and window (slice): what the API said, what we stored, what it cost.
INGEST_RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("stream", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("window_start", UTC_TS, nullable=False),
        pa.field("window_end", UTC_TS, nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("pages", pa.int64(), nullable=False),
        pa.field("requests", pa.int64(), nullable=False),
        pa.field("rows_received", pa.int64(), nullable=False),
        pa.field("rows_written", pa.int64(), nullable=False),
        pa.field("rows_new", pa.int64(), nullable=False),
        pa.field("duplicates_dropped", pa.int64(), nullable=False),
        pa.field("out_of_window", pa.int64(), nullable=False),
        pa.field("quarantined", pa.int64(), nullable=False),
        pa.field("retries", pa.int64(), nullable=False),
        pa.field("throttled_429", pa.int64(), nullable=False),
        pa.field("token_refreshes", pa.int64(), nullable=False),
        pa.field("api_total", pa.int64()),
        pa.field("total_mismatch", pa.bool_(), nullable=False),
        pa.field("repaged", pa.bool_(), nullable=False),
        pa.field("drift_fields", pa.map_(pa.string(), pa.int64())),
        # Coverage evidence (nullable: records written before they existed stay readable). api_query
        # is the request minus the page offset; id_set_digest is transforms.digest.id_set_digest
        # over the ids the window's file holds, so rows_written and the ids can be re-proved later.
        pa.field("api_query", pa.string()),
        pa.field("id_set_digest", pa.string()),
        # What the run found the tenant's API to offer (runai_extract/api/features.py), e.g.
        # 'audit=k8s_audit'; and the deprecation notices it saw (headers or known paths).
        pa.field("api_features", pa.string()),
        pa.field("deprecations", pa.list_(pa.string())),
        pa.field("files", pa.list_(pa.string())),
        pa.field("error", pa.string()),
        pa.field("started_at", UTC_TS, nullable=False),
        pa.field("finished_at", UTC_TS, nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("code_version", pa.string(), nullable=False),
    ],
    metadata={"runai_ledger.schema_version": str(SCHEMA_VERSION), "runai_ledger.entity": "ingest_runs"},
)

# One row per recheck run and window: the API's ids compared with the ids stored before it.
# status is 'clean', 'late_rows', 'missing_from_api' or 'failed'; sealed marks a clean window
# old enough (Settings.seal_after) that auditors may treat it as closed.
RECONCILIATION = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("stream", pa.string(), nullable=False),
        pa.field("window_start", UTC_TS, nullable=False),
        pa.field("window_end", UTC_TS, nullable=False),
        pa.field("checked_at", UTC_TS, nullable=False),
        pa.field("api_total", pa.int64()),
        pa.field("api_ids", pa.int64(), nullable=False),
        pa.field("stored_before", pa.int64(), nullable=False),
        pa.field("late_rows_added", pa.int64(), nullable=False),
        pa.field("missing_from_api", pa.int64(), nullable=False),
        pa.field("sample_late_ids", pa.list_(pa.string()), nullable=False),
        pa.field("sample_missing_ids", pa.list_(pa.string()), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("sealed", pa.bool_(), nullable=False),
        pa.field("error", pa.string()),
    ],
    metadata={"runai_ledger.schema_version": str(SCHEMA_VERSION), "runai_ledger.entity": "reconciliation"},
)

# Where each table lives inside the lake.
AUDIT_EVENTS_DIR = "audit_events"
QUARANTINE_DIR = "quarantine"
INGEST_RUNS_DIR = "_ops/ingest_runs"
RECONCILIATION_DIR = "_ops/reconciliation"
STATE_DIR = "_state"
