"""What we keep of a workload, its phase history and its events: the column declarations.

Wire names follow the 2.24 reference (README §4.1, §4.4, §4.5). Two choices worth knowing:

* ``requested_gpus`` is the workload's total (``workloadRequestedResources.gpu.request``); a
  distributed workload's per-pod request times its pod count is used when the total is absent.
* The counters ``totalRunningTimeSeconds``/``totalPendingTimeSeconds`` (and ``updatedAt``, which a
  server may bump for them) are stored but left out of ``row_hash``: they tick while a workload
  runs, and a row per tick would bury the changes that matter (phase, allocation, deletion).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from transforms.records import Column, Normalised, col, normalise_records
from transforms.usage_schemas import WORKLOAD_EVENTS, WORKLOAD_HISTORY, WORKLOAD_SNAPSHOTS

WORKLOAD_COLUMNS: tuple[Column, ...] = (
    col("workload_id", "id", required=True),
    col("name", "name"),
    col("type", "type"),
    col("category", "category"),
    col("phase", "phase"),
    col("phase_message", "phaseMessage"),
    col("k8s_phase", "k8sPhase"),
    col("tenant_id", "tenantId"),
    col("cluster_id", "clusterId"),
    col("department_id", "departmentId"),
    col("department_name", "departmentName"),
    col("project_id", "projectId"),
    col("project_name", "projectName"),
    col("namespace", "namespace"),
    col("submitted_by", "submittedBy"),
    col("source", "source"),
    col("priority_class_name", "priorityClassName"),
    col("priority", "priority"),
    col("created_at", "createdAt", required=True),
    col("updated_at", "updatedAt", hashed=False),
    col("phase_updated_at", "phaseUpdatedAt"),
    col("completed_at", "completedAt"),
    col("deleted_at", "deletedAt"),
    col("gpu_request_type", "workloadRequestedResources.gpuRequestType"),
    col("requested_gpus", "workloadRequestedResources.gpu.request"),
    col("requested_gpu_memory", "workloadRequestedResources.gpuMemory.request"),
    col("requested_pods", "requestedPods.number"),
    col("allocated_gpus", "allocatedResources.gpu"),
    col("allocated_gpu_memory", "allocatedResources.gpuMemory"),
    col("allocated_cpu", "allocatedResources.cpu"),
    col("allocated_cpu_memory", "allocatedResources.cpuMemory"),
    col("running_pods", "runningPods"),
    col("idle_allocated_gpus", "idleAllocatedGpus", hashed=False),
    col("total_running_seconds", "totalRunningTimeSeconds", hashed=False),
    col("total_pending_seconds", "totalPendingTimeSeconds", hashed=False),
    col("requested_node_pools", "requestedNodePools"),
    col("current_node_pools", "currentNodePools"),
    col("images", "images"),
    col("distributed_framework", "distributedFramework"),
    col("preemptible", "preemptible"),
)

# Every key of the 2.24 Workload/WorkloadDetailed schema: anything else is drift.
WORKLOAD_KEYS = frozenset(
    [
        "tenantId",
        "runningPods",
        "phaseUpdatedAt",
        "k8sPhaseUpdatedAt",
        "updatedAt",
        "source",
        "deletedAt",
        "type",
        "name",
        "id",
        "priority",
        "priorityClassName",
        "submittedBy",
        "clusterId",
        "projectName",
        "projectId",
        "departmentName",
        "departmentId",
        "namespace",
        "createdAt",
        "workloadRequestedResources",
        "podsRequestedResources",
        "allocatedResources",
        "actionsSupport",
        "phase",
        "conditions",
        "phaseMessage",
        "k8sPhase",
        "requestedPods",
        "requestedNodePools",
        "currentNodePools",
        "completedAt",
        "images",
        "childrenIds",
        "urls",
        "datasources",
        "environments",
        "externalConnections",
        "distributedFramework",
        "additionalFields",
        "preemptible",
        "environmentVariables",
        "command",
        "arguments",
        "phaseReason",
        "idleGpus",
        "idleAllocatedGpus",
        "totalPendingTimeSeconds",
        "totalRunningTimeSeconds",
        "category",
        "guaranteedRuntimeEndsAt",
        "aiApplicationId",
        "aiApplicationName",
        "sourceApi",
        "topology",
        "pendingSchedulingMessages",
    ]
)

HISTORY_COLUMNS: tuple[Column, ...] = (
    col("record_time", "meta.creationTimestamp", required=True),
    col("record_type", "meta.type", required=True),
    col("phase", "spec.phaseUpdate.phase"),
    col("phase_message", "spec.phaseUpdate.phaseMessage"),
    col("event_id", "spec.event.id"),
    col("event_type", "spec.event.type"),
    col("event_reason", "spec.event.reason"),
    col("event_message", "spec.event.message"),
)

EVENT_COLUMNS: tuple[Column, ...] = (
    col("event_id", "id"),
    col("created_at", "createdAt", required=True),
    col("type", "type"),
    col("reason", "reason"),
    col("message", "message"),
    col("source", "source"),
    col("cluster_id", "clusterId"),
    col("involved_kind", "involvedObject.kind"),
    col("involved_name", "involvedObject.name"),
    col("involved_namespace", "involvedObject.namespace"),
    col("involved_uid", "involvedObject.uid"),
)
EVENT_KEYS = frozenset(
    ["createdAt", "id", "type", "clusterId", "message", "reason", "source", "involvedObject"]
)


def normalise_workloads(
    items: Sequence[Any], *, observed_at: datetime, run_id: str, ingested_at: datetime
) -> Normalised:
    """Workload list items -> WORKLOAD_SNAPSHOTS rows (requested GPUs completed from per-pod requests)."""
    lineage = {"observed_at": observed_at, "ingest_run_id": run_id, "ingested_at": ingested_at}
    out = normalise_records(
        items, WORKLOAD_COLUMNS, WORKLOAD_SNAPSHOTS, known_keys=WORKLOAD_KEYS, extra=lineage
    )
    by_id = {item.get("id"): item for item in items if isinstance(item, dict)}
    for row in out.rows:
        if row["requested_gpus"] is None:
            row["requested_gpus"] = _per_pod_total(by_id.get(row["workload_id"]))
    return out


def normalise_history(
    workload_id: str, records: Sequence[Any], *, observed_at: datetime, run_id: str, ingested_at: datetime
) -> Normalised:
    """History records of one workload -> WORKLOAD_HISTORY rows, whatever order the API sent them in."""
    extra = {
        "workload_id": workload_id,
        "observed_at": observed_at,
        "ingest_run_id": run_id,
        "ingested_at": ingested_at,
    }
    return normalise_records(
        records, HISTORY_COLUMNS, WORKLOAD_HISTORY, known_keys={"meta", "spec"}, extra=extra
    )


def normalise_events(
    workload_id: str, events: Sequence[Any], *, observed_at: datetime, run_id: str, ingested_at: datetime
) -> Normalised:
    """Events of one workload -> WORKLOAD_EVENTS rows (the API may send null items: those are skipped)."""
    extra = {
        "workload_id": workload_id,
        "observed_at": observed_at,
        "ingest_run_id": run_id,
        "ingested_at": ingested_at,
    }
    present = [event for event in events if event is not None]
    return normalise_records(present, EVENT_COLUMNS, WORKLOAD_EVENTS, known_keys=EVENT_KEYS, extra=extra)


def _per_pod_total(item: dict[str, Any] | None) -> float | None:
    """Per-pod GPU request times the pod count, for a workload whose total request is absent."""
    if item is None:
        return None
    pods_request = ((item.get("podsRequestedResources") or {}).get("gpu") or {}).get("request")
    pods = (item.get("requestedPods") or {}).get("number") or 1
    if isinstance(pods_request, int | float) and not isinstance(pods_request, bool):
        return float(pods_request) * pods if isinstance(pods, int) else float(pods_request)
    return None
