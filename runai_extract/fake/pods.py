"""A workload's pods as the 2.24 API shows them (``GET /api/v1/workloads/{id}/pods``, ``Pod1``).

Pods are derived from the workload's plan like its events (workload_events.py), so the pod id in
an event, in the pods list and in the per-pod metrics route is one id. Choices where the
reference is silent:

* a workload has ``plan.pods`` pods, each holding an equal share of its GPUs; they exist from the
  workload's first Pending (Kubernetes creates them before the scheduler binds them) and run
  exactly while the workload runs (``runningPods`` is all or none);
* a preempted workload's pods keep their ids when they run again (Kubernetes would create new
  ones; the events already reuse the id) and move to the node of the new Running phase;
* a pod is deleted when its workload is Stopped or deleted, and then listed only with
  ``deleted=true``; its ``k8sPhase`` stays the one it had before (Running or Pending);
* a pod holding a fraction of a GPU has one GPU device; per-GPU series label it ``{"gpu": "0"}``.
"""

from __future__ import annotations

import math
from typing import Any

from runai_extract.fake.lifecycle import RUNNING, TERMINAL, WorkloadPlan
from runai_extract.fake.workload_events import node_name, pod_name, pod_uid
from runai_extract.fake.workload_render import (
    IMAGES,
    K8S_PHASE,
    PRIORITY,
    iso_ms,
    optional_iso,
    requested_resources,
)


def pod_gpus(plan: WorkloadPlan) -> float:
    """The GPUs one pod holds while it runs."""
    return plan.gpus / plan.pods


def pod_devices(plan: WorkloadPlan) -> int:
    """GPU devices per pod: a fraction of a GPU is one device."""
    return max(1, math.ceil(pod_gpus(plan)))


def pod_created_ms(plan: WorkloadPlan, index: int) -> int:
    """Created with the workload's first Pending (a ms apart, so the list order is stable)."""
    pending = plan.phases[1][0] if len(plan.phases) > 1 else plan.created_ms
    return pending + index


def pod_index(plan: WorkloadPlan, pod_id: str, now_ms: int) -> int | None:
    """Which of the workload's pods ``pod_id`` is, if it exists at ``now_ms``."""
    for index in range(plan.pods):
        if pod_uid(plan, index) == pod_id and pod_created_ms(plan, index) <= now_ms:
            return index
    return None


def pod_deleted_ms(plan: WorkloadPlan, now_ms: int) -> int | None:
    """When the pods were deleted (the workload Stopped or was deleted), if by ``now_ms``."""
    ms, phase, _ = plan.phase_at(now_ms)
    stopped = ms if phase == "Stopped" else None
    deleted = plan.deleted_at(now_ms)
    moments = [moment for moment in (stopped, deleted) if moment is not None]
    return min(moments) if moments else None


def workload_pods(plan: WorkloadPlan, tenant_id: int, now_ms: int) -> list[tuple[bool, dict[str, Any]]]:
    """(deleted, ``Pod1`` wire object) of every pod the workload has at ``now_ms``."""
    index_now = plan.phase_index(now_ms)
    phase_ms, phase, _ = plan.phases[index_now]
    runs = [i for i, (ms, name, _) in enumerate(plan.phases[: index_now + 1]) if name == RUNNING]
    deleted = pod_deleted_ms(plan, now_ms)
    shown_phase = phase
    if phase == "Stopped":  # deleted with the workload: the pod keeps the phase it had
        shown_phase = plan.phases[index_now - 1][1] if index_now else "Pending"
    running = phase == RUNNING
    gpus = pod_gpus(plan)
    _, priority_class = PRIORITY[plan.type]
    started = optional_iso(plan.phases[runs[-1]][0] if runs else None)
    pods = []
    for index in range(plan.pods):
        created = pod_created_ms(plan, index)
        if created > now_ms:
            continue
        wire: dict[str, Any] = {
            "tenantId": tenant_id,
            "id": pod_uid(plan, index),
            "name": pod_name(plan, index),
            "workloadId": plan.id,
            "revisionId": None,
            "clusterId": plan.cluster_id,
            "projectId": plan.project_id,
            "priorityClassName": priority_class,
            "nodeName": node_name(index, runs[-1]) if runs else None,
            "currentNodePool": plan.nodepool if runs else None,
            "requestedNodePools": [plan.nodepool, "default"] if plan.nodepool != "default" else ["default"],
            "createdAt": iso_ms(created),
            "completedAt": optional_iso(phase_ms if phase in TERMINAL else None),
            "deletedAt": optional_iso(deleted),
            "updatedAt": iso_ms(max(phase_ms, deleted or 0, created)),
            "k8sPhase": K8S_PHASE.get(shown_phase, "Pending"),
            "k8sPhaseUpdatedAt": iso_ms(max(phase_ms, created)),
            "containers": [{"name": plan.name, "image": IMAGES[plan.type], "startedAt": started}],
            "requestedResources": requested_resources(gpus, 1),
            "allocatedResources": {"gpu": gpus if running else 0, "cpu": 8 if running else 0},
        }
        pods.append((deleted is not None, wire))
    return pods
