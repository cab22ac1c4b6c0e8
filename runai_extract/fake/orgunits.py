"""The tenant's organisation: clusters, departments, projects, node pools and users, over time.

Clusters are the audit stream's (the three the tenant starts with plus any created in the
stream). Each cluster gets departments and projects (and a default plus one GPU node pool) that
exist from the cluster's creation on. A few org units are renamed during the simulated period
(one project before ``now``, one department and one project after it, so ``advance`` shows a
rename happen): the org-unit API serves the name in force at ``sim_now`` and moves ``updatedAt``,
which is what a slowly-changing dimension has to pick up.

Ids: departments and projects have numeric string ids from 70001 on, so they never collide with
the numeric ids the audit stream mints for the org units it creates and deletes (those are
audit-only entities and do not appear in the org-unit API).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from runai_extract.fake import catalog as cat
from runai_extract.fake.audit_facts import AuditCluster
from runai_extract.fake.lifecycle import DAY_MS, HOUR_MS
from runai_extract.fake.tables import TenantTables

FIRST_ORG_ID = 70001
FIRST_POOL_ID = 11
BOOTSTRAP_AGE_MS = 200 * DAY_MS  # the tenant's own clusters were set up long before the stream
DEPARTMENT_WORDS = ("research", "platform", "applied-ml", "products", "infra", "data")
GPU_POOLS = (("a100", "NVIDIA-A100-SXM4-80GB"), ("h100", "NVIDIA-H100-80GB-HBM3"), ("l40s", "NVIDIA-L40S"))
ADMIN = "admin@example.com"


@dataclass
class Cluster:
    uuid: str
    name: str
    created_ms: int
    deleted_ms: int | None
    bootstrap: bool


@dataclass
class OrgUnit:
    """A department (``parent_id`` None) or a project; ``names`` is (from ms, name), sorted."""

    id: str
    cluster_id: str
    created_ms: int
    names: list[tuple[int, str]]
    parent_id: str | None = None
    gpu_quota: int = 4
    namespace: str = ""

    def name_at(self, now_ms: int) -> str:
        return self.names[max(bisect_right([ms for ms, _ in self.names], now_ms) - 1, 0)][1]

    def updated_at(self, now_ms: int) -> int:
        return (
            max(ms for ms, _ in self.names if ms <= now_ms) if self.created_ms <= now_ms else self.created_ms
        )


@dataclass
class NodePool:
    id: str
    cluster_id: str
    name: str
    label_key: str
    label_value: str
    is_default: bool
    created_ms: int


@dataclass
class UserAccount:
    id: str
    username: str
    created_ms: int
    is_local: bool


@dataclass
class Organisation:
    clusters: list[Cluster] = field(default_factory=list)
    departments: list[OrgUnit] = field(default_factory=list)
    projects: list[OrgUnit] = field(default_factory=list)
    nodepools: list[NodePool] = field(default_factory=list)
    users: list[UserAccount] = field(default_factory=list)

    def by_id(self) -> dict[str, OrgUnit]:
        return {unit.id: unit for unit in (*self.departments, *self.projects)}

    def projects_on(self, cluster_id: str) -> list[OrgUnit]:
        return [project for project in self.projects if project.cluster_id == cluster_id]

    def pools_on(self, cluster_id: str) -> list[NodePool]:
        return [pool for pool in self.nodepools if pool.cluster_id == cluster_id]

    def cluster(self, cluster_id: str) -> Cluster:
        return next(cluster for cluster in self.clusters if cluster.uuid == cluster_id)

    def renames(self, now_ms: int) -> list[tuple[str, str, str, str, int]]:
        """Every rename in force by ``now_ms``: (kind, id, old name, new name, UTC ms)."""
        found: list[tuple[str, str, str, str, int]] = []
        for kind, units in (("department", self.departments), ("project", self.projects)):
            for unit in units:
                for (_, old), (at, new) in zip(unit.names, unit.names[1:], strict=False):
                    if at <= now_ms:
                        found.append((kind, unit.id, old, new, at))
        return found


def build_organisation(
    clusters: dict[int, AuditCluster], tables: TenantTables, start_ms: int, now_ms: int
) -> Organisation:
    """The org structure for the audit stream's clusters, with its planned renames."""
    org = Organisation()
    next_id, next_pool = FIRST_ORG_ID, FIRST_POOL_ID
    for index, audit in enumerate(clusters[ent] for ent in sorted(clusters)):
        bootstrap = audit.created_ms is None
        created = (
            start_ms - BOOTSTRAP_AGE_MS + index * DAY_MS if audit.created_ms is None else audit.created_ms
        )
        cluster = Cluster(audit.entity_id, audit.name, created, audit.deleted_ms, bootstrap)
        org.clusters.append(cluster)
        gpu_name, gpu_label = GPU_POOLS[index % len(GPU_POOLS)]
        for name, key, value, default in (
            ("default", "run.ai/node-pool", "default", True),
            (gpu_name, "nvidia.com/gpu.product", gpu_label, False),
        ):
            org.nodepools.append(NodePool(str(next_pool), cluster.uuid, name, key, value, default, created))
            next_pool += 1
        for _ in range(2 if bootstrap else 1):
            word = DEPARTMENT_WORDS[len(org.departments) % len(DEPARTMENT_WORDS)]
            department = OrgUnit(
                str(next_id), cluster.uuid, created, [(created, _unique(word, len(org.departments)))]
            )
            department.gpu_quota = 16
            next_id += 1
            org.departments.append(department)
            for _ in range(2 if bootstrap else 1):
                k = len(org.projects)
                name = _unique(f"team-{cat.NAME_WORDS[k % len(cat.NAME_WORDS)]}", k, len(cat.NAME_WORDS))
                project = OrgUnit(str(next_id), cluster.uuid, created, [(created, name)], department.id)
                project.namespace = f"runai-{name}"
                next_id += 1
                org.projects.append(project)
    _plan_renames(org, start_ms, now_ms)
    org.users = _users(tables, start_ms)
    return org


def _unique(word: str, k: int, cycle: int = len(DEPARTMENT_WORDS)) -> str:
    return word if k < cycle else f"{word}-{k // cycle + 1}"


def _plan_renames(org: Organisation, start_ms: int, now_ms: int) -> None:
    """One project renamed halfway through the audit span; a department and a project after now."""
    if org.projects:
        _rename(org.projects[0], start_ms + (now_ms - start_ms) // 2, "-cv")
    if org.departments:
        _rename(org.departments[0], now_ms + 6 * HOUR_MS, "-labs")
    if len(org.projects) > 1:
        _rename(org.projects[1], now_ms + 12 * HOUR_MS, "-x")


def _rename(unit: OrgUnit, at_ms: int, suffix: str) -> None:
    if at_ms > unit.created_ms:
        unit.names.append((at_ms, unit.names[-1][1] + suffix))


def _users(tables: TenantTables, start_ms: int) -> list[UserAccount]:
    """The tenant's human users: the audit stream's user subjects, with their account ids."""
    users = []
    for index, subject in enumerate(tables.subjects):
        if subject.subject_type != cat.USER or subject.account_entity < 0:
            continue
        account_id = tables.entities.ids[subject.account_entity]
        if account_id is None:
            continue
        created = start_ms - BOOTSTRAP_AGE_MS + (index + 1) * DAY_MS
        users.append(UserAccount(account_id, subject.name, created, is_local=index % 3 == 0))
    return users
