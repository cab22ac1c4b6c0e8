"""The tenant's workloads over simulated time, and the ground truth about them.

Coupling with the audit log (the simplest one that can't disagree): workloads created in the
audit span ``[start, now]`` ARE the audit stream's successful workload creates (same id, name,
cluster, submitter, millisecond; see audit_facts.py), and an audit delete sets ``deletedAt`` to
the delete's millisecond (a cluster delete retires its workloads the same way). Inside the audit
span nothing else is deleted. After ``now`` the timeline continues for ``future_days`` with new
workloads at ``workloads_per_day`` (default: the audit span's own rate) and deletions some hours
after workloads finish; those exist only in the workloads API (the audit stream is fixed at
build time), which is what :meth:`advance` lets a test watch happen.

Thread-safety: the server's threads render pages while a test thread advances the clock or asks
for truth, so every public method holds one lock.
"""

from __future__ import annotations

import random
import threading
import uuid
from bisect import bisect_right
from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np

from runai_extract.fake import catalog as cat
from runai_extract.fake.audit_facts import AuditCreate, read_facts
from runai_extract.fake.config import FakeConfig
from runai_extract.fake.generator import sample_times
from runai_extract.fake.lifecycle import DAY_MS, HOUR_MS, RUNNING, WorkloadPlan, end_ms, plan_phases
from runai_extract.fake.orgunits import Organisation, OrgUnit, build_organisation
from runai_extract.fake.store import AuditStore
from runai_extract.fake.workload_render import CATEGORY, EPOCH, ServedWorkload, render_workload
from runai_extract.fake.world import TenantWorld

WORKLOAD_TYPE = {"training": "Training", "workspace": "Workspace", "inference": "Inference"}
WORKLOAD_TYPE["distributed"] = "Distributed"
GPU_CHOICES = {
    "Training": (0.5, 1, 1, 2, 4, 8),
    "Workspace": (0.25, 0.5, 1, 1, 2),
    "Inference": (0.5, 1, 1, 2),
    "Distributed": (1, 2, 4, 8),  # per pod
}
DELETED_SHARE = 0.6  # finished workloads deleted after the audit span
MEAN_DELETE_DELAY_MS = 12 * HOUR_MS
FUTURE_NAME_BASE = 90_000


class WorkloadModel:
    """Workload plans for the whole timeline plus the simulated clock ``sim_now``."""

    def __init__(self, config: FakeConfig, world: TenantWorld, store: AuditStore, start_ms: int, now_ms: int):
        self._lock = threading.RLock()
        self.seed = config.seed
        self.tenant_id = int(config.tenant_id) if config.tenant_id.isdigit() else 0
        self.now_ms = now_ms  # sim_now
        self.audit_now_ms = now_ms
        facts = read_facts(world, store)
        self.org: Organisation = build_organisation(facts.clusters, world.tables, start_ms, now_ms)
        self._units = self.org.by_id()
        self._sign_ins = facts.sign_ins
        cluster_ids = {ent: cluster.entity_id for ent, cluster in facts.clusters.items()}
        cluster_gone = {
            c.entity_id: c.deleted_ms for c in facts.clusters.values() if c.deleted_ms is not None
        }
        plans = [
            self._plan_audit(create, cluster_ids[create.cluster_entity], facts.workload_deletes, cluster_gone)
            for create in facts.workload_creates
        ]
        days = max((now_ms - start_ms) / DAY_MS, 1e-9)
        rate = config.workloads_per_day if config.workloads_per_day is not None else len(plans) / days
        plans.extend(self._plan_future(world, now_ms, now_ms + config.future_days * DAY_MS, rate))
        plans.sort(key=lambda plan: (plan.created_ms, plan.id))
        self.plans = plans
        self.by_id = {plan.id: plan for plan in plans}
        self._cache: tuple[int, list[ServedWorkload]] | None = None

    # -- the clock ------------------------------------------------------------------------------
    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self.now_ms += delta // timedelta(milliseconds=1)

    @property
    def sim_now(self) -> datetime:
        with self._lock:
            return EPOCH + timedelta(milliseconds=self.now_ms)

    # -- serving --------------------------------------------------------------------------------
    def served(self) -> tuple[int, list[ServedWorkload]]:
        """(sim_now ms, every workload created by then, rendered as of then); cached per moment."""
        with self._lock:
            now_ms = self.now_ms
            if self._cache is None or self._cache[0] != now_ms:
                self._cache = (
                    now_ms,
                    [self.render(plan, now_ms) for plan in self.plans if plan.created_ms <= now_ms],
                )
            return self._cache

    def render(self, plan: WorkloadPlan, now_ms: int) -> ServedWorkload:
        project = self._units[plan.project_id]
        department = self._units[project.parent_id or ""]
        return render_workload(plan, project, department, self.tenant_id, now_ms)

    def find(self, workload_id: str) -> WorkloadPlan | None:
        """The workload if it exists at sim_now (deleted ones included)."""
        with self._lock:
            plan = self.by_id.get(workload_id)
            return plan if plan is not None and plan.created_ms <= self.now_ms else None

    def unit(self, unit_id: str) -> OrgUnit:
        return self._units[unit_id]

    def last_login(self, username: str, now_ms: int) -> int | None:
        """The user's latest successful sign-in in the audit stream up to ``now_ms``."""
        stamps = self._sign_ins.get(username, [])
        index = bisect_right(stamps, now_ms)
        return stamps[index - 1] if index else None

    # -- ground truth ---------------------------------------------------------------------------
    def truth(self) -> list[dict[str, object]]:
        with self._lock:
            now_ms = self.now_ms
            return [self._truth_row(plan, now_ms) for plan in self.plans if plan.created_ms <= now_ms]

    def gpu_hours(self) -> dict[tuple[date, str], float]:
        """GPU-hours per (UTC day, project id): Running time up to sim_now, split at midnight."""
        with self._lock:
            now_ms = self.now_ms
            plans = [plan for plan in self.plans if plan.created_ms <= now_ms]
        hours: dict[tuple[date, str], float] = defaultdict(float)
        for plan in plans:
            for start, stop in plan.intervals(RUNNING, now_ms):
                while start < stop:
                    midnight = (start // DAY_MS + 1) * DAY_MS
                    piece_end = min(stop, midnight)
                    day = (EPOCH + timedelta(milliseconds=start)).date()
                    hours[(day, plan.project_id)] += (piece_end - start) / HOUR_MS * plan.gpus
                    start = piece_end
        return dict(hours)

    def changes_since(self, since_ms: int) -> int:
        with self._lock:
            now_ms = self.now_ms
            return sum(
                plan.changes_after(since_ms, now_ms) for plan in self.plans if plan.created_ms <= now_ms
            )

    def org_truth(self) -> dict[str, object]:
        with self._lock:
            now_ms = self.now_ms
        renames = [
            {"kind": kind, "id": unit_id, "old": old, "new": new, "at": _dt(at_ms)}
            for kind, unit_id, old, new, at_ms in self.org.renames(now_ms)
        ]
        return {
            "departments": {u.id: u.name_at(now_ms) for u in self.org.departments if u.created_ms <= now_ms},
            "projects": {u.id: u.name_at(now_ms) for u in self.org.projects if u.created_ms <= now_ms},
            "renames": renames,
        }

    def _truth_row(self, plan: WorkloadPlan, now_ms: int) -> dict[str, object]:
        project = self._units[plan.project_id]
        completed, deleted = plan.completed_at(now_ms), plan.deleted_at(now_ms)
        return {
            "workload_id": plan.id,
            "name": plan.name,
            "type": plan.type,
            "category": CATEGORY[plan.type],
            "phase": plan.phase_at(now_ms)[1],
            "project_id": plan.project_id,
            "department_id": project.parent_id,
            "cluster_id": plan.cluster_id,
            "submitted_by": plan.submitted_by,
            "created_at": _dt(plan.created_ms),
            "completed_at": None if completed is None else _dt(completed),
            "deleted_at": None if deleted is None else _dt(deleted),
            "gpus": float(plan.gpus),
        }

    # -- planning -------------------------------------------------------------------------------
    def _plan_audit(
        self, create: AuditCreate, cluster_id: str, deletes: dict[str, int], cluster_gone: dict[str, int]
    ) -> WorkloadPlan:
        ends = [ms for ms in (deletes.get(create.entity_id), cluster_gone.get(cluster_id)) if ms is not None]
        deleted = min(ends) if ends else None
        source = "CLI" if create.subject.startswith("svc-") else None
        return self._plan(
            create.entity_id, create.name, WORKLOAD_TYPE[create.entity_type], cluster_id,
            create.subject, create.ts_ms, deleted, source,
        )  # fmt: skip

    def _plan_future(self, world: TenantWorld, from_ms: int, to_ms: int, rate: float) -> list[WorkloadPlan]:
        count = round(rate * (to_ms - from_ms) / DAY_MS)
        clusters = [c.uuid for c in self.org.clusters if c.bootstrap]
        if count <= 0 or to_ms <= from_ms or not clusters:
            return []
        rng = np.random.default_rng([self.seed, 3, from_ms])
        times = np.sort(sample_times(rng, from_ms + 1, to_ms, count)).tolist()
        kinds = [k for k in cat.KINDS if k.entity_type in WORKLOAD_TYPE]
        weights = np.array([k.weight for k in kinds]) / sum(k.weight for k in kinds)
        subjects = [s.name for s in world.tables.subjects]
        plans = []
        for i, ts_ms in enumerate(times):
            draw = random.Random(f"{self.seed}:future:{from_ms}:{i}")
            kind = kinds[int(np.searchsorted(np.cumsum(weights), draw.random() * 0.999999))].entity_type
            verb = cat.WORKLOAD_VERBS[kind]
            name = f"{draw.choice(cat.MODEL_NAMES)}-{verb}-{FUTURE_NAME_BASE + i:05d}"
            workload_id = str(uuid.UUID(int=draw.getrandbits(128), version=4))
            subject = draw.choice(subjects)
            plan = self._plan(
                workload_id, name, WORKLOAD_TYPE[kind], draw.choice(clusters), subject, int(ts_ms), None,
                "CLI" if subject.startswith("svc-") else None,
            )  # fmt: skip
            plans.append(plan)
        return plans

    def _plan(
        self,
        workload_id: str,
        name: str,
        workload_type: str,
        cluster_id: str,
        subject: str,
        created_ms: int,
        deleted_ms: int | None,
        source: str | None,
    ) -> WorkloadPlan:
        rng = random.Random(f"{self.seed}:{workload_id}")
        preemptible = workload_type in ("Training", "Distributed")
        pods = rng.randint(2, 4) if workload_type == "Distributed" else 1
        gpus = float(rng.choice(GPU_CHOICES[workload_type]) * pods)
        phases = plan_phases(workload_type, created_ms, preemptible, rng, deleted_ms)
        if deleted_ms is None:
            deleted_ms = self._later_deletion(end_ms(phases), rng)
        projects = [p for p in self.org.projects_on(cluster_id) if p.created_ms <= created_ms]
        projects = projects or self.org.projects_on(cluster_id)
        pools = [pool.name for pool in self.org.pools_on(cluster_id)]
        return WorkloadPlan(
            id=workload_id,
            name=name,
            type=workload_type,
            cluster_id=cluster_id,
            project_id=rng.choice(projects).id,
            submitted_by=subject,
            source=source or ("CLI" if rng.random() < 0.3 else "Control-plane"),
            created_ms=created_ms,
            phases=phases,
            deleted_ms=deleted_ms,
            gpus=gpus,
            pods=pods,
            nodepool=pools[-1] if rng.random() < 0.7 else pools[0],
        )

    def _later_deletion(self, finished_ms: int | None, rng: random.Random) -> int | None:
        """Deletion some hours after finishing; never inside the audit span (the audit says so)."""
        if finished_ms is None or rng.random() >= DELETED_SHARE:
            return None
        deleted = finished_ms + max(int(rng.expovariate(1 / MEAN_DELETE_DELAY_MS)), 1000)
        return deleted if deleted > self.audit_now_ms else None


def _dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)
