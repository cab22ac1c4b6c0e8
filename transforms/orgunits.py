"""What we keep of each org unit (clusters, departments, projects, node pools, users).

Org units are slowly changing dimensions: each sync reads the full (small) lists and a version is
stored whenever a unit's ``row_hash`` changes, so a renamed project keeps its old name for the
time it had it. Live figures that change by the minute (a project's allocated GPUs, a cluster's
liveness) are not stored: they would turn every sync into a new version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from transforms.records import Column, Normalised, col, normalise_records
from transforms.usage_schemas import CLUSTERS, DEPARTMENTS, NODE_POOLS, PROJECTS, USERS


@dataclass(frozen=True)
class OrgKind:
    """One kind of org unit: its table, its id column and the wire fields stored."""

    name: str
    schema: pa.Schema
    id_column: str
    columns: tuple[Column, ...]
    known_keys: frozenset[str]


def _keys(text: str) -> frozenset[str]:
    return frozenset(text.split())


ORG_KINDS: dict[str, OrgKind] = {
    kind.name: kind
    for kind in (
        OrgKind(
            "clusters",
            CLUSTERS,
            "cluster_id",
            (
                col("cluster_id", "uuid", required=True),
                col("name", "name"),
                col("tenant_id", "tenantId"),
                col("domain", "domain"),
                col("version", "version"),
                col("state", "status.state"),
                col("created_at", "createdAt"),
                col("updated_at", "updatedAt", hashed=False),
                col("deleted_at", "deletedAt"),
            ),
            _keys(
                "uuid tenantId name createdAt domain version status updatedAt deletedAt lastLiveness deleteRequestedAt"
            ),
        ),
        OrgKind(
            "departments",
            DEPARTMENTS,
            "department_id",
            (
                col("department_id", "id", required=True),
                col("name", "name"),
                col("cluster_id", "clusterId"),
                col("description", "description"),
                col("gpu_quota", "totalResources.gpuQuota"),
                col("created_at", "createdAt"),
                col("updated_at", "updatedAt", hashed=False),
                col("created_by", "createdBy"),
                col("updated_by", "updatedBy", hashed=False),
            ),
            _keys(
                "id name description clusterId createdAt updatedAt createdBy updatedBy children resources totalResources status overtimeData"
            ),
        ),
        OrgKind(
            "projects",
            PROJECTS,
            "project_id",
            (
                col("project_id", "id", required=True),
                col("name", "name"),
                col("cluster_id", "clusterId"),
                col("department_id", "parentId"),
                col("department_name", "parent.name"),
                col("description", "description"),
                col("namespace", "status.namespace"),
                col("phase", "status.phase"),
                col("gpu_quota", "totalResources.gpuQuota"),
                col("created_at", "createdAt"),
                col("updated_at", "updatedAt", hashed=False),
                col("created_by", "createdBy"),
                col("updated_by", "updatedBy", hashed=False),
            ),
            _keys(
                "id name description clusterId parentId parent requestedNamespace enforceRunaiScheduler "
                "createdAt updatedAt createdBy updatedBy resources totalResources effective status "
                "schedulingRules defaultNodePools nodeTypes overtimeData"
            ),
        ),
        OrgKind(
            "node_pools",
            NODE_POOLS,
            "node_pool_id",
            (
                col("node_pool_id", "id", required=True),
                col("name", "name"),
                col("cluster_id", "clusterId"),
                col("cluster_name", "clusterName"),
                col("label_key", "labelKey"),
                col("label_value", "labelValue"),
                col("is_default", "isDefault"),
                col("phase", "phase"),
                col("created_at", "createdAt"),
                col("updated_at", "updatedAt", hashed=False),
                col("deleted_at", "deletedAt"),
            ),
            _keys(
                "id name tenantId clusterId clusterName labelKey labelValue isDefault phase phaseMessage "
                "createdBy createdAt updatedBy updatedAt deletedAt deletedBy overProvisioningRatio "
                "placementStrategy status networkTopologyId networkTopologyName swapEnabled"
            ),
        ),
        OrgKind(
            "users",
            USERS,
            "user_id",
            (
                col("user_id", "id", required=True),
                col("username", "username"),
                col("created_by", "createdBy"),
                col("created_at", "createdAt"),
                col("updated_at", "updatedAt", hashed=False),
                col("last_login", "lastLogin", hashed=False),
                col("is_local", "isLocal"),
                col("groups", "groups"),
            ),
            _keys("id username createdBy createdAt updatedAt lastLogin isLocal groups"),
        ),
    )
}


def normalise_org(
    kind: OrgKind, items: Sequence[Any], *, observed_at: datetime, run_id: str, ingested_at: datetime
) -> Normalised:
    """One kind's list items -> rows of its table (is_deleted False: they are in the list)."""
    extra = {
        "is_deleted": False,
        "observed_at": observed_at,
        "ingest_run_id": run_id,
        "ingested_at": ingested_at,
    }
    return normalise_records(items, kind.columns, kind.schema, known_keys=kind.known_keys, extra=extra)
