"""Seeded generation of a tenant's audit stream: when things happen, then what happens.

Built for a million rows in seconds: every random choice is drawn up front with numpy, a single
Python loop applies events to :class:`TenantWorld` (the only part that must be sequential,
because an update needs its create), and ids are minted in one vectorised step at the end.

The traffic has a business-hours shape (weekday office hours busiest, nights and weekends
quiet) and BURSTS: a CI service account submitting 20-200 workloads in the same millisecond,
which is exactly what breaks a client that pages by timestamp instead of by offset.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from runai_extract.fake import catalog as cat
from runai_extract.fake.store import Columns, columns_from_lists
from runai_extract.fake.world import Event, TenantWorld

Int64Array = npt.NDArray[np.int64]

HOUR_MS = 3_600_000
MAX_SHAPED_SPAN_MS = 400 * 24 * HOUR_MS
# Relative activity per UTC hour of day; weekends run at WEEKEND_FACTOR of it.
HOUR_WEIGHTS = (
    0.10, 0.08, 0.08, 0.08, 0.10, 0.15, 0.30, 0.60, 1.00, 1.30, 1.30, 1.20,
    1.00, 1.10, 1.25, 1.20, 1.00, 0.80, 0.50, 0.35, 0.25, 0.20, 0.15, 0.12,
)  # fmt: skip
WEEKEND_FACTOR = 0.35
BURST_SHARE = 0.04  # about this fraction of rows arrive in same-millisecond bursts
BURST_MIN, BURST_MAX = 20, 200
FAILURE_RATE = 0.06
BURST_FAILURE_RATE = 0.02
CHUNK_ROWS = 100_000
USER_SHARE = 0.8  # the rest of single events come from service accounts
# Single events: sign-in, sign-out, reset-password, or a change to an entity.
CATEGORY_WEIGHTS = (0.20, 0.08, 0.01, 0.71)
CHANGE_ACTION_WEIGHTS = (0.38, 0.47, 0.15)  # create, update, delete
EXTRA_ACTION_WEIGHTS = (0.6, 0.25, 0.15)  # late/drift rows: sign-in, sign-out, settings update


def generate_stream(
    seed: int, tenant_id: str, start_ms: int, end_ms: int, count: int
) -> tuple[TenantWorld, Columns]:
    """The tenant and its ``count`` audit rows with timestamps in [start_ms, end_ms]."""
    # The timeline's start is part of the seed: a fake restarted later is a different history, so
    # its events get different ids instead of reusing old ids at shifted timestamps (which would
    # look like one event stored twice under two times to a ledger that already holds the old one).
    rng = np.random.default_rng([seed, start_ms])
    world = TenantWorld(tenant_id, random.Random(seed * 1_000_003 + start_ms))
    ts, burst_of = plan_timestamps(rng, start_ms, end_ms, count)
    bursts = _burst_plans(world, rng, int(burst_of.max(initial=-1)) + 1)
    # Chunks bound the transient Python lists; the world carries state across them.
    chunks = []
    for lo in range(0, count, CHUNK_ROWS):
        _write_events(world, rng, ts[lo : lo + CHUNK_ROWS], burst_of[lo : lo + CHUNK_ROWS], bursts)
        chunks.append(attach_ids(world, rng))
    if not chunks:
        return world, attach_ids(world, rng)
    return world, {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def extra_rows(
    world: TenantWorld, rng: np.random.Generator, count: int, start_ms: int, end_ms: int
) -> Columns:
    """Rows added after generation (late arrivals, drift): sign-ins, sign-outs, settings changes.

    Those kinds are always coherent wherever they land in time (nothing has to exist first).
    """
    times = np.sort(sample_times(rng, start_ms, end_ms, count))
    kinds = _choose(rng, EXTRA_ACTION_WEIGHTS, count).tolist()
    subjects = rng.integers(0, len(world.tables.subjects), count).tolist()
    for ts_ms, kind, subject, u, ip_u in zip(
        times.tolist(), kinds, subjects, rng.random(count).tolist(), rng.random(count).tolist(), strict=True
    ):
        if kind == 2:
            event = Event(ts_ms, subject, cat.UPDATE, cat.KIND_BY_TYPE["settings"], u=u)
        else:
            event = Event(ts_ms, subject, cat.SIGN_IN if kind == 0 else cat.SIGN_OUT)
        world.write(event, ip_u)
    return attach_ids(world, rng)


def plan_timestamps(
    rng: np.random.Generator, start_ms: int, end_ms: int, count: int
) -> tuple[Int64Array, Int64Array]:
    """Sorted event times and, per event, its burst number (-1 for a lone event)."""
    sizes = plan_bursts(rng, count)
    singles = sample_times(rng, start_ms, end_ms, count - sum(sizes))
    anchors = sample_times(rng, start_ms, end_ms, len(sizes))
    ts = np.concatenate([singles, np.repeat(anchors, sizes)])
    burst_of = np.concatenate([np.full(len(singles), -1), np.repeat(np.arange(len(sizes)), sizes)])
    order = np.argsort(ts, kind="stable")
    return ts[order], burst_of[order].astype(np.int64)


def plan_bursts(rng: np.random.Generator, count: int) -> list[int]:
    """Burst sizes adding up to about BURST_SHARE of the rows (none for tiny streams)."""
    if count < 100:
        return []
    largest = min(BURST_MAX, count // 4)
    sizes: list[int] = []
    while sum(sizes) < BURST_SHARE * count or not sizes:
        sizes.append(int(rng.integers(BURST_MIN, largest + 1)))
    return sizes


def sample_times(rng: np.random.Generator, start_ms: int, end_ms: int, count: int) -> Int64Array:
    """``count`` millisecond times in [start_ms, end_ms] following the business-hours shape."""
    if end_ms - start_ms > MAX_SHAPED_SPAN_MS:
        # Drift into an absurd client window (year 1 to 9999): hourly bins would not fit in memory.
        return rng.integers(start_ms, end_ms, size=count, endpoint=True, dtype=np.int64)
    edges = np.arange((start_ms // HOUR_MS + 1) * HOUR_MS, end_ms + 1, HOUR_MS, dtype=np.int64)
    lows = np.concatenate([[start_ms], edges])
    highs = np.concatenate([edges, [end_ms + 1]])  # +1: end_ms itself can be drawn
    keep = highs > lows
    lows, highs = lows[keep], highs[keep]
    weights = (highs - lows) * _activity(lows)
    bins = rng.choice(len(lows), size=count, p=weights / weights.sum())
    offsets = (rng.random(count) * (highs[bins] - lows[bins])).astype(np.int64)
    return (lows[bins] + offsets).astype(np.int64)


def attach_ids(world: TenantWorld, rng: np.random.Generator) -> Columns:
    """The rows written so far as typed columns with fresh uuid4 ids and request ids."""
    rows = world.take_rows()
    values: dict[str, object] = dict(rows.as_lists())
    values["id_hi"], values["id_lo"] = uuid4_halves(rng, len(rows))
    values["req_hi"], values["req_lo"] = uuid4_halves(rng, len(rows))
    return columns_from_lists(values)  # type: ignore[arg-type]


def uuid4_halves(
    rng: np.random.Generator, count: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Random 128-bit values with the uuid4 version and variant bits set, as two uint64 halves."""
    hi = rng.bit_generator.random_raw(count).astype(np.uint64)
    lo = rng.bit_generator.random_raw(count).astype(np.uint64)
    hi = (hi & np.uint64(0xFFFF_FFFF_FFFF_0FFF)) | np.uint64(0x4000)
    lo = (lo & np.uint64(0x3FFF_FFFF_FFFF_FFFF)) | np.uint64(0x8000_0000_0000_0000)
    return hi, lo


def _write_events(
    world: TenantWorld,
    rng: np.random.Generator,
    ts: Int64Array,
    burst_of: Int64Array,
    bursts: list[tuple[int, cat.EntityKind, float]],
) -> None:
    count = len(ts)
    n_users = sum(1 for s in world.tables.subjects if s.subject_type == cat.USER)
    n_subjects = len(world.tables.subjects)
    is_user = rng.random(count) < USER_SHARE
    subjects = np.where(is_user, rng.integers(0, n_users, count), rng.integers(n_users, n_subjects, count))
    category = _choose(rng, CATEGORY_WEIGHTS, count).tolist()
    kinds = _choose(rng, tuple(kind.weight for kind in cat.KINDS), count).tolist()
    actions = _choose(rng, CHANGE_ACTION_WEIGHTS, count).tolist()
    failure_draws = rng.random(count)
    failed = (failure_draws < FAILURE_RATE).tolist()
    burst_failed = (failure_draws < BURST_FAILURE_RATE).tolist()
    picks, ip_draws = rng.random(count).tolist(), rng.random(count).tolist()
    auth_actions = (cat.SIGN_IN, cat.SIGN_OUT, cat.RESET_PASSWORD)
    rows = zip(ts.tolist(), burst_of.tolist(), subjects.tolist(), category, strict=True)
    for i, (ts_ms, burst, subject, group) in enumerate(rows):
        if burst >= 0:
            bulk_subject, kind, u = bursts[burst]
            world.write(Event(ts_ms, bulk_subject, cat.CREATE, kind, burst_failed[i], u), 0.0)
        elif group < len(auth_actions):
            world.write(Event(ts_ms, subject, auth_actions[group], None, failed[i]), ip_draws[i])
        else:
            event = Event(ts_ms, subject, actions[i], cat.KINDS[kinds[i]], failed[i], picks[i])
            world.write(event, ip_draws[i])


def _burst_plans(
    world: TenantWorld, rng: np.random.Generator, count: int
) -> list[tuple[int, cat.EntityKind, float]]:
    """Per burst: the bulk-submitting service account, the workload kind, the cluster draw."""
    names = [subject.name for subject in world.tables.subjects]
    plans = []
    for _ in range(count):
        subject = names.index(cat.BULK_SUBJECTS[int(rng.integers(0, len(cat.BULK_SUBJECTS)))])
        kind = cat.KIND_BY_TYPE["training" if rng.random() < 0.7 else "distributed"]
        plans.append((subject, kind, float(rng.random())))
    return plans


def _choose(rng: np.random.Generator, weights: tuple[float, ...], count: int) -> Int64Array:
    cumulative = np.cumsum(weights) / sum(weights)
    cumulative[-1] = 1.0  # no float shortfall may leave a draw past the last choice
    return np.searchsorted(cumulative, rng.random(count), side="right").astype(np.int64)


def _activity(hour_starts: Int64Array) -> npt.NDArray[np.float64]:
    """HOUR_WEIGHTS by hour of day, damped on Saturdays and Sundays (1970-01-01 was a Thursday)."""
    hours = (hour_starts // HOUR_MS) % 24
    weekday = ((hour_starts // (24 * HOUR_MS)) + 3) % 7  # Monday = 0
    weights = np.asarray(HOUR_WEIGHTS)[hours]
    return np.where(weekday >= 5, weights * WEEKEND_FACTOR, weights)


def to_ms(moment: datetime) -> int:
    """Whole UTC milliseconds since the epoch (floor)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
