"""What the generated audit stream says happened: the facts the workloads API has to agree with.

The workloads API and the audit log describe one tenant, so the workload list is *derived* from
the audit stream rather than generated beside it: every successful workload create in the audit
log becomes a workload (same id, name, cluster, submitter and millisecond), and every successful
workload delete sets that workload's ``deletedAt``. Clusters come from the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runai_extract.fake import catalog as cat
from runai_extract.fake.store import AuditStore
from runai_extract.fake.world import PREEXISTING_MS, TenantWorld


@dataclass(frozen=True, slots=True)
class AuditCreate:
    """A successful create of a workload, as its audit row tells it."""

    ts_ms: int
    entity_type: str  # training, workspace, inference, distributed
    entity_id: str
    name: str
    cluster_entity: int
    subject: str


@dataclass(frozen=True, slots=True)
class AuditCluster:
    entity_id: str
    name: str
    created_ms: int | None  # None: the tenant had it before the stream starts
    deleted_ms: int | None


@dataclass(frozen=True)
class AuditFacts:
    workload_creates: list[AuditCreate]
    workload_deletes: dict[str, int]  # entity id -> ts_ms of the successful delete
    clusters: dict[int, AuditCluster]  # cluster entity -> cluster
    sign_ins: dict[str, list[int]]  # subject name -> ts_ms of its successful sign-ins, ascending


def read_facts(world: TenantWorld, store: AuditStore) -> AuditFacts:
    """Scan the stream once (vectorised) for successful workload and cluster creates/deletes."""
    entities = world.tables.entities
    type_codes = np.asarray(entities.type_code, dtype=np.int64)
    wanted = {entities.types.code(kind) for kind in (*cat.WORKLOAD_TYPES, "cluster")}
    entity = store.column("entity").astype(np.int64)
    etype = np.where(entity >= 0, type_codes[np.maximum(entity, 0)], -1)
    action, status = store.column("action").astype(np.int64), store.column("status").astype(np.int64)
    rows = np.flatnonzero(np.isin(etype, list(wanted)) & (status < 400) & (action != cat.UPDATE))
    subjects = world.tables.subjects
    creates: list[AuditCreate] = []
    deletes: dict[str, int] = {}
    cluster_deleted: dict[int, int] = {}
    for ts_ms, act, ent, subj in zip(
        store.column("ts_ms")[rows].tolist(),
        action[rows].tolist(),
        entity[rows].tolist(),
        store.column("subject")[rows].tolist(),
        strict=True,
    ):
        entity_type = entities.types.values[entities.type_code[ent]]
        entity_id = entities.ids[ent]
        if entity_id is None:
            continue
        if entity_type == "cluster":
            if act == cat.DELETE:
                cluster_deleted[ent] = ts_ms
        elif act == cat.CREATE:
            creates.append(
                AuditCreate(
                    ts_ms,
                    entity_type,
                    entity_id,
                    entities.names[ent],
                    entities.cluster[ent],
                    subjects[subj].name,
                )
            )
        elif act == cat.DELETE:
            deletes[entity_id] = ts_ms
    return AuditFacts(creates, deletes, _clusters(world, cluster_deleted), _sign_ins(world, store))


def _sign_ins(world: TenantWorld, store: AuditStore) -> dict[str, list[int]]:
    action, status = store.column("action").astype(np.int64), store.column("status").astype(np.int64)
    rows = np.flatnonzero((action == cat.SIGN_IN) & (status < 400))
    found: dict[str, list[int]] = {}
    subjects = world.tables.subjects
    for ts_ms, subject in zip(
        store.column("ts_ms")[rows].tolist(), store.column("subject")[rows].tolist(), strict=True
    ):
        found.setdefault(subjects[subject].name, []).append(ts_ms)
    return found  # the store is in timestamp order, so each list is ascending


def _clusters(world: TenantWorld, deleted: dict[int, int]) -> dict[int, AuditCluster]:
    entities = world.tables.entities
    cluster_code = entities.types.code("cluster")
    found = {}
    for ent, code in enumerate(entities.type_code):
        entity_id = entities.ids[ent]
        if code != cluster_code or entity_id is None:
            continue
        created = world.created_ms[ent]
        found[ent] = AuditCluster(
            entity_id, entities.names[ent], None if created == PREEXISTING_MS else created, deleted.get(ent)
        )
    return found
