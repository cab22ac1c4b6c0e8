"""The simulated tenant's state while its audit stream is written: who exists, and what each
audit event does to it.

Coherence rules a reviewer of the data would check:

* The tenant starts with its clusters, settings and the subjects' own accounts in place;
  everything else (projects, workloads, users, ...) is created inside the stream before any
  update or delete of it, and keeps its ``entity_id`` for life. Deleted entities are never
  touched again; deleting a cluster retires the entities scoped to it.
* A failed create creates nothing: its row names the entity but carries no ``entity_id``.
* Only cluster-scoped kinds (org units, workloads, node pools, clusters) carry cluster fields.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from runai_extract.fake import catalog as cat
from runai_extract.fake.tables import Subject, TenantTables

PREEXISTING_MS = -1  # creation time of entities that predate the stream


@dataclass
class RowSink:
    """Audit rows as per-column integer lists, appended in time order; ids come later."""

    ts_ms: list[int] = field(default_factory=list)
    subject: list[int] = field(default_factory=list)
    ip: list[int] = field(default_factory=list)
    action: list[int] = field(default_factory=list)
    method: list[int] = field(default_factory=list)
    url: list[int] = field(default_factory=list)
    entity: list[int] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    meta: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts_ms)

    def as_lists(self) -> dict[str, list[int]]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class LivePool:
    """Entities of one kind that exist now; O(1) random pick and removal."""

    def __init__(self) -> None:
        self.members: list[int] = []
        self._where: dict[int, int] = {}

    def add(self, entity: int) -> None:
        self._where[entity] = len(self.members)
        self.members.append(entity)

    def remove(self, entity: int) -> None:
        slot = self._where.pop(entity)
        last = self.members.pop()
        if last != entity:
            self.members[slot] = last
            self._where[last] = slot

    def pick(self, u: float) -> int | None:
        return self.members[int(u * len(self.members))] if self.members else None


@dataclass(slots=True)
class Event:
    """One event to write: who, when, what and whether it succeeds."""

    ts_ms: int
    subject: int
    action: int
    kind: cat.EntityKind | None = None  # None for sign-in/sign-out/reset-password
    failed: bool = False
    u: float = 0.0  # a uniform draw for the entity pick


class TenantWorld:
    """Tables plus the live state needed to keep the stream coherent."""

    def __init__(self, tenant_id: str, rng: random.Random) -> None:
        self.tables = TenantTables(tenant_id=tenant_id)
        self.rng = rng
        self.sink = RowSink()
        self.pools = {kind.entity_type: LivePool() for kind in cat.KINDS}
        self.created_ms: list[int] = []
        self._counters: dict[str, int] = {}
        self._bootstrap_clusters: set[int] = set()
        self._scoped: dict[int, set[int]] = {}  # cluster -> live entities scoped to it
        self._bootstrap()

    def take_rows(self) -> RowSink:
        """Hand over the rows written so far and start an empty sink."""
        rows, self.sink = self.sink, RowSink()
        return rows

    # -- setting the stage ------------------------------------------------------------------
    def _bootstrap(self) -> None:
        for name in cat.BOOTSTRAP_CLUSTERS:
            self._bootstrap_clusters.add(self._new_entity(cat.KIND_BY_TYPE["cluster"], PREEXISTING_MS, name))
        for key in cat.SETTING_KEYS:
            self._new_entity(cat.KIND_BY_TYPE["settings"], PREEXISTING_MS, key, entity_id=key)
        users = self.rng.sample([(f, last) for f in cat.FIRST_NAMES for last in cat.LAST_NAMES], 24)
        for first, last in users:
            self._add_subject(f"{first}.{last}@{cat.USER_DOMAIN}", cat.USER)
        for app in cat.APP_SUBJECTS:
            self._add_subject(app, cat.APP)

    def _add_subject(self, name: str, subject_type: int) -> None:
        tables = self.tables
        subnet = 30 if subject_type == cat.APP else self.rng.randint(31, 34)
        ips = {
            tables.ips.code(f"10.20.{subnet}.{self.rng.randint(2, 254)}")
            for _ in range(self.rng.randint(1, 2))
        }
        subject = Subject(name=name, subject_type=subject_type, ips=tuple(sorted(ips)))
        subject.login_entity = self._entity(cat.LOGIN_TYPE, name, name, PREEXISTING_MS)
        if subject_type == cat.USER:
            subject.account_entity = self._entity("user", name, self._uuid(), PREEXISTING_MS)
        tables.subjects.append(subject)

    # -- writing events -----------------------------------------------------------------------
    def write(self, event: Event, ip_u: float) -> None:
        """Apply one event to the state and append its audit row."""
        subject = self.tables.subjects[event.subject]
        ip = subject.ips[int(ip_u * len(subject.ips))]
        if event.kind is None:
            self._write_auth(event, subject, ip)
        else:
            self._write_change(event, event.kind, ip)

    def _write_auth(self, event: Event, subject: Subject, ip: int) -> None:
        action = event.action
        if action == cat.RESET_PASSWORD and subject.subject_type == cat.APP:
            action = cat.SIGN_IN  # service accounts have secrets, not passwords
        failed = event.failed and action != cat.SIGN_OUT
        if action == cat.RESET_PASSWORD:
            entity = subject.account_entity
            url = f"/api/v1/users/{self.tables.entities.ids[entity]}/password"
        else:
            entity = subject.login_entity
            url = cat.TOKEN_URL if action == cat.SIGN_IN else cat.LOGOUT_URL
        status = self._failure_status(action) if failed else 200
        meta = self._auth_metadata(action, subject, status)
        self._emit(event.ts_ms, event.subject, ip, action, "POST", url, entity, status, meta)

    def _write_change(self, event: Event, kind: cat.EntityKind, ip: int) -> None:
        action, target = self._resolve_target(event, kind)
        if action == cat.CREATE:
            self._write_create(event, kind, ip)
            return
        entities = self.tables.entities
        url = f"{kind.collection_url}/{entities.ids[target]}"
        method = kind.update_method if action == cat.UPDATE else "DELETE"
        if event.failed:
            status = self._failure_status(action)
            meta = self._reason(action, status)
        else:
            status = 200 if action == cat.UPDATE else kind.delete_status
            meta = self._change_metadata(kind, target)
            if action == cat.DELETE:
                self._retire(kind, target)
        self._emit(event.ts_ms, event.subject, ip, action, method, url, target, status, meta)

    def _resolve_target(self, event: Event, kind: cat.EntityKind) -> tuple[int, int]:
        """The entity an update/delete hits; a create when nothing suitable exists yet."""
        action = event.action if kind.has_lifecycle else cat.UPDATE
        if action == cat.CREATE:
            return cat.CREATE, -1
        target = self.pools[kind.entity_type].pick(event.u)
        # Never touch an entity in the very millisecond it was created: the (timestamp, id)
        # order could then put the update before the create.
        if target is None or self.created_ms[target] >= event.ts_ms:
            return cat.CREATE, -1
        if action == cat.DELETE and target in self._bootstrap_clusters:
            return cat.UPDATE, target  # the tenant's own clusters stay
        return action, target

    def _write_create(self, event: Event, kind: cat.EntityKind, ip: int) -> None:
        cluster = self._cluster_for(kind, event.u)
        if event.failed:
            status = self._failure_status(cat.CREATE)
            target = self._entity(kind.entity_type, self._name(kind), None, event.ts_ms, cluster)
            meta = self._reason(cat.CREATE, status)
        else:
            status = kind.create_status
            target = self._new_entity(kind, event.ts_ms, self._name(kind), cluster=cluster)
            meta = self._change_metadata(kind, target)
        self._emit(
            event.ts_ms, event.subject, ip, cat.CREATE, "POST", kind.collection_url, target, status, meta
        )

    # -- entities --------------------------------------------------------------------------------
    def _new_entity(
        self, kind: cat.EntityKind, ts_ms: int, name: str, *, entity_id: str | None = None, cluster: int = -1
    ) -> int:
        if entity_id is None:
            entity_id = str(self._next("id:" + kind.entity_type)) if kind.numeric_ids else self._uuid()
        entity = self._entity(kind.entity_type, name, entity_id, ts_ms, cluster)
        if kind.entity_type == "cluster":
            self.tables.entities.cluster[entity] = entity  # a cluster is scoped to itself
            self._scoped[entity] = set()
        elif cluster >= 0:
            self._scoped[cluster].add(entity)
        self.pools[kind.entity_type].add(entity)
        return entity

    def _entity(
        self, entity_type: str, name: str, entity_id: str | None, ts_ms: int, cluster: int = -1
    ) -> int:
        self.created_ms.append(ts_ms)
        return self.tables.entities.add(entity_type, name, entity_id, cluster)

    def _retire(self, kind: cat.EntityKind, target: int) -> None:
        self.pools[kind.entity_type].remove(target)
        if kind.entity_type == "cluster":
            entities = self.tables.entities
            for member in self._scoped.pop(target):
                self.pools[entities.types.values[entities.type_code[member]]].remove(member)
        elif kind.cluster_scoped:
            self._scoped[self.tables.entities.cluster[target]].discard(target)

    def _cluster_for(self, kind: cat.EntityKind, u: float) -> int:
        if not kind.cluster_scoped or kind.entity_type == "cluster":
            return -1
        cluster = self.pools["cluster"].pick(u)
        return min(self._bootstrap_clusters) if cluster is None else cluster

    def _name(self, kind: cat.EntityKind) -> str:
        n = self._next("name:" + kind.entity_type)
        word = self.rng.choice(cat.NAME_WORDS)
        if kind.entity_type in cat.WORKLOAD_VERBS:
            return f"{self.rng.choice(cat.MODEL_NAMES)}-{cat.WORKLOAD_VERBS[kind.entity_type]}-{n:05d}"
        names = {
            "project": f"team-{word}-{n}",
            "department": f"dept-{word}-{n}",
            "access_rule": f"{self.rng.choice(cat.ROLE_NAMES)} on {word}-{n}",
            "role": f"custom-{word}-{n}",
            "user": f"{self.rng.choice(cat.FIRST_NAMES)}.{word}{n}@{cat.USER_DOMAIN}",
            "application": f"app-{word}-{n}",
            "cluster": f"gpu-lab-{n}",
            "nodepool": f"pool-{self.rng.choice(('a100', 'h100', 'l40s'))}-{n}",
        }
        return names.get(kind.entity_type, f"{kind.entity_type}-{n}")

    def _next(self, counter: str) -> int:
        self._counters[counter] = value = self._counters.get(counter, 1) + 1
        return value

    def _uuid(self) -> str:
        value = (self.rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    # -- statuses and metadata -----------------------------------------------------------------
    def _failure_status(self, action: int) -> int:
        return self.rng.choice(cat.FAILURE_STATUSES[action])

    def _reason(self, action: int, status: int) -> int:
        reason = cat.FAILURE_REASONS[status]
        if action == cat.DELETE and status == 409:
            reason = "resource is in use"
        return self.tables.metadata.code({"reason": reason})

    def _auth_metadata(self, action: int, subject: Subject, status: int) -> int:
        if status >= 400:
            return self._reason(action, status)
        if action != cat.SIGN_IN:
            return -1
        method = (
            "client_credentials" if subject.subject_type == cat.APP else self.rng.choice(("sso", "password"))
        )
        return self.tables.metadata.code({"authMethod": method})

    def _change_metadata(self, kind: cat.EntityKind, target: int) -> int:
        """Some successful changes carry a detail map; most carry none (the key is then absent)."""
        entity_type = kind.entity_type
        if entity_type in ("training", "distributed") and self.rng.random() < 0.5:
            return self.tables.metadata.code({"gpuRequest": self.rng.choice(("1", "2", "4", "8"))})
        if entity_type == "access_rule":
            return self.tables.metadata.code(
                {"roleName": self.rng.choice(cat.ROLE_NAMES), "scopeType": "project"}
            )
        if entity_type == "settings":
            key = self.tables.entities.names[target]
            return self.tables.metadata.code({"setting": key, "value": self.rng.choice(("true", "false"))})
        return -1

    def _emit(
        self,
        ts_ms: int,
        subject: int,
        ip: int,
        action: int,
        method: str,
        url: str,
        entity: int,
        status: int,
        meta: int,
    ) -> None:
        sink = self.sink
        sink.ts_ms.append(ts_ms)
        sink.subject.append(subject)
        sink.ip.append(ip)
        sink.action.append(action)
        sink.method.append(cat.METHOD_CODE[method])
        sink.url.append(self.tables.urls.code(url))
        sink.entity.append(entity)
        sink.status.append(status)
        sink.meta.append(meta)
