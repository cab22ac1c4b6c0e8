"""Clusters, departments, projects, node pools and users as the 2.24 API shows them at a moment.

Wire shapes follow examples/clusters.json, departments_page.json, projects_page.json,
nodepools.json and users.json (camelCase, UTC ``Z`` timestamps with milliseconds). Clusters
include deleted ones, with ``deletedAt`` set, so a workload on a retired cluster still resolves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runai_extract.fake.listquery import FieldKind, Value
from runai_extract.fake.orgunits import ADMIN, Cluster, NodePool, Organisation, OrgUnit, UserAccount
from runai_extract.fake.workload_render import ServedWorkload, iso_ms, optional_iso

_AVERAGES = tuple(
    f"avg{metric}{span}"
    for span in ("24h", "7d", "30d")
    for metric in ("GpuAllocation", "GpuUtilization", "GpuMemoryUtilization")
)
# README section 6: the sortBy/filterBy fields of the org-unit lists.
PROJECT_FIELDS: dict[str, FieldKind] = {
    "name": "string", "clusterId": "string", "departmentId": "string", "parentId": "string",
    "parentName": "string", "phase": "string", "totalGpuQuota": "number", "gpuAllocated": "number",
    "createdAt": "date", **{name: "number" for name in _AVERAGES},
}  # fmt: skip
DEPARTMENT_FIELDS: dict[str, FieldKind] = {
    name: kind
    for name, kind in PROJECT_FIELDS.items()
    if name not in ("departmentId", "parentId", "parentName", "phase")
}


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    keys: Mapping[str, Value]
    wire: dict[str, Any]


def cluster_wire(cluster: Cluster, tenant_id: int, now_ms: int) -> dict[str, Any]:
    gone = cluster.deleted_ms is not None and cluster.deleted_ms <= now_ms
    return {
        "uuid": cluster.uuid,
        "tenantId": tenant_id,
        "name": cluster.name,
        "createdAt": iso_ms(cluster.created_ms),
        "domain": f"https://{cluster.name}.example.com",
        "version": "2.24.31",
        "status": {"state": "Disconnected" if gone else "Connected"},
        "updatedAt": iso_ms(cluster.deleted_ms if gone and cluster.deleted_ms else cluster.created_ms),
        "deletedAt": optional_iso(cluster.deleted_ms if gone else None),
        "lastLiveness": iso_ms(cluster.deleted_ms if gone and cluster.deleted_ms else now_ms),
        "deleteRequestedAt": optional_iso(cluster.deleted_ms if gone else None),
    }


def gpu_allocated(workloads: Sequence[ServedWorkload]) -> dict[str, float]:
    """Allocated GPUs per project id right now (Running workloads only)."""
    total: dict[str, float] = defaultdict(float)
    for workload in workloads:
        total[workload.wire["projectId"]] += float(workload.wire["allocatedResources"]["gpu"])
    return total


def project_rows(org: Organisation, allocated: Mapping[str, float], now_ms: int) -> list[Row]:
    units = org.by_id()
    rows = []
    for project in org.projects:
        if project.created_ms > now_ms:
            continue
        department = units[project.parent_id or ""]
        name, parent_name = project.name_at(now_ms), department.name_at(now_ms)
        used = allocated.get(project.id, 0.0)
        wire = {
            "id": project.id,
            "name": name,
            "description": "",
            "clusterId": project.cluster_id,
            "parentId": department.id,
            "parent": {"id": department.id, "name": parent_name},
            "requestedNamespace": None,
            "enforceRunaiScheduler": True,
            "createdAt": iso_ms(project.created_ms),
            "updatedAt": iso_ms(project.updated_at(now_ms)),
            "createdBy": ADMIN,
            "updatedBy": ADMIN,
            "resources": [_resources(org, project)],
            "totalResources": {"gpuQuota": project.gpu_quota, "cpuQuota": None, "memoryQuota": None},
            "effective": {"defaultNodePools": ["default"]},
            "status": {
                "namespace": project.namespace,
                "phase": "Ready",
                "phaseMessage": "",
                "quotaStatus": {"allocated": {"gpu": used, "cpu": 0, "memory": 0}},
            },
        }
        keys: dict[str, Value] = {
            "name": name,
            "clusterId": project.cluster_id,
            "departmentId": department.id,
            "parentId": department.id,
            "parentName": parent_name,
            "phase": "Ready",
            "totalGpuQuota": float(project.gpu_quota),
            "gpuAllocated": used,
            "createdAt": project.created_ms * 1000,
        }
        rows.append(Row(project.id, keys, wire))
    return rows


def department_rows(org: Organisation, allocated: Mapping[str, float], now_ms: int) -> list[Row]:
    rows = []
    for department in org.departments:
        if department.created_ms > now_ms:
            continue
        children = [p for p in org.projects if p.parent_id == department.id and p.created_ms <= now_ms]
        used = sum(allocated.get(child.id, 0.0) for child in children)
        name = department.name_at(now_ms)
        wire = {
            "id": department.id,
            "name": name,
            "description": "",
            "clusterId": department.cluster_id,
            "createdAt": iso_ms(department.created_ms),
            "updatedAt": iso_ms(department.updated_at(now_ms)),
            "createdBy": ADMIN,
            "updatedBy": ADMIN,
            "children": [{"id": child.id, "name": child.name_at(now_ms)} for child in children],
            "resources": [_resources(org, department)],
            "totalResources": {"gpuQuota": department.gpu_quota, "cpuQuota": None, "memoryQuota": None},
            "status": {"quotaStatus": {"allocated": {"gpu": used, "cpu": 0, "memory": 0}}},
        }
        keys: dict[str, Value] = {
            "name": name,
            "clusterId": department.cluster_id,
            "totalGpuQuota": float(department.gpu_quota),
            "gpuAllocated": used,
            "createdAt": department.created_ms * 1000,
        }
        rows.append(Row(department.id, keys, wire))
    return rows


def nodepool_wire(pool: NodePool, cluster: Cluster, tenant_id: int) -> dict[str, Any]:
    return {
        "id": pool.id,
        "name": pool.name,
        "tenantId": tenant_id,
        "clusterId": pool.cluster_id,
        "clusterName": cluster.name,
        "labelKey": pool.label_key,
        "labelValue": pool.label_value,
        "isDefault": pool.is_default,
        "phase": "Ready",
        "phaseMessage": "",
        "createdBy": "system" if pool.is_default else ADMIN,
        "createdAt": iso_ms(pool.created_ms),
        "updatedBy": "system" if pool.is_default else ADMIN,
        "updatedAt": iso_ms(pool.created_ms),
        "deletedAt": None,
    }


def user_wire(user: UserAccount, last_login_ms: int | None) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "createdBy": ADMIN,
        "createdAt": iso_ms(user.created_ms),
        "updatedAt": iso_ms(user.created_ms),
        "lastLogin": optional_iso(last_login_ms),
        "isLocal": user.is_local,
        "groups": ["ml-researchers"] if not user.is_local else [],
    }


def _resources(org: Organisation, unit: OrgUnit) -> dict[str, Any]:
    pool = org.pools_on(unit.cluster_id)[0]
    return {
        "nodePool": {"id": pool.id, "name": pool.name},
        "gpu": {"deserved": unit.gpu_quota, "limit": -1, "overQuotaWeight": 2},
        "cpu": {"deserved": None, "limit": None, "overQuotaWeight": None},
        "memory": {"deserved": None, "limit": None, "overQuotaWeight": None, "units": "Mib"},
        "priority": "Normal",
    }
