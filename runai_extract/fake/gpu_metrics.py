"""What the tenant's GPUs do: every workload's utilisation timeline and every org unit's quota.

Planned once from (seed, workload id) like the phases (lifecycle.py), so a value served now never
contradicts one served later. A workload's *profile* decides how hard its GPUs work:

    idle         half of the Workspaces: a notebook left open, 0-3% all the time (the planted
                 idlers ``usage_idle_workloads`` must find, exactly)
    hog          half of the 8-GPU Training jobs: one GPU busy, seven idle (a ~11% mean)
    busy         other Training and Distributed jobs: 70-95%
    interactive  other Workspaces: 20-60%
    serving      Inference: 15-50%

Utilisation is the workload's mean over its GPUs, constant within a UTC hour (base + a
per-hour wobble of at most 5 points, 1 for idle ones), so it is never near the 5% idle line
except for idle workloads. Memory in use follows utilisation. Allocation is the workload's GPUs
while Running, nothing otherwise.

Quotas: a project starts at its ``gpu_quota`` and changes once, at a planned moment of the
timeline (to 2, 6 or 8 GPUs); a department's quota is 16 and changes to 24 at its own moment.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from runai_extract.fake.lifecycle import DAY_MS, HOUR_MS, MINUTE_MS, RUNNING, WorkloadPlan
from runai_extract.fake.orgunits import OrgUnit
from runai_extract.fake.workload_render import EPOCH

IDLE_LINE = 5.0  # percent: below it for more than an hour is an idle workload
GPU_MEMORY_BYTES = 80 * 1024**3  # every simulated GPU has 80 GiB
PROFILE_RANGES = {
    "idle": (0.3, 2.0, 1.0),  # (lowest base, highest base, wobble amplitude), percent
    "hog": (85.0, 95.0, 5.0),  # the one busy GPU; divided by the GPU count below
    "busy": (70.0, 90.0, 5.0),
    "interactive": (20.0, 55.0, 5.0),
    "serving": (15.0, 45.0, 5.0),
}


@dataclass(frozen=True)
class Profile:
    kind: str
    base: float
    wobble: float
    divisor: float  # the hog: one busy GPU out of ``divisor``
    key: int  # per-workload salt of the hourly wobble


def profile_of(seed: int, plan: WorkloadPlan) -> Profile:
    rng = random.Random(f"{seed}:{plan.id}:gpu-profile")
    draw = rng.random()
    if plan.type == "Workspace":
        kind = "idle" if draw < 0.5 else "interactive"
    elif plan.type == "Inference":
        kind = "serving"
    elif plan.gpus == 8 and draw < 0.5:
        kind = "hog"
    else:
        kind = "busy"
    low, high, wobble = PROFILE_RANGES[kind]
    divisor = plan.gpus if kind == "hog" else 1.0
    return Profile(kind, rng.uniform(low, high), wobble, divisor, rng.getrandbits(62))


def utilisation(profile: Profile, t_ms: int) -> float:
    """Mean utilisation (percent) over the workload's GPUs in the UTC hour holding ``t_ms``."""
    return round(_busy(profile, t_ms) / profile.divisor, 3)


def device_utilisation(profile: Profile, devices: int, t_ms: int) -> list[float]:
    """Utilisation (percent, unrounded) of each of the workload's ``devices`` GPUs at ``t_ms``.

    What the pods' per-GPU series show: the hog's first GPU works and the others idle, every other
    workload's GPUs work alike, so the mean over the GPUs is :func:`utilisation` (before rounding).
    """
    busy = _busy(profile, t_ms)
    if profile.kind == "hog":
        return [busy, *([0.0] * (devices - 1))]
    return [busy] * devices


def _busy(profile: Profile, t_ms: int) -> float:
    """The working GPUs' utilisation in the UTC hour holding ``t_ms``: base plus the hour's wobble."""
    fraction = _mix(profile.key ^ (t_ms // HOUR_MS)) / _MASK  # in [0, 1], the same for the whole hour
    wobble = (2 * fraction - 1) * profile.wobble
    return max(profile.base + wobble, 0.0)


_MASK = (1 << 64) - 1


def _mix(value: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread hash of an integer (no Random per sample)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def memory_bytes(profile: Profile, gpus: float, t_ms: int) -> int:
    """GPU memory in use: a tenth of the allocation plus up to 80% more as the GPUs work."""
    return int(gpus * GPU_MEMORY_BYTES * (0.1 + 0.8 * utilisation(profile, t_ms) / 100.0))


def running_at(plan: WorkloadPlan, t_ms: int) -> bool:
    return plan.created_ms <= t_ms and plan.phase_at(t_ms)[1] == RUNNING


@dataclass(frozen=True)
class QuotaPlan:
    """A unit's quota: ``before`` until ``changed_ms``, ``after`` from then on."""

    before: float
    after: float
    changed_ms: int

    def at(self, t_ms: int) -> float:
        return self.after if t_ms >= self.changed_ms else self.before


def quota_plan(seed: int, unit: OrgUnit, span: tuple[int, int]) -> QuotaPlan:
    rng = random.Random(f"{seed}:{unit.id}:quota")
    changed = rng.randint(span[0], span[1])
    if unit.parent_id is None:  # a department
        return QuotaPlan(float(unit.gpu_quota), 24.0, changed)
    return QuotaPlan(float(unit.gpu_quota), float(rng.choice((2, 6, 8))), changed)


# -- ground truth ---------------------------------------------------------------------------------
def hour_pieces(start: int, stop: int) -> Iterable[tuple[int, int]]:
    """[start, stop) cut at every UTC hour."""
    while start < stop:
        piece_end = min(stop, (start // HOUR_MS + 1) * HOUR_MS)
        yield start, piece_end
        start = piece_end


def efficiency_truth(
    seed: int, plans: Iterable[WorkloadPlan], now_ms: int
) -> dict[tuple[date, str], tuple[float, float]]:
    """(UTC day, project id) -> (allocated GPU-hours, utilised GPU-hours) of Running time to now."""
    out: dict[tuple[date, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for plan in plans:
        profile = profile_of(seed, plan)
        for start, stop in plan.intervals(RUNNING, now_ms):
            for piece_start, piece_end in hour_pieces(start, stop):
                hours = (piece_end - piece_start) / HOUR_MS * plan.gpus
                day = (EPOCH + timedelta(milliseconds=piece_start)).date()
                totals = out[(day, plan.project_id)]
                totals[0] += hours
                totals[1] += hours * utilisation(profile, piece_start) / 100.0
    return {key: (value[0], value[1]) for key, value in out.items()}


def idle_truth(seed: int, plans: Iterable[WorkloadPlan], until_ms: int, step_ms: int = MINUTE_MS) -> set[str]:
    """Workloads with more than an hour of consecutive samples below the idle line.

    Samples are taken at multiples of ``step_ms`` while the workload runs, before ``until_ms``:
    what a client fetching at that resolution sees, so the count of samples is the measure.
    """
    found = set()
    for plan in plans:
        profile = profile_of(seed, plan)
        for start, stop in plan.intervals(RUNNING, until_ms):
            stop = min(stop, until_ms)
            first = -(-start // step_ms) * step_ms
            run = 0
            for t in range(first, stop, step_ms):
                run = run + 1 if utilisation(profile, t) < IDLE_LINE else 0
                if run * step_ms > HOUR_MS:
                    found.add(plan.id)
                    break
    return found


def unit_allocation(plans: Iterable[WorkloadPlan], t_ms: int) -> float:
    """GPUs the workloads of ``plans`` hold at ``t_ms``."""
    return sum(plan.gpus for plan in plans if running_at(plan, t_ms))


def day_of(t_ms: int) -> date:
    return (EPOCH + timedelta(milliseconds=t_ms)).date()


__all__ = [
    "DAY_MS",
    "IDLE_LINE",
    "Profile",
    "QuotaPlan",
    "device_utilisation",
    "efficiency_truth",
    "idle_truth",
    "memory_bytes",
    "profile_of",
    "quota_plan",
    "running_at",
    "unit_allocation",
    "utilisation",
]
