"""A workload's Kubernetes events and its history records, derived from its planned phases.

Events are a pure function of the phase plan (nothing stored per event), so a tenant with
thousands of workloads costs nothing until someone asks for one workload's events:

* before each Running: per pod Scheduled (runai-scheduler), Pulling, Pulled, Created, Started
  (kubelet), in the five seconds before the phase change (pending lasts at least that long);
* a long first Pending: a Warning FailedScheduling; a preemption: Warning Preempted + Killing;
* the end: Completed (Normal), Failed (Warning BackOff) or Stopped (Normal Killing).

History = every PhaseUpdate plus every event, as of the moment shown, served in an order keyed
by a hash of each record (README 4.5 leaves the order unspecified, and the issue says clients
must not rely on it); the order is stable for a given moment, so paging stays consistent.
"""

from __future__ import annotations

import hashlib
from typing import Any

from runai_extract.fake.lifecycle import MINUTE_MS, PENDING, RUNNING, WorkloadPlan
from runai_extract.fake.workload_render import iso_ms

Event = tuple[int, dict[str, Any]]  # (UTC ms, Event2 wire object)
# Offsets (ms before Running) and what each pod-start event says.
POD_START = (
    (
        4000,
        "Normal",
        "Scheduled",
        "runai-scheduler",
        "Successfully assigned {ns}/{pod} to {node}",
    ),
    (3500, "Normal", "Pulling", "kubelet", 'Pulling image "{image}"'),
    (1200, "Normal", "Pulled", "kubelet", 'Successfully pulled image "{image}"'),
    (600, "Normal", "Created", "kubelet", "Created container {name}"),
    (300, "Normal", "Started", "kubelet", "Started container {name}"),
)
UNSCHEDULABLE = "0/8 nodes are available: 8 Insufficient nvidia.com/gpu."


def stable_uuid(*parts: object) -> str:
    """A uuid4-shaped id that is a pure function of ``parts``."""
    value = bytearray(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest())
    value[6] = (value[6] & 0x0F) | 0x40
    value[8] = (value[8] & 0x3F) | 0x80
    text = value.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def workload_events(plan: WorkloadPlan, namespace: str, image: str, now_ms: int) -> list[Event]:
    """Every event of the workload created up to ``now_ms``, oldest first (ties by id)."""
    raw: list[tuple[int, str, str, str, str, int]] = []  # ms, type, reason, source, message, pod
    phases = plan.phases
    for i, (ms, phase, _) in enumerate(phases):
        previous = phases[i - 1][1] if i else None
        if phase == RUNNING:
            for pod in range(plan.pods):
                for before, kind, reason, source, text in POD_START:
                    message = text.format(
                        ns=namespace,
                        pod=pod_name(plan, pod),
                        node=node_name(pod, i),
                        image=image,
                        name=plan.name,
                    )
                    raw.append((ms - before + pod, kind, reason, source, message, pod))
        elif phase == PENDING and previous == RUNNING:
            raw.append(
                (ms, "Warning", "Preempted", "runai-scheduler", "Preempted by a higher-priority workload", 0)
            )
            raw.append((ms, "Normal", "Killing", "kubelet", f"Stopping container {plan.name}", 0))
        elif phase == PENDING and i + 1 < len(phases) and phases[i + 1][0] - ms > MINUTE_MS:
            raw.append((ms + 1000, "Warning", "FailedScheduling", "runai-scheduler", UNSCHEDULABLE, 0))
        elif phase == "Completed":
            raw.append((ms, "Normal", "Completed", "kubelet", f"Container {plan.name} completed", 0))
        elif phase == "Failed":
            raw.append((ms, "Warning", "BackOff", "kubelet", "Back-off restarting failed container", 0))
        elif phase == "Stopped" and previous == RUNNING:
            raw.append((ms, "Normal", "Killing", "kubelet", f"Stopping container {plan.name}", 0))
    events = []
    for n, (ms, kind, reason, source, message, pod) in enumerate(raw):
        if ms > now_ms:
            continue
        event = {
            "createdAt": iso_ms(ms),
            "id": stable_uuid(plan.id, "event", n),
            "type": kind,
            "clusterId": plan.cluster_id,
            "message": message,
            "reason": reason,
            "source": source,
            "involvedObject": {
                "uid": pod_uid(plan, pod),
                "kind": "Pod",
                "name": pod_name(plan, pod),
                "namespace": namespace,
            },
        }
        events.append((ms, event))
    events.sort(key=lambda item: (item[0], item[1]["id"]))
    return events


def history_records(plan: WorkloadPlan, events: list[Event], now_ms: int) -> list[dict[str, Any]]:
    """PhaseUpdate and Event records up to ``now_ms``, in hash order (deliberately not by time)."""
    keyed: list[tuple[bytes, dict[str, Any]]] = []
    for n, (ms, phase, message) in enumerate(plan.phases):
        if ms <= now_ms:
            record = {
                "meta": {"creationTimestamp": iso_ms(ms), "type": "PhaseUpdate"},
                "spec": {"phaseUpdate": {"phase": phase, "phaseMessage": message}},
            }
            keyed.append((_order_key(plan.id, "phase", n), record))
    for ms, event in events:
        record = {"meta": {"creationTimestamp": iso_ms(ms), "type": "Event"}, "spec": {"event": event}}
        keyed.append((_order_key(plan.id, event["id"]), record))
    keyed.sort(key=lambda item: item[0])
    return [record for _, record in keyed]


def _order_key(*parts: object) -> bytes:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()


def pod_name(plan: WorkloadPlan, pod: int) -> str:
    return f"{plan.name}-0-{pod}"


def pod_uid(plan: WorkloadPlan, pod: int) -> str:
    """The pod's id: the same in its events, the pods list and its metrics route."""
    return stable_uuid(plan.id, "pod", pod)


def node_name(pod: int, phase_index: int) -> str:
    """The node a pod runs on during the Running phase at ``phase_index`` (events and pods agree)."""
    return f"gpu-node-{(pod + phase_index) % 16:02d}"
