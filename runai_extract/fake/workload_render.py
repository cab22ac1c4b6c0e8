"""A workload as the 2.24 API shows it at one moment: the ``Workload`` wire object (camelCase,
examples/workloads_page.json) and the comparable values its list filters and sorts on.

Semantics the extractor relies on (README 4.1 leaves them open; the fake fixes them):

* ``allocatedResources.gpu`` is the requested GPUs while the phase is Running and 0 otherwise,
  constant through a Running interval; ``runningPods`` likewise (all pods or none).
* ``phaseUpdatedAt`` (= ``k8sPhaseUpdatedAt``) is the last phase change; ``updatedAt`` is the
  last change of any kind (phase change or deletion); ``completedAt`` is set once the phase is
  Completed, Failed or Stopped; ``deletedAt`` once deleted.
* ``totalRunningTimeSeconds``/``totalPendingTimeSeconds`` are whole seconds spent Running/Pending
  up to the moment shown.
* ``projectName``/``departmentName`` are the org units' names in force at that moment (so a
  rename shows on workloads too); ``namespace`` keeps the project's original name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from runai_extract.fake.lifecycle import PENDING, RUNNING, WorkloadPlan
from runai_extract.fake.listquery import FieldKind, Value
from runai_extract.fake.orgunits import OrgUnit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAIVE_EPOCH = datetime(1970, 1, 1)
K8S_PHASE = {"Creating": "Pending", "Pending": "Pending", "Running": "Running", "Completed": "Succeeded"}
K8S_PHASE.update({"Failed": "Failed", "Stopped": "Stopped"})
CATEGORY = {"Training": "Train", "Distributed": "Train", "Workspace": "Build", "Inference": "Deploy"}
PRIORITY = {"Training": (50, "train"), "Distributed": (50, "train"), "Workspace": (100, "build")}
PRIORITY["Inference"] = (150, "inference")
IMAGES = {
    "Training": "nvcr.io/nvidia/pytorch:24.05-py3",
    "Distributed": "nvcr.io/nvidia/pytorch:24.05-py3",
    "Workspace": "jupyter/scipy-notebook:2024-05-27",
    "Inference": "nvcr.io/nim/meta/llama3-8b-instruct:1.0.0",
}
# The list's sortBy/filterBy fields (README 4.1) and how each compares (dates: UTC microseconds).
WORKLOAD_FIELDS: dict[str, FieldKind] = {
    "type": "string", "name": "string", "clusterId": "string", "projectId": "string",
    "projectName": "string", "departmentId": "string", "departmentName": "string",
    "createdAt": "date", "deletedAt": "date", "submittedBy": "string", "phase": "string",
    "completedAt": "date", "nodepool": "string", "distributedFramework": "string",
    "allocatedGPU": "number", "idleGpus": "number", "idleAllocatedGpus": "number",
    "phaseUpdatedAt": "date", "category": "string", "priority": "number",
    "totalPendingTimeSeconds": "number", "totalRunningTimeSeconds": "number",
    "priorityClassName": "string", "guaranteedRuntimeEndsAt": "date", "aiApplicationId": "string",
    "aiApplicationName": "string",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServedWorkload:
    """One workload as served at one moment."""

    id: str
    keys: Mapping[str, Value]
    wire: dict[str, Any]
    deleted: bool


def iso_ms(ms: int) -> str:
    """UTC with milliseconds and a ``Z``, like every timestamp in the examples."""
    naive = NAIVE_EPOCH + timedelta(milliseconds=ms)  # naive: isoformat without "+00:00"
    return naive.isoformat(timespec="milliseconds") + "Z"


def optional_iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def render_workload(
    plan: WorkloadPlan, project: OrgUnit, department: OrgUnit, tenant_id: int, now_ms: int
) -> ServedWorkload:
    phase_ms, phase, message = plan.phase_at(now_ms)
    running = phase == RUNNING
    deleted, completed = plan.deleted_at(now_ms), plan.completed_at(now_ms)
    priority, priority_class = PRIORITY[plan.type]
    per_pod = plan.gpus / plan.pods
    wire: dict[str, Any] = {
        "tenantId": tenant_id,
        "id": plan.id,
        "name": plan.name,
        "type": plan.type,
        "category": CATEGORY[plan.type],
        "source": plan.source,
        "clusterId": plan.cluster_id,
        "projectId": project.id,
        "projectName": project.name_at(now_ms),
        "departmentId": department.id,
        "departmentName": department.name_at(now_ms),
        "namespace": project.namespace,
        "submittedBy": plan.submitted_by,
        "priority": priority,
        "priorityClassName": priority_class,
        "preemptible": plan.type in ("Training", "Distributed"),
        "phase": phase,
        "phaseMessage": message,
        "k8sPhase": K8S_PHASE[phase],
        "createdAt": iso_ms(plan.created_ms),
        "phaseUpdatedAt": iso_ms(phase_ms),
        "k8sPhaseUpdatedAt": iso_ms(phase_ms),
        "updatedAt": iso_ms(plan.updated_at(now_ms)),
        "completedAt": optional_iso(completed),
        "deletedAt": optional_iso(deleted),
        "runningPods": plan.pods if running else 0,
        "requestedPods": {"number": plan.pods, "min": plan.pods, "max": plan.pods}
        if plan.pods > 1
        else {"number": 1},
        "workloadRequestedResources": requested_resources(plan.gpus, plan.pods),
        "podsRequestedResources": requested_resources(per_pod, 1),
        "allocatedResources": {"gpu": plan.gpus if running else 0, "cpu": 8 * plan.pods if running else 0},
        "requestedNodePools": [plan.nodepool, "default"] if plan.nodepool != "default" else ["default"],
        "currentNodePools": [plan.nodepool] if running else [],
        "images": [IMAGES[plan.type]],
        "conditions": [_condition(phase, message, phase_ms)],
        "actionsSupport": {"delete": deleted is None, "suspend": plan.type != "Distributed"},
        "idleGpus": 0 if running else None,
        "idleAllocatedGpus": 0 if running else None,
        "totalPendingTimeSeconds": plan.seconds_in(PENDING, now_ms),
        "totalRunningTimeSeconds": plan.seconds_in(RUNNING, now_ms),
        "guaranteedRuntimeEndsAt": None,
    }
    if plan.type == "Distributed":
        wire["distributedFramework"] = "PyTorch"
    if plan.type in ("Workspace", "Inference"):
        wire["urls"] = [f"https://{plan.cluster_id[:8]}.example.com/{project.namespace}/{plan.name}/"]
    keys: dict[str, Value] = {
        field: _comparable(wire.get(field), kind) for field, kind in WORKLOAD_FIELDS.items() if kind != "date"
    }
    keys.update(
        createdAt=plan.created_ms * 1000,
        deletedAt=None if deleted is None else deleted * 1000,
        completedAt=None if completed is None else completed * 1000,
        phaseUpdatedAt=phase_ms * 1000,
        guaranteedRuntimeEndsAt=None,
        nodepool=plan.nodepool,
    )
    keys["allocatedGPU"] = float(wire["allocatedResources"]["gpu"])
    return ServedWorkload(plan.id, keys, wire, deleted is not None)


def render_detail(served: ServedWorkload, plan: WorkloadPlan, now_ms: int) -> dict[str, Any]:
    """``WorkloadDetailed``: the list item plus ``pendingSchedulingMessages`` while Pending."""
    detail = dict(served.wire)
    messages = []
    if served.wire["phase"] == PENDING:
        project = served.wire["projectName"]
        messages.append(
            {
                "nodePool": plan.nodepool,
                "phaseReason": "NonPreemptibleOverQuota",
                "reason": f"Workload requested {plan.gpus:g} GPUs, but project {project} is over its quota.",
                "orgType": "PROJECT",
                "userMessage": f"The project has reached its GPU quota in node pool {plan.nodepool}.",
            }
        )
    detail["pendingSchedulingMessages"] = messages
    return detail


def requested_resources(gpus: float, pods: int) -> dict[str, Any]:
    """What ``pods`` pods holding ``gpus`` GPUs request (the workload, one pod or a pods list item)."""
    value: float = int(gpus) if float(gpus).is_integer() else gpus
    return {
        "gpuRequestType": "portion",
        "gpu": {"request": value, "limit": value},
        "cpu": {"request": 8 * pods, "limit": None},
        "cpuMemory": {"request": f"{64 * pods}G", "limit": None},
    }


def _condition(phase: str, message: str, phase_ms: int) -> dict[str, Any]:
    return {
        "type": phase,
        "status": "True",
        "message": message,
        "reason": "",
        "lastTransitionTime": iso_ms(phase_ms),
    }


def _comparable(value: Any, kind: FieldKind) -> Value:
    if value is None:
        return None
    if kind == "number":
        return float(value)
    return str(value)
