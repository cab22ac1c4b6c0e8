"""One workload's life: the phases it goes through, planned once, and what is true of it at a time.

A workload's whole future is planned when the tenant is built (Creating -> Pending -> Running
-> Completed/Failed/Stopped, sometimes preempted Running -> Pending -> Running, sometimes never
scheduled), so "the state at sim_now" is a bisect into that plan and advancing the simulated
clock can never contradict something already served.

Every random choice is drawn from a ``random.Random`` seeded by (tenant seed, workload id), so a
workload's life does not depend on how many other workloads exist or in which order they are
planned.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

RUNNING, PENDING = "Running", "Pending"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
MIN_PENDING_MS = 5 * SECOND_MS  # room for the Scheduled..Started events before Running
NEVER_SCHEDULED_SHARE = 0.04
PREEMPTED_SHARE = 0.2
# Median run time per workload type, and the longest a run may last.
MEDIAN_RUN_MS = {"Training": 2 * HOUR_MS, "Distributed": 6 * HOUR_MS, "Workspace": 8 * HOUR_MS}
MEDIAN_RUN_MS["Inference"] = 2 * DAY_MS
MAX_RUN_MS = 10 * DAY_MS
BATCH_ENDINGS = (("Completed", 0.75), ("Failed", 0.15), ("Stopped", 0.10))
PHASE_MESSAGES = {
    "Pending": "Waiting for the scheduler",
    "Failed": "Container exited with code 1",
}
PREEMPTED_MESSAGE = "Preempted by a higher-priority workload"
DELETED_MESSAGE = "Deleted by its owner"

Phase = tuple[int, str, str]  # (UTC ms, phase, phaseMessage)


@dataclass(slots=True)
class WorkloadPlan:
    """Everything about one workload that does not depend on the time it is looked at."""

    id: str
    name: str
    type: str  # Training, Workspace, Distributed, Inference
    cluster_id: str
    project_id: str
    submitted_by: str
    source: str  # CLI, Control-plane, Other
    created_ms: int
    phases: tuple[Phase, ...]
    deleted_ms: int | None
    gpus: float  # whole workload (all pods)
    pods: int
    nodepool: str
    times: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.times = tuple(phase[0] for phase in self.phases)

    # -- as of a moment ---------------------------------------------------------------------------
    def exists_at(self, now_ms: int) -> bool:
        return self.created_ms <= now_ms

    def phase_index(self, now_ms: int) -> int:
        """Index of the phase in force at ``now_ms`` (the workload must exist then)."""
        return max(bisect_right(self.times, now_ms) - 1, 0)

    def phase_at(self, now_ms: int) -> Phase:
        return self.phases[self.phase_index(now_ms)]

    def deleted_at(self, now_ms: int) -> int | None:
        return self.deleted_ms if self.deleted_ms is not None and self.deleted_ms <= now_ms else None

    def completed_at(self, now_ms: int) -> int | None:
        ms, phase, _ = self.phase_at(now_ms)
        return ms if phase in TERMINAL else None

    def updated_at(self, now_ms: int) -> int:
        """The last change of any kind: a phase change or the deletion."""
        return max(self.phase_at(now_ms)[0], self.deleted_at(now_ms) or 0)

    def intervals(self, phase: str, now_ms: int) -> list[tuple[int, int]]:
        """[from, to) spans spent in ``phase`` up to ``now_ms``."""
        spans = []
        for i, (start, name, _) in enumerate(self.phases):
            if name != phase or start >= now_ms:
                continue
            end = self.phases[i + 1][0] if i + 1 < len(self.phases) else now_ms
            spans.append((start, min(end, now_ms)))
        return spans

    def seconds_in(self, phase: str, now_ms: int) -> int:
        return sum(end - start for start, end in self.intervals(phase, now_ms)) // SECOND_MS

    def changes_after(self, since_ms: int, now_ms: int) -> bool:
        """Was it created, did its phase change or was it deleted in (since_ms, now_ms]?"""
        moments = [*self.times, self.created_ms]
        if self.deleted_ms is not None:
            moments.append(self.deleted_ms)
        return any(since_ms < moment <= now_ms for moment in moments)


def plan_phases(
    workload_type: str, created_ms: int, preemptible: bool, rng: random.Random, deleted_ms: int | None
) -> tuple[Phase, ...]:
    """The whole phase history; a deletion cuts it short with Stopped at the deletion time."""
    t = created_ms
    phases: list[Phase] = [(t, "Creating", "")]
    t += rng.randint(200, 1500)
    phases.append((t, PENDING, PHASE_MESSAGES[PENDING]))
    if rng.random() < NEVER_SCHEDULED_SHARE:
        t += _pending_ms(rng, long=True)
        phases.append((t, rng.choice(("Failed", "Stopped")), "Workload was never scheduled"))
        return _cut(phases, deleted_ms)
    t += _pending_ms(rng)
    phases.append((t, RUNNING, ""))
    run_ms = min(int(rng.lognormvariate(0, 0.9) * MEDIAN_RUN_MS[workload_type]), MAX_RUN_MS)
    run_ms = max(run_ms, MINUTE_MS)
    if preemptible and rng.random() < PREEMPTED_SHARE:
        first = max(int(run_ms * rng.uniform(0.1, 0.9)), SECOND_MS)
        t += first
        phases.append((t, PENDING, PREEMPTED_MESSAGE))
        t += _pending_ms(rng)
        phases.append((t, RUNNING, ""))
        run_ms = max(run_ms - first, SECOND_MS)
    t += run_ms
    phases.append((t, _ending(workload_type, rng), ""))
    phases[-1] = (t, phases[-1][1], PHASE_MESSAGES.get(phases[-1][1], ""))
    return _cut(phases, deleted_ms)


def end_ms(phases: tuple[Phase, ...]) -> int | None:
    """When the workload finished (its terminal phase), or None if it never does."""
    ms, phase, _ = phases[-1]
    return ms if phase in TERMINAL else None


def _cut(phases: list[Phase], deleted_ms: int | None) -> tuple[Phase, ...]:
    if deleted_ms is None:
        return tuple(phases)
    kept = [phase for phase in phases if phase[0] < deleted_ms]
    if kept[-1][1] not in TERMINAL:
        kept.append((deleted_ms, "Stopped", DELETED_MESSAGE))
    return tuple(kept)


def _pending_ms(rng: random.Random, *, long: bool = False) -> int:
    mean_ms = 2 * HOUR_MS if long else 3 * MINUTE_MS
    return max(MIN_PENDING_MS, min(int(rng.expovariate(1 / mean_ms)), 12 * HOUR_MS))


def _ending(workload_type: str, rng: random.Random) -> str:
    if workload_type in ("Workspace", "Inference"):
        return "Stopped"  # interactive and serving workloads run until someone stops them
    draw, cumulative = rng.random(), 0.0
    for phase, share in BATCH_ENDINGS:
        cumulative += share
        if draw < cumulative:
            return phase
    return BATCH_ENDINGS[-1][0]
