"""The metrics routes of the fake (README 4.6 and 7): workload, pod, project and department metrics.

``GET /api/v1/workloads/{id}/metrics``, ``/api/v1/workloads/{id}/pods/{podId}/metrics`` and
``GET /api/v1/org-unit/{projects|departments}/{id}/metrics`` take ``metricType`` (required,
comma-joined), ``start`` and ``end`` (required) and ``numberOfSamples`` (0..1000, default 20) and
answer ``{"measurements": [{type, labels, values}]}`` with values as strings, from the
simulator's truth (gpu_metrics.py). Cluster and node-pool metrics are in cluster_metrics.py.

Choices where the reference is silent:

* samples are ``numberOfSamples`` instants spread evenly over [start, end], both ends included
  (one sample: at ``start``); an instant after ``sim_now``, before the metrics retention
  (``FakeConfig.metrics_retention_days``) or, for a workload or pod, when it is not Running has no
  sample (a series may be empty, as Prometheus leaves it);
* the workload's GPU_UTILIZATION is its mean over its GPUs (``labels`` null); a pod's is the mean
  over its own GPUs, and its ``*_PER_GPU`` types have one series per GPU (``labels`` ``{"gpu": "0"}``),
  so the pods' GPU-weighted mean is the workload's value; a pod's memory is its share of the
  workload's;
* a metric type of the enum that the fake does not simulate (CPU_*, NIM_*, ...) is left out and
  the answer is 207 Partial success; a name outside the enum is a 400.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runai_extract.fake.cluster_metrics import ClusterMetricHandlers
from runai_extract.fake.config import FakeConfig
from runai_extract.fake.gpu_metrics import (
    Profile,
    QuotaPlan,
    device_utilisation,
    memory_bytes,
    profile_of,
    quota_plan,
    running_at,
    utilisation,
)
from runai_extract.fake.lifecycle import DAY_MS, RUNNING, WorkloadPlan
from runai_extract.fake.metric_query import (
    MetricsQuery,
    Params,
    answer,
    number,
    parse_metrics_query,
    served_instants,
)
from runai_extract.fake.pods import pod_devices, pod_gpus, pod_index
from runai_extract.fake.problems import ApiProblem
from runai_extract.fake.reports import ReportStore
from runai_extract.fake.workload_render import iso_ms
from runai_extract.fake.workloads import WorkloadModel

WORKLOAD_METRIC_TYPES = frozenset(
    {
        "GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "GPU_MEMORY_REQUEST_BYTES", "CPU_USAGE_CORES",
        "CPU_REQUEST_CORES", "CPU_LIMIT_CORES", "CPU_MEMORY_USAGE_BYTES", "CPU_MEMORY_REQUEST_BYTES",
        "CPU_MEMORY_LIMIT_BYTES", "POD_COUNT", "RUNNING_POD_COUNT", "GPU_ALLOCATION",
        "NVLINK_BANDWIDTH_TOTAL", "NIM_NUM_REQUESTS_RUNNING", "NIM_NUM_REQUESTS_WAITING",
        "NIM_NUM_REQUEST_MAX", "NIM_REQUEST_SUCCESS_TOTAL", "NIM_REQUEST_FAILURE_TOTAL",
        "NIM_GPU_CACHE_USAGE_PERC", "NIM_TIME_TO_FIRST_TOKEN_SECONDS", "NIM_E2E_REQUEST_LATENCY_SECONDS",
        "NIM_TIME_PER_OUTPUT_TOKEN_SECONDS",
    }
)  # fmt: skip
POD_METRIC_TYPES = frozenset(
    {
        "GPU_UTILIZATION_PER_GPU", "GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES_PER_GPU",
        "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES", "CPU_MEMORY_USAGE_BYTES",
        "GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU", "GPU_SM_ACTIVITY_PER_GPU", "GPU_SM_OCCUPANCY_PER_GPU",
        "GPU_TENSOR_ACTIVITY_PER_GPU", "GPU_FP64_ENGINE_ACTIVITY_PER_GPU",
        "GPU_FP32_ENGINE_ACTIVITY_PER_GPU", "GPU_FP16_ENGINE_ACTIVITY_PER_GPU",
        "GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU", "GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU",
        "GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU", "GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU",
        "GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU", "GPU_SWAP_MEMORY_BYTES_PER_GPU",
        "NIM_NUM_REQUESTS_RUNNING", "NIM_NUM_REQUESTS_WAITING", "NIM_NUM_REQUEST_MAX",
        "NIM_REQUEST_SUCCESS_TOTAL", "NIM_REQUEST_FAILURE_TOTAL", "NIM_GPU_CACHE_USAGE_PERC",
        "NIM_TIME_TO_FIRST_TOKEN_SECONDS", "NIM_E2E_REQUEST_LATENCY_SECONDS",
        "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES", "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES",
        "NVLINK_BANDWIDTH_TOTAL", "NVLINK_BANDWIDTH_TOTAL_PER_GPU",
    }
)  # fmt: skip
ORG_UNIT_METRIC_TYPES = frozenset(
    {
        "GPU_QUOTA", "CPU_QUOTA_MILLICORES", "CPU_MEMORY_QUOTA_MB", "GPU_ALLOCATION",
        "CPU_ALLOCATION_MILLICORES", "CPU_MEMORY_ALLOCATION_MB", "GPU_MEMORY_UTILIZATION",
    }
)  # fmt: skip
SIMULATED_WORKLOAD: tuple[str, ...] = (
    "GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "GPU_ALLOCATION", "POD_COUNT", "RUNNING_POD_COUNT",
)  # fmt: skip
SIMULATED_POD: tuple[str, ...] = (
    "GPU_UTILIZATION", "GPU_UTILIZATION_PER_GPU", "GPU_MEMORY_USAGE_BYTES", "GPU_MEMORY_USAGE_BYTES_PER_GPU",
)  # fmt: skip
SIMULATED_ORG_UNIT = ("GPU_QUOTA", "GPU_ALLOCATION")


class MetricHandlers:
    """Pure request -> (status, body) functions over one :class:`WorkloadModel`."""

    def __init__(self, model: WorkloadModel, retention_days: int) -> None:
        self.model = model
        self.retention_ms = retention_days * DAY_MS
        span = (model.plans[0].created_ms if model.plans else 0, model.now_ms + DAY_MS)
        units = [*model.org.departments, *model.org.projects]
        self.quotas: dict[str, QuotaPlan] = {u.id: quota_plan(model.seed, u, span) for u in units}
        # Built on first use: a big tenant that is never asked for metrics pays nothing at start.
        self._profiles: dict[str, Profile] = {}
        self._spans: dict[str, np.ndarray[Any, np.dtype[np.float64]]] | None = None
        self._lock = threading.Lock()

    def _profile(self, plan: WorkloadPlan) -> Profile:
        with self._lock:
            if plan.id not in self._profiles:
                self._profiles[plan.id] = profile_of(self.model.seed, plan)
            return self._profiles[plan.id]

    def _unit_spans(self) -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
        """Running spans (start, stop, GPUs) per project and per department, for allocation sums."""
        with self._lock:
            if self._spans is None:
                spans: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
                for plan in self.model.plans:
                    department = self.model.unit(plan.project_id).parent_id or ""
                    for start, stop in plan.intervals(RUNNING, 2**62):
                        for unit in (plan.project_id, department):
                            spans[unit].append((start, stop, plan.gpus))
                self._spans = {unit: np.array(rows, dtype=np.float64) for unit, rows in spans.items()}
            return self._spans

    # -- workloads ----------------------------------------------------------------------------------
    def workload_metrics(self, params: Params, path: Mapping[str, str]) -> tuple[int, bytes]:
        plan = self.model.find(path["workload_id"])
        if plan is None:
            raise ApiProblem(404, "Resource id not found.", f"workload {path['workload_id']} does not exist")
        query = parse_metrics_query(params, WORKLOAD_METRIC_TYPES)
        instants = [t for t in self._served(query) if running_at(plan, t)]
        measurements = [
            {"type": kind, "labels": None, "values": self._workload_values(plan, kind, instants)}
            for kind in query.types
            if kind in SIMULATED_WORKLOAD
        ]
        return answer(query, measurements, SIMULATED_WORKLOAD)

    def _workload_values(self, plan: WorkloadPlan, kind: str, instants: list[int]) -> list[dict[str, str]]:
        profile = self._profile(plan)
        values: list[dict[str, str]] = []
        for t in instants:
            if kind == "GPU_UTILIZATION":
                value = number(utilisation(profile, t))
            elif kind == "GPU_MEMORY_USAGE_BYTES":
                value = str(memory_bytes(profile, plan.gpus, t))
            elif kind == "GPU_ALLOCATION":
                value = number(plan.gpus)
            else:  # POD_COUNT, RUNNING_POD_COUNT: every pod runs while the workload does
                value = str(plan.pods)
            values.append({"value": value, "timestamp": iso_ms(t)})
        return values

    # -- pods ---------------------------------------------------------------------------------------
    def pod_metrics(self, params: Params, path: Mapping[str, str]) -> tuple[int, bytes]:
        plan = self.model.find(path["workload_id"])
        if plan is None:
            raise ApiProblem(404, "Resource id not found.", f"workload {path['workload_id']} does not exist")
        index = pod_index(plan, path["pod_id"], self.model.now_ms)
        if index is None:
            details = f"pod {path['pod_id']} of workload {plan.id} does not exist"
            raise ApiProblem(404, "Resource id not found.", details)
        query = parse_metrics_query(params, POD_METRIC_TYPES)
        instants = [t for t in self._served(query) if running_at(plan, t)]
        measurements = [
            measurement
            for kind in query.types
            if kind in SIMULATED_POD
            for measurement in self._pod_series(plan, index, kind, instants)
        ]
        return answer(query, measurements, SIMULATED_POD)

    def _pod_series(
        self, plan: WorkloadPlan, index: int, kind: str, instants: list[int]
    ) -> list[dict[str, object]]:
        """One series of the pod's mean (``labels`` null), or one per GPU for ``*_PER_GPU``."""
        profile = self._profile(plan)
        per_gpu = kind.endswith("_PER_GPU")
        rows = [pod_sample(profile, plan, index, kind, t) for t in instants]
        stamps = [iso_ms(t) for t in instants]
        return [
            {
                "type": kind,
                "labels": {"gpu": str(gpu)} if per_gpu else None,
                "values": [
                    {"value": row[gpu], "timestamp": ts} for row, ts in zip(rows, stamps, strict=True)
                ],
            }
            for gpu in range(pod_devices(plan) if per_gpu else 1)
        ]

    # -- org units ----------------------------------------------------------------------------------
    def project_metrics(self, params: Params, path: Mapping[str, str]) -> tuple[int, bytes]:
        return self._unit_metrics(params, path["project_id"], "project")

    def department_metrics(self, params: Params, path: Mapping[str, str]) -> tuple[int, bytes]:
        return self._unit_metrics(params, path["department_id"], "department")

    def _unit_metrics(self, params: Params, unit_id: str, kind: str) -> tuple[int, bytes]:
        org = self.model.org
        units = org.departments if kind == "department" else org.projects
        unit = next((u for u in units if u.id == unit_id and u.created_ms <= self.model.now_ms), None)
        if unit is None:
            raise ApiProblem(404, "Resource id not found.", f"{kind} {unit_id} does not exist")
        query = parse_metrics_query(params, ORG_UNIT_METRIC_TYPES)
        instants = [t for t in self._served(query) if t >= unit.created_ms]
        measurements = []
        for metric in query.types:
            if metric == "GPU_QUOTA":
                quota = self.quotas[unit.id]
                values = [number(quota.at(t)) for t in instants]
            elif metric == "GPU_ALLOCATION":
                values = [number(v) for v in self.allocation(unit.id, instants)]
            else:
                continue
            series = [{"value": v, "timestamp": iso_ms(t)} for v, t in zip(values, instants, strict=True)]
            measurements.append({"type": metric, "labels": None, "values": series})
        return answer(query, measurements, SIMULATED_ORG_UNIT)

    def allocation(self, unit_id: str, instants: Sequence[int]) -> list[float]:
        """GPUs the unit's workloads hold at each instant."""
        spans = self._unit_spans().get(unit_id)
        if spans is None or not instants:
            return [0.0] * len(instants)
        at = np.asarray(instants, dtype=np.float64)[:, None]
        held = (spans[None, :, 0] <= at) & (at < spans[None, :, 1])
        return [float(v) for v in (held * spans[None, :, 2]).sum(axis=1)]

    def _served(self, query: MetricsQuery) -> list[int]:
        """The query's instants that the control plane still has: not future, not expired."""
        return served_instants(query, self.model.now_ms, self.retention_ms)


def pod_sample(profile: Profile, plan: WorkloadPlan, index: int, kind: str, t_ms: int) -> list[str]:
    """Pod ``index``'s value at ``t_ms``: its mean, or one value per GPU for a ``*_PER_GPU`` type.

    Utilisation: the pod's slice of the workload's GPUs (device_utilisation), so the pods'
    GPU-weighted mean is the workload's. Memory: the pod's GPU share of the workload's, split
    evenly over its GPUs.
    """
    devices = pod_devices(plan)
    per_gpu = kind.endswith("_PER_GPU")
    if kind.startswith("GPU_UTILIZATION"):
        every = device_utilisation(profile, devices * plan.pods, t_ms)
        mine = every[index * devices : (index + 1) * devices]
        return [number(round(v, 3)) for v in mine] if per_gpu else [number(round(sum(mine) / devices, 3))]
    held = int(memory_bytes(profile, plan.gpus, t_ms) * pod_gpus(plan) / plan.gpus)
    return [str(held // devices)] * devices if per_gpu else [str(held)]


# -- routes -----------------------------------------------------------------------------------------
Answer = Callable[[Params, Mapping[str, str], bytes], tuple[int, bytes, str]]
JSON = "application/json"


class AnsweringServer(Protocol):
    async def respond(self, request: Request, answer: Answer) -> Response: ...


def gpu_routes(server: AnsweringServer, model: WorkloadModel, config: FakeConfig) -> list[Route]:
    """Metrics of workloads, pods, org units, clusters and node pools, and the consumption reports."""
    handlers = MetricHandlers(model, config.metrics_retention_days)
    clusters = ClusterMetricHandlers(model, handlers.retention_ms, handlers.quotas)
    reports = ReportStore(model, dict(config.report_skew), config.client_id)

    def json_get(render: Callable[[Params, Mapping[str, str]], tuple[int, bytes]]) -> Answer:
        def reply(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
            status, payload = render(params, path)
            return status, payload, JSON

        return reply

    def create(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        return 202, orjson.dumps(reports.create(body)), JSON

    def listing(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        return 200, orjson.dumps({"reports": reports.listing()}), JSON

    def one(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        return 200, orjson.dumps(reports.get(path["report_id"])), JSON

    def delete(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        reports.delete(path["report_id"])
        return 204, b"", JSON

    def download(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        return 200, reports.csv(path["report_id"]), "text/csv; charset=utf-8"

    def available(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        return 200, b'{"isAvailable":true}', JSON

    def route(path: str, answer: Answer, method: str = "GET") -> Route:
        async def endpoint(request: Request) -> Response:
            return await server.respond(request, answer)

        return Route(path, endpoint, methods=[method])

    reports_path = "/api/v1/org-unit/reports"
    return [
        route("/api/v1/workloads/{workload_id}/metrics", json_get(handlers.workload_metrics)),
        route("/api/v1/workloads/{workload_id}/pods/{pod_id}/metrics", json_get(handlers.pod_metrics)),
        route("/api/v1/org-unit/projects/{project_id}/metrics", json_get(handlers.project_metrics)),
        route("/api/v1/org-unit/departments/{department_id}/metrics", json_get(handlers.department_metrics)),
        route("/api/v1/clusters/{cluster_uuid}/metrics", json_get(clusters.cluster_metrics)),
        route(
            "/api/v1/clusters/{cluster_uuid}/nodepools/{nodepool_name}/metrics",
            json_get(clusters.nodepool_metrics),
        ),
        route(reports_path, create, "POST"),
        route(reports_path, listing),
        route(reports_path + "/availability", available),
        route(reports_path + "/{report_id}", one),
        route(reports_path + "/{report_id}", delete, "DELETE"),
        route(reports_path + "/{report_id}/file", download),
    ]
