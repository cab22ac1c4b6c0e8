"""The workloads API of the fake behaves as README sections 4.1-4.5 say, as of the simulated clock,
and agrees with the audit log and the simulator's ground truth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from runai_extract.fake import FakeConfig, FakeControlPlane, FaultConfig, TenantSimulator

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)  # the shared tenant's now (conftest)
WORKLOADS = "/api/v1/workloads"
WORKLOAD_AUDIT_TYPES = {"training", "workspace", "inference", "distributed"}


def _all(
    api: httpx.Client, path: str = WORKLOADS, key: str = "workloads", **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list, paged the careful way; asserts ``next`` is there exactly while more remain."""
    items: list[dict[str, Any]] = []
    while True:
        response = api.get(path, params={**params, "offset": len(items), "limit": params.get("limit", 500)})
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body[key])
        if "next" not in body:
            return items
        assert body["next"] == len(items) and body[key], "next points just past a non-empty page"


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_deleted_flag_splits_the_workloads_in_two(plane: FakeControlPlane, api: httpx.Client) -> None:
    active = _all(api)
    deleted = _all(api, deleted="true")
    assert _all(api, deleted="false") == active
    assert all(item["deletedAt"] is None for item in active)
    assert all(item["deletedAt"] is not None for item in deleted)
    truth = plane.simulator.workload_truth()
    assert {item["id"] for item in active} == {
        row["workload_id"] for row in truth if row["deleted_at"] is None
    }
    assert {item["id"] for item in deleted} == {row["workload_id"] for row in truth if row["deleted_at"]}
    assert api.get(WORKLOADS + "/count").json() == {"count": len(active)}
    assert api.get(WORKLOADS + "/count", params={"deleted": "true"}).json() == {"count": len(deleted)}


def test_next_is_sent_only_while_more_remain(api: httpx.Client) -> None:
    total = api.get(WORKLOADS + "/count").json()["count"]
    pages = _all(api, limit=97, sortBy="createdAt")
    assert len(pages) == total == len({item["id"] for item in pages})
    last = api.get(WORKLOADS, params={"offset": total - 3, "limit": 3}).json()
    assert len(last["workloads"]) == 3 and "next" not in last
    past = api.get(WORKLOADS, params={"offset": total + 10}).json()
    assert past == {"workloads": []}
    assert len(api.get(WORKLOADS).json()["workloads"]) == 50  # the default limit


def test_sorting_is_stable_with_ties_broken_by_id(api: httpx.Client) -> None:
    items = _all(api, sortBy="type", sortOrder="asc")
    keys = [(item["type"], item["id"]) for item in items]
    assert keys == sorted(keys)
    newest_first = _all(api, sortBy="createdAt", sortOrder="desc")
    stamps = [_when(item["createdAt"]) for item in newest_first]
    assert stamps == sorted(stamps, reverse=True)
    by_gpu = _all(api, sortBy="allocatedGPU", sortOrder="desc")
    gpus = [item["allocatedResources"]["gpu"] for item in by_gpu]
    assert gpus == sorted(gpus, reverse=True) and gpus[0] > 0


def test_filters_are_anded_and_typed(api: httpx.Client) -> None:
    everything = _all(api)
    cutoff = _when(everything[len(everything) // 2]["createdAt"])
    params = {"filterBy": f"allocatedGPU>=2,phase==Running,createdAt>={cutoff.isoformat()}"}
    expected = {
        item["id"]
        for item in everything
        if item["allocatedResources"]["gpu"] >= 2
        and item["phase"] == "Running"
        and _when(item["createdAt"]) >= cutoff
    }
    assert {item["id"] for item in _all(api, **params)} == expected and expected
    assert api.get(WORKLOADS + "/count", params=params).json()["count"] == len(expected)
    trains = _all(api, filterBy="name=@-train-")
    assert trains and all("-train-" in item["name"] for item in trains)
    assert {item["id"] for item in _all(api, search="TRAIN")} == {item["id"] for item in trains}
    # A null field matches != (and !@) only.
    assert len(_all(api, filterBy="completedAt!=2000-01-01T00:00:00Z")) == len(everything)
    finished = _all(api, filterBy="completedAt>=2000-01-01T00:00:00Z")
    assert {item["id"] for item in finished} == {item["id"] for item in everything if item["completedAt"]}


@pytest.mark.parametrize(
    "params",
    [
        {"filterBy": "updatedAt>=2025-01-01T00:00:00Z"},
        {"filterBy": "k8sPhaseUpdatedAt>=2025-01-01T00:00:00Z"},
        {"sortBy": "updatedAt"},
        {"sortBy": "k8sPhaseUpdatedAt"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"sortOrder": "up"},
        {"filterBy": "createdAt=@2025"},
        {"filterBy": "allocatedGPU>=lots"},
        {"filterBy": "phase~Running"},
        {"deleted": "maybe"},
    ],
)
def test_bad_parameters_are_a_400_error_body(api: httpx.Client, params: dict[str, Any]) -> None:
    response = api.get(WORKLOADS, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 400 and response.json()["details"]


def test_gpu_allocation_follows_the_phase(api: httpx.Client) -> None:
    for item in _all(api) + _all(api, deleted="true"):
        requested = item["workloadRequestedResources"]["gpu"]["request"]
        running = item["phase"] == "Running"
        assert item["allocatedResources"]["gpu"] == (requested if running else 0)
        assert item["runningPods"] == (item["requestedPods"]["number"] if running else 0)
        assert (item["completedAt"] is not None) == (item["phase"] in ("Completed", "Failed", "Stopped"))
        assert _when(item["updatedAt"]) >= _when(item["phaseUpdatedAt"]) >= _when(item["createdAt"])


def test_events_are_newest_first_by_default(api: httpx.Client) -> None:
    running = _all(api, filterBy="phase==Running", sortBy="createdAt")[0]
    path = f"{WORKLOADS}/{running['id']}/events"
    default = _all(api, path, "events", limit=3)
    oldest_first = _all(api, path, "events", sortOrder="asc")
    assert default == list(reversed(oldest_first)) and len(default) >= 5
    assert [event["reason"] for event in oldest_first[:5]] == [
        "Scheduled",
        "Pulling",
        "Pulled",
        "Created",
        "Started",
    ]
    assert {event["type"] for event in oldest_first} <= {"Normal", "Warning"}


def test_history_is_complete_and_stable_but_not_chronological(api: httpx.Client) -> None:
    unordered = 0
    for item in _all(api, filterBy="phase==Completed")[:30]:
        path = f"{WORKLOADS}/{item['id']}/history"
        whole = api.get(path, params={"limit": 500}).json()["records"]
        assert _all(api, path, "records", limit=4) == whole  # paging is stable
        stamps = [record["meta"]["creationTimestamp"] for record in whole]
        unordered += stamps != sorted(stamps)
        phases = sorted(
            (record["meta"]["creationTimestamp"], record["spec"]["phaseUpdate"]["phase"])
            for record in whole
            if record["meta"]["type"] == "PhaseUpdate"
        )
        assert phases[0][1] == "Creating" and phases[-1][1] == "Completed"
        assert phases[0][0] == item["createdAt"] and phases[-1][0] == item["completedAt"]
        events = _all(api, f"{WORKLOADS}/{item['id']}/events", "events")
        assert sum(record["meta"]["type"] == "Event" for record in whole) == len(events)
    assert unordered >= 25, "history order must not be chronological"


def test_workload_detail_includes_deleted_ones_and_404s_unknown(api: httpx.Client) -> None:
    gone = _all(api, deleted="true")[0]
    detail = api.get(f"{WORKLOADS}/{gone['id']}")
    assert detail.status_code == 200 and detail.json()["deletedAt"] == gone["deletedAt"]
    for suffix in ("", "/events", "/history"):
        missing = api.get(f"{WORKLOADS}/00000000-0000-4000-8000-000000000000{suffix}")
        assert missing.status_code == 404 and missing.json()["code"] == 404


def test_every_response_is_dated_in_simulated_time(
    plane: FakeControlPlane, api: httpx.Client, anon: httpx.Client
) -> None:
    for response in (
        api.get(WORKLOADS),
        api.get("/api/v1/clusters"),
        anon.get(WORKLOADS),  # 401
        api.get("/api/v1/nothing-here"),  # 404
    ):
        assert parsedate_to_datetime(response.headers["date"]) == plane.simulator.sim_now == NOW
        assert len(response.headers.get_list("date")) == 1


def test_audit_workload_creates_and_deletes_resolve_in_the_workloads_api(
    plane: FakeControlPlane, api: httpx.Client
) -> None:
    served = {item["id"]: item for item in _all(api) + _all(api, deleted="true")}
    creates = deletes = 0
    for row in plane.simulator.audit_rows():
        if row["entity_type"] not in WORKLOAD_AUDIT_TYPES or row["result"] != "Succeeded":
            continue
        workload = served.get(row["entity_id"])
        if row["action"] == "create":
            creates += 1
            assert workload is not None, row
            assert (workload["name"], workload["clusterId"]) == (row["entity_name"], row["cluster_id"])
            assert workload["createdAt"] == row["timestamp"] and workload["submittedBy"] == row["subject"]
        elif row["action"] == "delete":
            deletes += 1
            assert workload is not None and workload["deletedAt"] == row["timestamp"], row
    assert creates == len(served) and deletes > 0


def test_advancing_the_clock_shows_new_workloads_phase_changes_and_deletions(
    start_plane: Callable[..., FakeControlPlane], client_for: Callable[[FakeControlPlane], httpx.Client]
) -> None:
    plane = start_plane(days=1, events_per_day=600)
    api = client_for(plane)
    before = {item["id"]: item for item in _all(api) + _all(api, deleted="true")}
    plane.simulator.advance(timedelta(hours=6))
    response = api.get(WORKLOADS, params={"limit": 500})
    assert parsedate_to_datetime(response.headers["date"]) == NOW + timedelta(hours=6)
    after = {item["id"]: item for item in _all(api) + _all(api, deleted="true")}
    new = set(after) - set(before)
    assert new and set(before) <= set(after)
    assert all(_when(after[i]["createdAt"]) > NOW for i in new)
    moved = {i for i in before if after[i]["phaseUpdatedAt"] != before[i]["phaseUpdatedAt"]}
    newly_deleted = {
        i for i in before if before[i]["deletedAt"] is None and after[i]["deletedAt"] is not None
    }
    assert moved and newly_deleted
    changed = new | moved | newly_deleted
    assert plane.simulator.workload_changes_since(NOW) == len(changed)
    running = [item for item in after.values() if item["phase"] == "Running"]
    assert any(
        item["totalRunningTimeSeconds"] > before.get(item["id"], item)["totalRunningTimeSeconds"]
        for item in running
    )
    with pytest.raises(ValueError):
        plane.simulator.advance(timedelta(seconds=-1))


def test_a_five_thousand_workload_tenant_builds() -> None:
    simulator = TenantSimulator(FakeConfig(seed=11, days=3, events_per_day=8000, now=NOW, future_days=0))
    truth = simulator.workload_truth()
    assert len(truth) >= 5000
    assert {row["type"] for row in truth} == {"Training", "Workspace", "Distributed", "Inference"}
    assert all(row["created_at"].tzinfo is UTC for row in truth[:100])


def test_the_same_seed_and_now_give_the_same_workloads() -> None:
    config = FakeConfig(seed=5, days=1, events_per_day=300, now=NOW)
    assert TenantSimulator(config).workload_truth() == TenantSimulator(config).workload_truth()


def test_workloads_per_day_sets_the_arrivals_after_now() -> None:
    simulator = TenantSimulator(
        FakeConfig(days=1, events_per_day=200, now=NOW, workloads_per_day=500, future_days=1)
    )
    before = len(simulator.workload_truth())
    simulator.advance(timedelta(days=1))
    later = [row for row in simulator.workload_truth() if row["created_at"] > NOW]
    assert len(later) == 500 and len(simulator.workload_truth()) == before + 500
    assert simulator.sim_now == NOW + timedelta(days=1)


def test_faults_and_auth_apply_to_the_workload_and_lookup_routes(
    start_plane: Callable[..., FakeControlPlane], client_for: Callable[[FakeControlPlane], httpx.Client]
) -> None:
    plane = start_plane(days=1, events_per_day=200)
    api = client_for(plane)
    paths = (
        WORKLOADS,
        WORKLOADS + "/count",
        "/api/v1/clusters",
        "/api/v1/org-unit/projects",
        "/api/v1/users",
    )
    assert all(httpx.get(plane.base_url + path).status_code == 401 for path in paths)
    plane.set_faults(FaultConfig(error_rate=1.0, error_statuses=(503,)))
    assert all(api.get(path).status_code == 503 for path in paths)
    plane.set_faults(FaultConfig(bad_body_rate=1.0))  # an HTML proxy page or truncated JSON
    for path in paths:
        response = api.get(path)
        assert response.status_code == 200 and not _is_json(response)


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True
