"""Column names and types of the usage half of the lake: workloads and the org units.

Kept apart from schemas.py (audit and operations) so each file stays one subject; the rules are
the same: explicit Arrow types, microsecond UTC timestamps, enumerations as plain strings.

Every stored entity row carries ``row_hash``: a digest of the fields that describe its state (not
of counters that tick on their own, such as ``totalRunningTimeSeconds``). A run stores a row only
when the hash differs from the entity's latest stored row, so the tables hold one row per
observed change, and a rerun that sees nothing new writes nothing.
"""

from __future__ import annotations

import pyarrow as pa

from transforms.schemas import SCHEMA_VERSION, UTC_TS

_STRINGS = pa.list_(pa.string())


def _schema(entity: str, fields: list[pa.Field]) -> pa.Schema:
    lineage = [
        pa.field("row_hash", pa.string(), nullable=False),
        pa.field("observed_at", UTC_TS, nullable=False),
        pa.field("ingest_run_id", pa.string(), nullable=False),
        pa.field("ingested_at", UTC_TS, nullable=False),
    ]
    return pa.schema(
        fields + lineage,
        metadata={"runai_ledger.schema_version": str(SCHEMA_VERSION), "runai_ledger.entity": entity},
    )


# One row per observed change of a workload (GET /api/v1/workloads, deleted or not).
WORKLOAD_SNAPSHOTS = _schema(
    "workload_snapshots",
    [
        pa.field("workload_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("type", pa.string()),
        pa.field("category", pa.string()),
        pa.field("phase", pa.string()),
        pa.field("phase_message", pa.string()),
        pa.field("k8s_phase", pa.string()),
        pa.field("tenant_id", pa.int64()),
        pa.field("cluster_id", pa.string()),
        pa.field("department_id", pa.string()),
        pa.field("department_name", pa.string()),
        pa.field("project_id", pa.string()),
        pa.field("project_name", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("submitted_by", pa.string()),
        pa.field("source", pa.string()),
        pa.field("priority_class_name", pa.string()),
        pa.field("priority", pa.int32()),
        pa.field("created_at", UTC_TS),
        pa.field("updated_at", UTC_TS),
        pa.field("phase_updated_at", UTC_TS),
        pa.field("completed_at", UTC_TS),
        pa.field("deleted_at", UTC_TS),
        pa.field("gpu_request_type", pa.string()),
        pa.field("requested_gpus", pa.float64()),
        pa.field("requested_gpu_memory", pa.string()),
        pa.field("requested_pods", pa.int32()),
        pa.field("allocated_gpus", pa.float64()),
        pa.field("allocated_gpu_memory", pa.string()),
        pa.field("allocated_cpu", pa.float64()),
        pa.field("allocated_cpu_memory", pa.string()),
        pa.field("running_pods", pa.int32()),
        pa.field("idle_allocated_gpus", pa.float64()),
        pa.field("total_running_seconds", pa.int64()),
        pa.field("total_pending_seconds", pa.int64()),
        pa.field("requested_node_pools", _STRINGS),
        pa.field("current_node_pools", _STRINGS),
        pa.field("images", _STRINGS),
        pa.field("distributed_framework", pa.string()),
        pa.field("preemptible", pa.bool_()),
    ],
)

# Phase history and Kubernetes events from GET /api/v1/workloads/{id}/history (one row per record).
WORKLOAD_HISTORY = _schema(
    "workload_history",
    [
        pa.field("workload_id", pa.string(), nullable=False),
        pa.field("record_time", UTC_TS, nullable=False),
        pa.field("record_type", pa.string(), nullable=False),
        pa.field("phase", pa.string()),
        pa.field("phase_message", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("event_reason", pa.string()),
        pa.field("event_message", pa.string()),
    ],
)

# Kubernetes events from GET /api/v1/workloads/{id}/events (one row per event).
WORKLOAD_EVENTS = _schema(
    "workload_events",
    [
        pa.field("workload_id", pa.string(), nullable=False),
        pa.field("event_id", pa.string()),
        pa.field("created_at", UTC_TS, nullable=False),
        pa.field("type", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("message", pa.string()),
        pa.field("source", pa.string()),
        pa.field("cluster_id", pa.string()),
        pa.field("involved_kind", pa.string()),
        pa.field("involved_name", pa.string()),
        pa.field("involved_namespace", pa.string()),
        pa.field("involved_uid", pa.string()),
    ],
)

# Org units: one row per observed version; ``is_deleted`` marks a version seen to disappear.
_ORG_TAIL = [pa.field("is_deleted", pa.bool_(), nullable=False)]

CLUSTERS = _schema(
    "clusters",
    [
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("tenant_id", pa.int64()),
        pa.field("domain", pa.string()),
        pa.field("version", pa.string()),
        pa.field("state", pa.string()),
        pa.field("created_at", UTC_TS),
        pa.field("updated_at", UTC_TS),
        pa.field("deleted_at", UTC_TS),
        *_ORG_TAIL,
    ],
)

DEPARTMENTS = _schema(
    "departments",
    [
        pa.field("department_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("cluster_id", pa.string()),
        pa.field("description", pa.string()),
        pa.field("gpu_quota", pa.float64()),
        pa.field("created_at", UTC_TS),
        pa.field("updated_at", UTC_TS),
        pa.field("created_by", pa.string()),
        pa.field("updated_by", pa.string()),
        *_ORG_TAIL,
    ],
)

PROJECTS = _schema(
    "projects",
    [
        pa.field("project_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("cluster_id", pa.string()),
        pa.field("department_id", pa.string()),
        pa.field("department_name", pa.string()),
        pa.field("description", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("phase", pa.string()),
        pa.field("gpu_quota", pa.float64()),
        pa.field("created_at", UTC_TS),
        pa.field("updated_at", UTC_TS),
        pa.field("created_by", pa.string()),
        pa.field("updated_by", pa.string()),
        *_ORG_TAIL,
    ],
)

NODE_POOLS = _schema(
    "node_pools",
    [
        pa.field("node_pool_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("cluster_id", pa.string()),
        pa.field("cluster_name", pa.string()),
        pa.field("label_key", pa.string()),
        pa.field("label_value", pa.string()),
        pa.field("is_default", pa.bool_()),
        pa.field("phase", pa.string()),
        pa.field("created_at", UTC_TS),
        pa.field("updated_at", UTC_TS),
        pa.field("deleted_at", UTC_TS),
        *_ORG_TAIL,
    ],
)

USERS = _schema(
    "users",
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("username", pa.string()),
        pa.field("created_by", pa.string()),
        pa.field("created_at", UTC_TS),
        pa.field("updated_at", UTC_TS),
        pa.field("last_login", UTC_TS),
        pa.field("is_local", pa.bool_()),
        pa.field("groups", _STRINGS),
        *_ORG_TAIL,
    ],
)

WORKLOAD_SNAPSHOTS_DIR = "workload_snapshots"
WORKLOAD_HISTORY_DIR = "workload_history"
WORKLOAD_EVENTS_DIR = "workload_events"
ORG_DIR = "org"
ORG_SCHEMAS: dict[str, pa.Schema] = {
    "clusters": CLUSTERS,
    "departments": DEPARTMENTS,
    "node_pools": NODE_POOLS,
    "projects": PROJECTS,
    "users": USERS,
}
