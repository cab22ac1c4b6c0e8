"""The simulated tenant itself: deterministic, coherent, realistic enough to test an extractor."""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runai_extract.fake import FakeConfig, FakeControlPlane, FaultConfig, TenantSimulator
from runai_extract.fake.filters import AuditQuery, datetime_to_us

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
CLUSTER_SCOPED = {
    "project",
    "department",
    "training",
    "workspace",
    "inference",
    "distributed",
    "cluster",
    "nodepool",
}
PREEXISTING = {"settings", "cluster"}  # the tenant starts with its clusters and settings


@pytest.fixture(scope="module")
def rows(plane: FakeControlPlane) -> list[dict[str, Any]]:
    return plane.simulator.audit_rows()


def test_same_seed_and_now_give_the_same_tenant(rows: list[dict[str, Any]]) -> None:
    again = TenantSimulator(FakeConfig(seed=7, days=2, events_per_day=1500, now=NOW))
    assert again.audit_rows() == rows
    other = TenantSimulator(FakeConfig(seed=8, days=2, events_per_day=1500, now=NOW))
    assert not other.audit_ids() & {row["id"] for row in rows}


def test_stream_spans_days_ending_at_now(plane: FakeControlPlane, rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 2 * 1500
    stamps = [datetime.fromisoformat(row["timestamp"]) for row in rows]
    assert NOW - timedelta(days=2) <= min(stamps) < NOW - timedelta(days=2) + timedelta(hours=6)
    assert NOW - timedelta(hours=6) < max(stamps) <= NOW
    assert plane.simulator.start == NOW - timedelta(days=2) and plane.simulator.now == NOW


def test_default_now_is_the_wall_clock() -> None:
    simulator = TenantSimulator(FakeConfig(days=1, events_per_day=10))
    assert abs(simulator.now - datetime.now(UTC)) < timedelta(minutes=1)


def test_ids_ips_and_enumerations_have_the_wire_shapes(rows: list[dict[str, Any]]) -> None:
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert uuid.UUID(row["id"]).version == 4 and str(uuid.UUID(row["id"])) == row["id"]
        assert uuid.UUID(row["request_id"]).version == 4
        ipaddress.IPv4Address(row["source_ip"])
        assert row["subject_type"] in ("User", "App")
        assert (row["subject_type"] == "User") == row["subject"].endswith("@example.com")
        assert (row["result"] == "Failed") == (row["http_status_code"] >= 400)
        metadata = row.get("metadata", {})
        assert len(metadata) <= 10 and all(isinstance(v, str) for v in metadata.values())
    actions = Counter(row["action"] for row in rows)
    assert set(actions) == {"create", "update", "delete", "sign-in", "sign-out", "reset-password"}
    types = {row["entity_type"] for row in rows}
    assert types >= {
        "project",
        "access_rule",
        "user",
        "training",
        "workspace",
        "inference",
        "login",
        "settings",
    }


def test_cluster_fields_only_on_cluster_scoped_entities(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        # A cluster whose create failed does not exist, so it has no cluster fields either.
        never_created = row["entity_type"] == "cluster" and "entity_id" not in row
        scoped = row["entity_type"] in CLUSTER_SCOPED and not never_created
        assert ("cluster_name" in row) == ("cluster_id" in row) == scoped
        if row["entity_type"] == "cluster" and scoped:
            assert row["cluster_id"] == row["entity_id"]
    assert len({row["cluster_name"] for row in rows if "cluster_name" in row}) >= 3


def test_entities_are_created_before_they_change_and_never_touched_after_delete(
    rows: list[dict[str, Any]],
) -> None:
    seen: dict[tuple[str, str], str] = {}  # entity -> its name
    deleted: set[tuple[str, str]] = set()
    for row in rows:
        if row["action"] not in ("create", "update", "delete") or "entity_id" not in row:
            continue
        key = (row["entity_type"], row["entity_id"])
        assert key not in deleted, f"{key} changed after its delete"
        if key not in seen:
            assert row["action"] == "create" or row["entity_type"] in PREEXISTING, (
                f"{key} first seen as {row}"
            )
            seen[key] = row["entity_name"]
        assert seen[key] == row["entity_name"], "an entity keeps its id and name"
        if row["action"] == "delete" and row["result"] == "Succeeded":
            deleted.add(key)
    assert deleted


def test_failed_creates_name_an_entity_without_an_id(rows: list[dict[str, Any]]) -> None:
    without_id = [row for row in rows if "entity_id" not in row]
    assert without_id
    assert all(row["action"] == "create" and row["result"] == "Failed" for row in without_id)


def test_bursts_are_bulk_submissions_in_one_millisecond(
    plane: FakeControlPlane, rows: list[dict[str, Any]]
) -> None:
    bursts = plane.simulator.bursts(min_size=20)
    assert bursts and all(20 <= size <= 200 for _, size in bursts)
    stamp = bursts[0][0].isoformat(timespec="milliseconds").replace("+00:00", "Z")
    burst = [row for row in rows if row["timestamp"] == stamp]
    assert len(burst) == bursts[0][1]
    assert {row["subject_type"] for row in burst} == {"App"} and {row["action"] for row in burst} == {
        "create"
    }


def test_office_hours_are_busier_than_nights(rows: list[dict[str, Any]]) -> None:
    hours = Counter(datetime.fromisoformat(row["timestamp"]).hour for row in rows)
    office = sum(hours[h] for h in range(9, 17)) / 8
    night = sum(hours[h] for h in range(0, 5)) / 5
    assert office > 3 * night


def test_added_rows_are_visible_now_or_after_their_delay() -> None:
    clock = [100.0]  # a hand-driven monotonic clock: no sleeping, no timing flakes
    simulator = TenantSimulator(FakeConfig(days=1, events_per_day=200, now=NOW), clock=lambda: clock[0])
    before = simulator.count()
    visible = simulator.add_rows(5, NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    hidden = simulator.add_rows(3, delay_s=30)
    assert simulator.count(include_late=False) == before + 5
    assert simulator.count() == before + 8
    assert set(visible) <= simulator.audit_ids(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    assert simulator.late_ids() == set(hidden)
    clock[0] += 29.9
    assert simulator.late_ids() == set(hidden)
    clock[0] += 0.1
    assert simulator.count(include_late=False) == before + 8 and not simulator.late_ids()


def test_late_arrivals_wait_for_the_clock_to_start() -> None:
    clock = [0.0]
    faults = FaultConfig(late_arrivals=4, late_arrival_delay_s=5)
    simulator = TenantSimulator(
        FakeConfig(days=1, events_per_day=200, now=NOW, faults=faults), clock=lambda: clock[0]
    )
    clock[0] = 1000.0
    assert len(simulator.late_ids()) == 4, "hidden until the server starts, however long that takes"
    simulator.start_clock()
    clock[0] += 5
    assert not simulator.late_ids()
    late_rows = [row for row in simulator.audit_rows() if row["timestamp"] >= "2025-06-03T11:00:00.000Z"]
    assert len(late_rows) >= 4  # late rows land in the stream's last hour


@pytest.fixture(scope="module")
def small() -> TenantSimulator:
    return TenantSimulator(FakeConfig(seed=3, days=1, events_per_day=600, now=NOW))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(0, 700), limit=st.integers(0, 1000), descending=st.booleans())
def test_any_page_is_the_matching_slice_of_the_truth(
    small: TenantSimulator, offset: int, limit: int, descending: bool
) -> None:
    truth = small.audit_rows()
    if descending:
        truth = truth[::-1]
    query = AuditQuery(
        datetime_to_us(small.start),
        datetime_to_us(small.now),
        offset=offset,
        limit=limit,
        descending=descending,
    )
    page = orjson.loads(small.page_json(query))
    assert page["audit_logs"] == truth[offset : offset + limit]
    assert page["total"] == len(truth)
    assert ("next" in page) == (offset + len(page["audit_logs"]) < len(truth))


@pytest.mark.slow
def test_a_large_tenant_builds_and_pages_quickly() -> None:
    """Scaled-down guard of the 1M-row goal (see the fake's report for full-size numbers)."""
    began = time.perf_counter()
    simulator = TenantSimulator(FakeConfig(days=1, events_per_day=100_000, now=NOW))
    assert time.perf_counter() - began < 60
    query = AuditQuery(
        datetime_to_us(simulator.start), datetime_to_us(simulator.now), offset=50_000, limit=1000
    )
    simulator.page_json(query)  # warm the small caches
    began = time.perf_counter()
    body = simulator.page_json(query)
    assert time.perf_counter() - began < 0.25
    assert len(orjson.loads(body)["audit_logs"]) == 1000
