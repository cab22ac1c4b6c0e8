"""Every workload and lookup answer of the fake validates against the 2.24 contract: runapy
1.224's models where they are right, the spec's own ``Project`` schema where runapy is wrong."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from runai.models import (
    CountResponse,
    DisplayedCluster,
    Error,
    GetDepartments200Response,
    GetNodepools200Response,
    GetWorkloadEvents200Response,
    GetWorkloadHistory200Response,
    GetWorkloads200Response,
    User2,
    Workload,
    WorkloadDetailed,
)

from runai_extract.fake import FakeControlPlane

SPEC = Path("/work/shared/runai-api/openapi-2.24.json")
WORKLOADS = "/api/v1/workloads"


def _workloads(api: httpx.Client, **params: Any) -> dict[str, Any]:
    response = api.get(WORKLOADS, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _validated(model: Any, body: object) -> Any:
    parsed = model.from_dict(body)
    assert parsed is not None
    return parsed


def test_workload_pages_validate_with_runapy(api: httpx.Client) -> None:
    phases, types = set(), set()
    for deleted in ("false", "true"):
        body = _workloads(api, deleted=deleted)
        envelope = _validated(GetWorkloads200Response, body)
        assert len(envelope.workloads) == len(body["workloads"]) > 0
        for item in body["workloads"]:
            workload = _validated(Workload, item)
            assert workload.created_at.utcoffset() is not None
            assert str(item["createdAt"]).endswith("Z") and len(str(item["createdAt"])) == 24
            phases.add(item["phase"])
            types.add(item["type"])
    assert types == {"Training", "Workspace", "Distributed", "Inference"}
    assert {"Running", "Completed", "Stopped"} <= phases


def test_count_detail_events_and_history_validate_with_runapy(api: httpx.Client) -> None:
    count = api.get(WORKLOADS + "/count").json()
    assert _validated(CountResponse, count).count == count["count"] > 0
    sample = _workloads(api)["workloads"][:40] + _workloads(api, deleted="true")["workloads"][:10]
    kinds: set[str] = set()
    for item in sample:
        detail = api.get(f"{WORKLOADS}/{item['id']}").json()
        assert _validated(WorkloadDetailed, detail).id == item["id"]
        assert isinstance(detail["pendingSchedulingMessages"], list)
        events = api.get(f"{WORKLOADS}/{item['id']}/events", params={"limit": 500}).json()
        _validated(GetWorkloadEvents200Response, events)
        history = api.get(f"{WORKLOADS}/{item['id']}/history", params={"limit": 500}).json()
        parsed = _validated(GetWorkloadHistory200Response, history)
        kinds.update(record.meta.type for record in parsed.records)
        for record in history["records"]:
            assert set(record["spec"]) == {"event" if record["meta"]["type"] == "Event" else "phaseUpdate"}
    assert kinds == {"Event", "PhaseUpdate"}


def test_pending_workload_detail_carries_a_scheduling_message(
    plane: FakeControlPlane, api: httpx.Client
) -> None:
    pending = _workloads(api, filterBy="phase==Pending")["workloads"]
    assert pending, "the shared tenant has a workload waiting for GPUs"
    detail = api.get(f"{WORKLOADS}/{pending[0]['id']}").json()
    assert _validated(WorkloadDetailed, detail).pending_scheduling_messages


def test_lookups_validate_with_runapy(api: httpx.Client) -> None:
    clusters = api.get("/api/v1/clusters").json()
    assert isinstance(clusters, list) and clusters
    for cluster in clusters:
        _validated(DisplayedCluster, cluster)
    departments = api.get("/api/v1/org-unit/departments").json()
    assert _validated(GetDepartments200Response, departments).departments
    pools = api.get("/api/v1/node-pools").json()
    assert _validated(GetNodepools200Response, pools).nodepools and "next" not in pools
    users = api.get("/api/v1/users").json()
    assert isinstance(users, list) and users
    for user in users:
        _validated(User2, user)


@pytest.fixture(scope="module")
def project_schema() -> Iterator[dict[str, Any]]:
    """The spec's ``Project`` schema as JSON Schema (OpenAPI 3.0 ``nullable`` turned into null types)."""
    spec = json.loads(SPEC.read_text())
    components = _nullable_to_null(copy.deepcopy(spec["components"]))
    yield {"$ref": "#/components/schemas/Project", "components": components}


def test_projects_validate_against_the_spec_schema(api: httpx.Client, project_schema: dict[str, Any]) -> None:
    body = api.get("/api/v1/org-unit/projects", params={"limit": 500}).json()
    assert set(body) <= {"projects", "next"} and body["projects"]
    validator = jsonschema.Draft202012Validator(project_schema)
    for project in body["projects"]:
        errors = [error.message for error in validator.iter_errors(project)]
        assert not errors, errors


def test_error_bodies_validate_with_runapy(api: httpx.Client) -> None:
    for path, params in (
        (WORKLOADS, {"limit": 0}),
        (WORKLOADS, {"sortBy": "updatedAt"}),
        (f"{WORKLOADS}/00000000-0000-4000-8000-000000000000", {}),
        ("/api/v1/org-unit/projects", {"filterBy": "updatedAt>=2025-01-01T00:00:00Z"}),
    ):
        response = api.get(path, params=params)
        assert response.status_code in (400, 404)
        assert _validated(Error, response.json()).code == response.status_code


def _nullable_to_null(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {key: _nullable_to_null(value) for key, value in node.items()}
        if converted.pop("nullable", False):
            if "type" in converted:
                converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
            if "$ref" in converted or "allOf" in converted:
                return {"anyOf": [converted, {"type": "null"}]}
        return converted
    if isinstance(node, list):
        return [_nullable_to_null(item) for item in node]
    return node
