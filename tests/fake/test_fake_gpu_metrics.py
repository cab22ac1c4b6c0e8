"""The fake's GPU metrics and consumption reports: the 2.24 contract (runapy 1.224's models), the
API's limits and errors, and values that come from the same truth as the workloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from runai.models import (
    AreReportsAvailable200Response,
    Error,
    ListReports200Response,
    MetricsCompositeResponse,
    MetricsResponse,
    Report,
    ReportRequestFields,
)

from runai_extract.fake import FakeControlPlane
from runai_extract.fake.gpu_metrics import IDLE_LINE

REPORTS = "/api/v1/org-unit/reports"
SPAN = {"start": "2025-06-03T09:00:00Z", "end": "2025-06-03T12:00:00Z"}


def _running(api: httpx.Client) -> list[dict[str, Any]]:
    items = api.get("/api/v1/workloads", params={"limit": 500, "filterBy": "phase==Running"}).json()
    return list(items["workloads"])


def _metrics(api: httpx.Client, workload_id: str, **params: Any) -> httpx.Response:
    query = {"metricType": "GPU_UTILIZATION,GPU_MEMORY_USAGE_BYTES,GPU_ALLOCATION", **SPAN}
    query.update(params)
    return api.get(f"/api/v1/workloads/{workload_id}/metrics", params=query)


def test_workload_metrics_validate_and_follow_the_workload(
    api: httpx.Client, plane: FakeControlPlane
) -> None:
    running = _running(api)
    assert running
    for item in running[:15]:
        response = _metrics(api, item["id"], numberOfSamples=181)
        assert response.status_code == 200, response.text
        body = response.json()
        assert MetricsCompositeResponse.from_dict(body) is not None
        by_type = {m["type"]: m["values"] for m in body["measurements"]}
        assert set(by_type) == {"GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "GPU_ALLOCATION"}
        for values in by_type.values():
            assert all(isinstance(v["value"], str) for v in values)
        allocation = {float(v["value"]) for v in by_type["GPU_ALLOCATION"]}
        assert allocation <= {item["allocatedResources"]["gpu"]}
        # Samples exist only while Running: never before the workload was created.
        assert all(v["timestamp"] >= item["createdAt"] for v in by_type["GPU_ALLOCATION"])


def test_org_unit_metrics_validate_and_quota_changes(api: httpx.Client, plane: FakeControlPlane) -> None:
    projects = api.get("/api/v1/org-unit/projects", params={"limit": 500}).json()["projects"]
    changed = 0
    span = {"start": "2025-05-01T00:00:00Z", "end": "2025-06-05T00:00:00Z", "numberOfSamples": 1000}
    for project in projects:
        response = api.get(
            f"/api/v1/org-unit/projects/{project['id']}/metrics",
            params={"metricType": "GPU_QUOTA,GPU_ALLOCATION", **span},
        )
        assert response.status_code == 200, response.text
        assert MetricsResponse.from_dict(response.json()) is not None
        quota = {m["type"]: m["values"] for m in response.json()["measurements"]}["GPU_QUOTA"]
        changed += len({v["value"] for v in quota}) > 1
    assert changed >= len(projects) // 2  # quotas change over the timeline
    department = api.get("/api/v1/org-unit/departments", params={"limit": 1}).json()["departments"][0]
    response = api.get(
        f"/api/v1/org-unit/departments/{department['id']}/metrics",
        params={"metricType": "GPU_ALLOCATION", **span},
    )
    assert response.status_code == 200 and MetricsResponse.from_dict(response.json()) is not None


@pytest.mark.parametrize(
    ("params", "details"),
    [
        ({"metricType": None}, "query parameter 'metricType' is required"),
        ({"start": None}, "query parameter 'start' is required"),
        ({"end": None}, "query parameter 'end' is required"),
        ({"numberOfSamples": 1001}, "'numberOfSamples' must be between 0 and 1000"),
        ({"numberOfSamples": -1}, "'numberOfSamples' must be between 0 and 1000"),
        ({"metricType": "GPU_UTILISATION"}, "unknown value 'GPU_UTILISATION'"),
        ({"start": "yesterday"}, "start 'yesterday' is not an ISO-8601 date-time"),
        ({"start": "2025-06-03T13:00:00Z"}, "'start' must not be after 'end'"),
    ],
)
def test_bad_metrics_parameters_are_400_with_the_error_body(
    api: httpx.Client, params: dict[str, Any], details: str
) -> None:
    workload = _running(api)[0]
    query = {"metricType": "GPU_UTILIZATION", **SPAN, **params}
    response = api.get(
        f"/api/v1/workloads/{workload['id']}/metrics",
        params={k: v for k, v in query.items() if v is not None},
    )
    assert response.status_code == 400
    assert Error.from_dict(response.json()) is not None
    assert details in response.json()["details"]


def test_unknown_workload_is_404_and_unsimulated_types_are_partial(api: httpx.Client) -> None:
    missing = _metrics(api, "00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and Error.from_dict(missing.json()) is not None
    partial = _metrics(api, _running(api)[0]["id"], metricType="GPU_UTILIZATION,CPU_USAGE_CORES")
    assert partial.status_code == 207
    assert [m["type"] for m in partial.json()["measurements"]] == ["GPU_UTILIZATION"]


def test_idle_notebooks_hogs_and_busy_training_look_as_planted(
    api: httpx.Client, plane: FakeControlPlane
) -> None:
    seen: dict[str, list[float]] = {}
    for item in _running(api):
        body = _metrics(api, item["id"], metricType="GPU_UTILIZATION", numberOfSamples=10).json()
        values = [float(v["value"]) for v in body["measurements"][0]["values"]]
        if values:
            seen.setdefault(item["type"], []).append(max(values))
    idle_truth = plane.simulator.idle_workloads_truth(plane.simulator.sim_now)
    assert idle_truth, "the tenant has planted idle notebooks"
    truth = plane.simulator.workload_truth()
    assert {row["type"] for row in truth if row["workload_id"] in idle_truth} == {"Workspace"}
    assert min(seen["Workspace"]) < IDLE_LINE  # an idle notebook among the running ones
    assert min(seen.get("Training", [100.0]) + seen.get("Distributed", [100.0])) > IDLE_LINE


def test_a_samples_span_never_exceeds_the_retention_or_now(
    start_plane: Callable[..., FakeControlPlane], client_for: Callable[[FakeControlPlane], httpx.Client]
) -> None:
    plane = start_plane(days=1, events_per_day=300, metrics_retention_days=1)
    api = client_for(plane)
    now = plane.simulator.sim_now
    workload = _running(api)[0]
    start = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = _metrics(api, workload["id"], start=start, end=end, numberOfSamples=1000).json()
    stamps = [v["timestamp"] for m in body["measurements"] for v in m["values"]]
    oldest = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert stamps and min(stamps) >= oldest and max(stamps) <= now.strftime("%Y-%m-%dT%H:%M:%S.999Z")


def test_consumption_report_lifecycle_and_csv(api: httpx.Client, plane: FakeControlPlane) -> None:
    request = {"name": "day", "start": "2025-06-02T00:00:00Z", "end": "2025-06-03T00:00:00Z"}
    request["groupBy"] = "Project"
    assert ReportRequestFields.from_dict(request) is not None
    created = api.post(REPORTS, json=request)
    assert created.status_code == 202 and Report.from_dict(created.json()) is not None
    report_id = created.json()["id"]
    assert created.json()["status"] == "Pending"
    assert api.get(f"{REPORTS}/{report_id}/file").status_code == 409
    statuses = [api.get(f"{REPORTS}/{report_id}").json()["status"] for _ in range(3)]
    assert statuses == ["Processing", "Ready", "Ready"]
    assert ListReports200Response.from_dict(api.get(REPORTS).json()) is not None
    assert AreReportsAvailable200Response.from_dict(api.get(f"{REPORTS}/availability").json()) is not None
    download = api.get(f"{REPORTS}/{report_id}/file")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    truth = plane.simulator.gpu_hours_truth()
    day = next(iter(sorted(truth)))[0].replace(day=2)
    for row in rows:
        expected = truth.get((day, row["projectId"]), 0.0)
        assert float(row["gpuAllocationHours"]) == pytest.approx(expected, rel=1e-6, abs=1e-5)
    assert api.delete(f"{REPORTS}/{report_id}").status_code == 204
    assert api.get(f"{REPORTS}/{report_id}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"start": "2025-06-02T00:00:00Z", "end": "2025-06-03T00:00:00Z"},
        {"name": "x", "end": "2025-06-03T00:00:00Z"},
        {"name": "x", "start": "2025-06-03T00:00:00Z", "end": "2025-06-02T00:00:00Z"},
        {"name": "x", "start": "2025-06-02T00:00:00Z", "end": "2025-06-03T00:00:00Z", "groupBy": "User"},
        {"name": "x", "start": "2025-06-02T00:00:00Z", "end": "2025-06-03T00:00:00Z", "filterBy": ["a!=b"]},
    ],
)
def test_bad_report_requests_are_400(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post(REPORTS, json=body)
    assert response.status_code == 400 and Error.from_dict(response.json()) is not None


def test_report_skew_makes_one_project_disagree(
    start_plane: Callable[..., FakeControlPlane], client_for: Callable[[FakeControlPlane], httpx.Client]
) -> None:
    plane = start_plane(days=1, events_per_day=300, report_skew=(("team-vision", 1.1),))
    api = client_for(plane)
    request = {"name": "d", "start": "2025-06-02T12:00:00Z", "end": "2025-06-03T12:00:00Z"}
    report_id = api.post(REPORTS, json={**request, "groupBy": "Project"}).json()["id"]
    while api.get(f"{REPORTS}/{report_id}").json()["status"] != "Ready":
        pass
    rows = {
        r["projectName"]: r for r in csv.DictReader(io.StringIO(api.get(f"{REPORTS}/{report_id}/file").text))
    }
    truth = plane.simulator.gpu_hours_truth()
    vision = rows["team-vision"]
    expected = sum(hours for (_, project), hours in truth.items() if project == vision["projectId"])
    assert float(vision["gpuAllocationHours"]) == pytest.approx(expected * 1.1, rel=1e-6)
