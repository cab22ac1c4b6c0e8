"""The org-unit and lookup lists of the fake: joins resolve, renames show as slowly-changing
dimensions, and paging/sorting/filtering follow README section 6."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from runai_extract.fake import FakeControlPlane

PROJECTS = "/api/v1/org-unit/projects"
DEPARTMENTS = "/api/v1/org-unit/departments"


def _items(api: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(path, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "next" not in body
    items: list[dict[str, Any]] = body[key]
    return items


def _workloads(api: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for deleted in ("false", "true"):
        offset = 0
        while True:
            body = api.get(
                "/api/v1/workloads", params={"deleted": deleted, "offset": offset, "limit": 500}
            ).json()
            found.extend(body["workloads"])
            offset += len(body["workloads"])
            if "next" not in body:
                break
    return found


def test_every_workload_joins_to_its_project_department_and_cluster(api: httpx.Client) -> None:
    projects = {p["id"]: p for p in _items(api, PROJECTS, "projects")}
    departments = {d["id"]: d for d in _items(api, DEPARTMENTS, "departments")}
    clusters = {c["uuid"]: c for c in api.get("/api/v1/clusters").json()}
    for workload in _workloads(api):
        project = projects[workload["projectId"]]
        assert project["name"] == workload["projectName"]
        assert project["parentId"] == workload["departmentId"]
        assert departments[workload["departmentId"]]["name"] == workload["departmentName"]
        assert project["clusterId"] == workload["clusterId"] and workload["clusterId"] in clusters
    children = {child["id"] for d in departments.values() for child in d["children"]}
    assert children == set(projects)


def test_lookups_agree_with_the_org_truth_and_the_audit_log(
    plane: FakeControlPlane, api: httpx.Client
) -> None:
    truth = plane.simulator.org_truth()
    assert {p["id"]: p["name"] for p in _items(api, PROJECTS, "projects")} == truth["projects"]
    assert {d["id"]: d["name"] for d in _items(api, DEPARTMENTS, "departments")} == truth["departments"]
    rows = plane.simulator.audit_rows()
    users = api.get("/api/v1/users").json()
    assert users and {user["username"] for user in users} <= {row["subject"] for row in rows}
    last_sign_in: dict[str, str] = {}
    for row in rows:  # in time order
        if row["action"] == "sign-in" and row["result"] == "Succeeded":
            last_sign_in[row["subject"]] = row["timestamp"]
    assert [user["lastLogin"] for user in users] == [last_sign_in.get(user["username"]) for user in users]
    cluster_names = {c["name"] for c in api.get("/api/v1/clusters").json()}
    assert {"gpu-prod-east", "gpu-prod-west", "gpu-dev"} <= cluster_names


def test_a_rename_before_now_moves_updated_at(plane: FakeControlPlane, api: httpx.Client) -> None:
    renames = plane.simulator.org_truth()["renames"]
    assert isinstance(renames, list) and len(renames) == 1
    rename = renames[0]
    project = next(p for p in _items(api, PROJECTS, "projects") if p["id"] == rename["id"])
    assert project["name"] == rename["new"] and project["status"]["namespace"] == f"runai-{rename['old']}"
    assert datetime.fromisoformat(project["updatedAt"]) == rename["at"]
    assert datetime.fromisoformat(project["createdAt"]) < rename["at"]


def test_renames_after_now_appear_when_the_clock_advances(
    start_plane: Callable[..., FakeControlPlane], client_for: Callable[[FakeControlPlane], httpx.Client]
) -> None:
    plane = start_plane(days=1, events_per_day=300)
    api = client_for(plane)
    before = {d["id"]: d for d in _items(api, DEPARTMENTS, "departments")}
    plane.simulator.advance(timedelta(hours=13))
    renames = plane.simulator.org_truth()["renames"]
    assert (
        isinstance(renames, list)
        and {r["kind"] for r in renames} == {"department", "project"}
        and len(renames) == 3
    )
    after = {d["id"]: d for d in _items(api, DEPARTMENTS, "departments")}
    department = next(r for r in renames if r["kind"] == "department")
    assert before[department["id"]]["name"] == department["old"] != after[department["id"]]["name"]
    assert after[department["id"]]["name"] == department["new"]
    assert datetime.fromisoformat(after[department["id"]]["updatedAt"]) == department["at"]
    renamed = {r["id"]: r["new"] for r in renames if r["kind"] == "project"}
    shown = [w for w in _workloads(api) if w["projectId"] in renamed]
    assert shown and all(w["projectName"] == renamed[w["projectId"]] for w in shown)


def test_project_lists_page_sort_and_filter(api: httpx.Client) -> None:
    everything = _items(api, PROJECTS, "projects")
    names = [p["name"] for p in _items(api, PROJECTS, "projects", sortBy="name", sortOrder="desc")]
    assert names == sorted(names, reverse=True)
    cluster = everything[0]["clusterId"]
    on_cluster = _items(api, PROJECTS, "projects", filterBy=f"clusterId=={cluster}")
    assert {p["id"] for p in on_cluster} == {p["id"] for p in everything if p["clusterId"] == cluster}
    first = api.get(PROJECTS, params={"limit": 2}).json()
    assert len(first["projects"]) == 2 and first["next"] == 2
    busy = _items(api, PROJECTS, "projects", filterBy="gpuAllocated>=1")
    assert busy and all(p["status"]["quotaStatus"]["allocated"]["gpu"] >= 1 for p in busy)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (PROJECTS, {"sortBy": "updatedAt"}),
        (PROJECTS, {"filterBy": "updatedAt>=2025-01-01T00:00:00Z"}),
        (DEPARTMENTS, {"filterBy": "parentId==1"}),
        (DEPARTMENTS, {"limit": 501}),
        ("/api/v1/node-pools", {"limit": 0}),
        ("/api/v1/users", {"limit": 501}),
    ],
)
def test_unlisted_fields_and_bad_limits_are_a_400(
    api: httpx.Client, path: str, params: dict[str, Any]
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == 400 and response.json()["code"] == 400


def test_node_pools_and_users_page_without_next(api: httpx.Client) -> None:
    pools = api.get("/api/v1/node-pools").json()["nodepools"]
    page = api.get("/api/v1/node-pools", params={"offset": 1, "limit": 2}).json()
    assert page == {"nodepools": pools[1:3]}
    users = api.get("/api/v1/users").json()
    assert api.get("/api/v1/users", params={"offset": 2, "limit": 3}).json() == users[2:5]
