"""Column names and types of the GPU-efficiency tables: metric samples, what was fetched, reports.

Kept apart from usage_schemas.py (workloads and org units) so each file stays one subject; the
rules are the same: explicit Arrow types, microsecond UTC timestamps. Every row has ``row_hash``,
a digest of its key, so manifests, verify and compaction treat these tables like the others.

A *series* is (entity, metric, labels): a workload's GPU_UTILIZATION, a project's GPU_QUOTA.
A sample is stored once per (series, sample_time); ``resolution_s`` is the spacing it was
fetched at, which is the time each sample stands for in the views.
"""

from __future__ import annotations

import pyarrow as pa

from transforms.schemas import UTC_TS

METRIC_SAMPLES_DIR = "usage/workload_metric_samples"
ORG_UNIT_SAMPLES_DIR = "usage/org_unit_metric_samples"
METRIC_FETCHES_DIR = "usage/metric_fetches"
RUNAI_REPORTS_DIR = "usage/runai_consumption_reports"

_LINEAGE = [
    pa.field("row_hash", pa.string(), nullable=False),
    pa.field("ingest_run_id", pa.string(), nullable=False),
    pa.field("ingested_at", UTC_TS, nullable=False),
]

# GET /api/v1/workloads/{id}/metrics: one row per (workload, metric, labels, sample_time).
WORKLOAD_METRIC_SAMPLES = pa.schema(
    [
        pa.field("workload_id", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("labels", pa.string(), nullable=False),  # canonical JSON of the labels, '' for none
        pa.field("sample_time", UTC_TS, nullable=False),
        pa.field("value", pa.float64()),
        pa.field("resolution_s", pa.int32(), nullable=False),
        *_LINEAGE,
    ]
)

# GET /api/v1/org-unit/{projects|departments}/{id}/metrics: GPU_QUOTA, GPU_ALLOCATION over time.
ORG_UNIT_METRIC_SAMPLES = pa.schema(
    [
        pa.field("unit_kind", pa.string(), nullable=False),  # project | department
        pa.field("unit_id", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("sample_time", UTC_TS, nullable=False),
        pa.field("value", pa.float64()),
        pa.field("resolution_s", pa.int32(), nullable=False),
        *_LINEAGE,
    ]
)

# What each run asked for, per entity: the fetch cursor (max window_end) and the gaps.
# status: 'fetched' ([window_start, window_end) was read), 'gap' (that span had expired on the
# control plane before we asked: those samples are lost, and said so).
METRIC_FETCHES = pa.schema(
    [
        pa.field("entity_kind", pa.string(), nullable=False),  # workload | project | department
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("window_start", UTC_TS, nullable=False),
        pa.field("window_end", UTC_TS, nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("samples", pa.int64(), nullable=False),
        pa.field("requests", pa.int32(), nullable=False),
        pa.field("resolution_s", pa.int32(), nullable=False),
        *_LINEAGE,
    ]
)

# Run:ai's own consumption report (POST /api/v1/org-unit/reports), one row per CSV row.
RUNAI_REPORTS = pa.schema(
    [
        pa.field("report_id", pa.string(), nullable=False),
        pa.field("period_start", UTC_TS, nullable=False),
        pa.field("period_end", UTC_TS, nullable=False),
        pa.field("group_by", pa.string(), nullable=False),
        pa.field("project_id", pa.string()),
        pa.field("project_name", pa.string()),
        pa.field("department_id", pa.string()),
        pa.field("department_name", pa.string()),
        pa.field("cluster_id", pa.string()),
        pa.field("gpu_allocation_hours", pa.float64()),
        pa.field("gpu_utilization_hours", pa.float64()),
        pa.field("columns", pa.map_(pa.string(), pa.string())),  # the CSV row as it came
        *_LINEAGE,
    ]
)
