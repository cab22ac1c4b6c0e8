"""The fake's pods, per-pod, cluster and node-pool metrics: the 2.24 contract (runapy 1.224's
models), the API's limits and errors, and values that add up to the workloads' own."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest
from runai.models import (
    Error,
    GroupedMetricsResponse,
    ListPods200Response,
    MetricsCompositeResponse,
    MetricsResponse,
    Pod1,
)

SPAN = {"start": "2025-06-03T09:00:00Z", "end": "2025-06-03T12:00:00Z", "numberOfSamples": 37}
POD_TYPES = "GPU_UTILIZATION,GPU_UTILIZATION_PER_GPU,GPU_MEMORY_USAGE_BYTES,GPU_MEMORY_USAGE_BYTES_PER_GPU"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def _workloads(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every workload the list query matches, paged to its end."""
    found: list[dict[str, Any]] = []
    while True:
        body = api.get("/api/v1/workloads", params={"limit": 500, "offset": len(found), **params}).json()
        found.extend(body["workloads"])
        if "next" not in body:
            return found


def _pods(api: httpx.Client, workload_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/api/v1/workloads/{workload_id}/pods", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert ListPods200Response.from_dict(body) is not None
    return body


def _series(body: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, str]]:
    """(type, gpu label) -> {timestamp: value}."""
    out: dict[tuple[str, str | None], dict[str, str]] = {}
    for m in body["measurements"]:
        gpu = (m["labels"] or {}).get("gpu")
        out[(m["type"], gpu)] = {v["timestamp"]: v["value"] for v in m["values"]}
    return out


def _metrics(api: httpx.Client, path: str, types: str, **params: Any) -> httpx.Response:
    return api.get(path, params={"metricType": types, **SPAN, **params})


def _pod_wire_keys() -> set[str]:
    return {field.alias or name for name, field in Pod1.model_fields.items()}


def test_pods_list_validates_and_agrees_with_the_workload_and_its_events(api: httpx.Client) -> None:
    running = _workloads(api, filterBy="phase==Running")
    assert {"Distributed", "Training"} <= {w["type"] for w in running}
    for workload in running[:25]:
        body = _pods(api, workload["id"])
        pods = body["pods"]
        assert len(pods) == workload["runningPods"] > 0 and "next" not in body
        for pod in pods:
            assert Pod1.from_dict(pod) is not None
            assert set(pod) <= _pod_wire_keys(), set(pod) - _pod_wire_keys()
            assert pod["workloadId"] == workload["id"] and pod["k8sPhase"] == "Running"
            assert pod["nodeName"] and pod["currentNodePool"] in workload["currentNodePools"]
        held = sum(pod["allocatedResources"]["gpu"] for pod in pods)
        assert held == pytest.approx(workload["allocatedResources"]["gpu"])
        events = api.get(f"/api/v1/workloads/{workload['id']}/events", params={"limit": 500}).json()
        in_events = {e["involvedObject"]["uid"] for e in events["events"]}
        assert {pod["id"] for pod in pods} <= in_events  # one pod id in events, list and metrics


def test_pods_list_pages_searches_and_keeps_deleted_pods_apart(api: httpx.Client) -> None:
    distributed = next(w for w in _workloads(api, filterBy="phase==Running") if w["runningPods"] > 1)
    first = _pods(api, distributed["id"], limit=1)
    assert len(first["pods"]) == 1 and first["next"] == 1
    rest = _pods(api, distributed["id"], offset=1, limit=500)["pods"]
    assert len(rest) == distributed["runningPods"] - 1
    name = rest[0]["name"]
    assert [p["name"] for p in _pods(api, distributed["id"], search=name.upper())["pods"]] == [name]

    stopped = next(w for w in _workloads(api, filterBy="phase==Stopped") if w["totalRunningTimeSeconds"])
    assert _pods(api, stopped["id"])["pods"] == []
    gone = _pods(api, stopped["id"], deleted="true")["pods"]
    assert gone and all(p["deletedAt"] and p["k8sPhase"] in ("Running", "Pending") for p in gone)
    assert api.get(f"/api/v1/workloads/{UNKNOWN_ID}/pods").status_code == 404


def test_pod_metrics_validate_and_add_up_to_the_workloads(api: httpx.Client) -> None:
    running = _workloads(api, filterBy="phase==Running")
    chosen = [w for w in running if w["runningPods"] > 1][:3] + [w for w in running if w["runningPods"] == 1][
        :6
    ]
    for workload in chosen:
        path = f"/api/v1/workloads/{workload['id']}"
        whole = _series(_metrics(api, path + "/metrics", "GPU_UTILIZATION,GPU_MEMORY_USAGE_BYTES").json())
        utilisation = whole[("GPU_UTILIZATION", None)]
        assert utilisation, "a running workload has samples in the last three hours"
        pod_utilisation: dict[str, list[float]] = defaultdict(list)
        pod_memory: dict[str, int] = defaultdict(int)
        for pod in _pods(api, workload["id"])["pods"]:
            response = _metrics(api, f"{path}/pods/{pod['id']}/metrics", POD_TYPES)
            assert response.status_code == 200, response.text
            assert MetricsCompositeResponse.from_dict(response.json()) is not None
            series = _series(response.json())
            devices = sorted(gpu for kind, gpu in series if kind == "GPU_UTILIZATION_PER_GPU")
            assert devices == [str(n) for n in range(len(devices))] and devices
            assert {gpu for kind, gpu in series if kind == "GPU_MEMORY_USAGE_BYTES_PER_GPU"} == set(devices)
            for stamp, value in series[("GPU_UTILIZATION", None)].items():
                assert isinstance(value, str)
                pod_utilisation[stamp].append(float(value))
                per_gpu = [float(series[("GPU_UTILIZATION_PER_GPU", gpu)][stamp]) for gpu in devices]
                assert float(value) == pytest.approx(sum(per_gpu) / len(per_gpu), abs=2e-3)
            for stamp, value in series[("GPU_MEMORY_USAGE_BYTES", None)].items():
                pod_memory[stamp] += int(value)
        assert set(pod_utilisation) == set(utilisation)  # samples exactly while the workload runs
        for stamp, value in utilisation.items():
            pods = pod_utilisation[stamp]  # equal GPU shares: the plain mean is the GPU-weighted one
            assert sum(pods) / len(pods) == pytest.approx(float(value), abs=2e-3)
            memory = int(whole[("GPU_MEMORY_USAGE_BYTES", None)][stamp])
            assert abs(pod_memory[stamp] - memory) <= len(pods)  # each pod's share, rounded down


def test_a_job_holding_eight_gpus_and_using_one_shows_it_per_gpu(api: httpx.Client) -> None:
    eight = [w for w in _workloads(api, filterBy="phase==Running") if w["allocatedResources"]["gpu"] == 8]
    hogs = []
    for workload in eight:
        path = f"/api/v1/workloads/{workload['id']}"
        mean = _series(_metrics(api, path + "/metrics", "GPU_UTILIZATION").json())[("GPU_UTILIZATION", None)]
        if mean and max(float(v) for v in mean.values()) < 15:  # one busy GPU of eight: ~11%
            hogs.append((path, workload["id"]))
    assert hogs, "the shared tenant runs a job that holds 8 GPUs and uses one"
    for path, workload_id in hogs:  # single-pod jobs and distributed ones: one busy GPU in all
        busy = []
        for pod in _pods(api, workload_id)["pods"]:
            pod_path = f"{path}/pods/{pod['id']}/metrics"
            series = _series(_metrics(api, pod_path, "GPU_UTILIZATION_PER_GPU").json())
            busy += [
                (pod["name"], gpu) for (_, gpu), values in series.items() if set(values.values()) != {"0"}
            ]
        assert len(busy) == 1 and busy[0][0].endswith("-0-0") and busy[0][1] == "0", busy


@pytest.mark.parametrize(
    ("params", "status", "details"),
    [
        ({"start": None}, 400, "query parameter 'start' is required"),
        ({"end": None}, 400, "query parameter 'end' is required"),
        ({"numberOfSamples": 1001}, 400, "'numberOfSamples' must be between 0 and 1000"),
        ({"metricType": "GPU_ALLOCATION"}, 400, "unknown value 'GPU_ALLOCATION'"),  # not a pod type
        ({"pod": UNKNOWN_ID}, 404, f"pod {UNKNOWN_ID}"),
        ({"workload": UNKNOWN_ID}, 404, f"workload {UNKNOWN_ID} does not exist"),
    ],
)
def test_pod_metrics_refuse_what_the_api_refuses(
    api: httpx.Client, params: dict[str, Any], status: int, details: str
) -> None:
    workload = _workloads(api, filterBy="phase==Running")[0]
    pod = _pods(api, workload["id"])["pods"][0]
    params = dict(params)  # parametrize shares the dict: pop from a copy
    workload_id, pod_id = params.pop("workload", workload["id"]), params.pop("pod", pod["id"])
    query = {"metricType": "GPU_UTILIZATION", **SPAN, **params}
    response = api.get(
        f"/api/v1/workloads/{workload_id}/pods/{pod_id}/metrics",
        params={k: v for k, v in query.items() if v is not None},
    )
    assert response.status_code == status
    assert Error.from_dict(response.json()) is not None and details in response.json()["details"]


def test_pod_metric_types_the_fake_does_not_simulate_are_a_207(api: httpx.Client) -> None:
    workload = _workloads(api, filterBy="phase==Running")[0]
    pod = _pods(api, workload["id"])["pods"][0]
    path = f"/api/v1/workloads/{workload['id']}/pods/{pod['id']}/metrics"
    partial = _metrics(api, path, "GPU_UTILIZATION,CPU_USAGE_CORES")
    assert partial.status_code == 207 and MetricsCompositeResponse.from_dict(partial.json()) is not None
    assert [m["type"] for m in partial.json()["measurements"]] == ["GPU_UTILIZATION"]


def _values(body: dict[str, Any], kind: str) -> dict[str, float]:
    [series] = [m for m in body["measurements"] if m["type"] == kind and not m.get("groups")]
    return {v["timestamp"]: float(v["value"]) for v in series["values"]}


def test_cluster_and_node_pool_metrics_are_sums_over_their_workloads(api: httpx.Client) -> None:
    clusters = api.get("/api/v1/clusters").json()
    projects = api.get("/api/v1/org-unit/projects", params={"limit": 500}).json()["projects"]
    pools = api.get("/api/v1/node-pools").json()["nodepools"]
    running = _workloads(api, filterBy="phase==Running")
    busy_clusters = 0
    for cluster in clusters:
        path = f"/api/v1/clusters/{cluster['uuid']}"
        response = _metrics(api, path + "/metrics", "ALLOCATED_GPU,WORKLOADS_COUNT,GPU_QUOTA")
        assert response.status_code == 200, response.text
        body = response.json()
        assert GroupedMetricsResponse.from_dict(body) is not None
        assert all(isinstance(v["value"], str) for m in body["measurements"] for v in m["values"])
        allocated, quota = _values(body, "ALLOCATED_GPU"), _values(body, "GPU_QUOTA")
        busy_clusters += any(allocated.values())
        by_project = [
            api.get(
                f"/api/v1/org-unit/projects/{p['id']}/metrics",
                params={"metricType": "GPU_ALLOCATION,GPU_QUOTA", **SPAN},
            ).json()
            for p in projects
            if p["clusterId"] == cluster["uuid"]
        ]
        for stamp, value in allocated.items():
            assert value == pytest.approx(
                sum(_values(b, "GPU_ALLOCATION").get(stamp, 0.0) for b in by_project)
            )
            assert quota[stamp] == pytest.approx(
                sum(_values(b, "GPU_QUOTA").get(stamp, 0.0) for b in by_project)
            )
        per_pool: dict[str, dict[str, float]] = {}
        for pool in (p for p in pools if p["clusterId"] == cluster["uuid"]):
            answer = _metrics(api, f"{path}/nodepools/{pool['name']}/metrics", "ALLOCATED_GPU")
            assert answer.status_code == 200 and MetricsResponse.from_dict(answer.json()) is not None
            per_pool[pool["name"]] = _values(answer.json(), "ALLOCATED_GPU")
        for stamp, value in allocated.items():
            assert value == pytest.approx(sum(series[stamp] for series in per_pool.values()))
        grouped = _metrics(api, path + "/metrics", "ALLOCATED_GPU", groupBy="Nodepool").json()
        assert GroupedMetricsResponse.from_dict(grouped) is not None
        for m in grouped["measurements"]:
            [group] = m["groups"]
            assert group["key"] == "Nodepool"
            assert {v["timestamp"]: float(v["value"]) for v in m["values"]} == per_pool[group["value"]]
        now = _metrics(
            api, path + "/metrics", "WORKLOADS_COUNT", start="2025-06-03T12:00:00Z", numberOfSamples=1
        )
        [count] = _values(now.json(), "WORKLOADS_COUNT").values()
        assert count == sum(1 for w in running if w["clusterId"] == cluster["uuid"])
    assert busy_clusters


@pytest.mark.parametrize(
    ("suffix", "params", "status", "details"),
    [
        ("/metrics", {"start": None}, 400, "query parameter 'start' is required"),
        ("/metrics", {"numberOfSamples": 1001}, 400, "'numberOfSamples' must be between 0 and 1000"),
        ("/metrics", {"metricType": "GPU_ALLOCATION"}, 400, "unknown value 'GPU_ALLOCATION'"),
        ("/metrics", {"groupBy": "User"}, 400, "'groupBy' must be one of"),
        ("/metrics", {"metricType": "GPU_QUOTA", "groupBy": "Project"}, 422, "cannot be grouped"),
        ("/nodepools/no-such-pool/metrics", {}, 404, "node pool no-such-pool does not exist"),
        ("/nodepools/default/metrics", {"end": None}, 400, "query parameter 'end' is required"),
    ],
)
def test_cluster_metrics_refuse_what_the_api_refuses(
    api: httpx.Client, suffix: str, params: dict[str, Any], status: int, details: str
) -> None:
    cluster = api.get("/api/v1/clusters").json()[0]
    query = {"metricType": "ALLOCATED_GPU", **SPAN, **params}
    response = api.get(
        f"/api/v1/clusters/{cluster['uuid']}{suffix}",
        params={k: v for k, v in query.items() if v is not None},
    )
    assert response.status_code == status, response.text
    assert Error.from_dict(response.json()) is not None and details in response.json()["details"]


def test_unknown_cluster_is_404_and_unsimulated_cluster_types_are_partial(api: httpx.Client) -> None:
    missing = _metrics(api, f"/api/v1/clusters/{UNKNOWN_ID}/metrics", "ALLOCATED_GPU")
    assert missing.status_code == 404 and Error.from_dict(missing.json()) is not None
    cluster = api.get("/api/v1/clusters").json()[0]
    partial = _metrics(api, f"/api/v1/clusters/{cluster['uuid']}/metrics", "ALLOCATED_GPU,TOTAL_GPU")
    assert partial.status_code == 207 and GroupedMetricsResponse.from_dict(partial.json()) is not None
    assert [m["type"] for m in partial.json()["measurements"]] == ["ALLOCATED_GPU"]
