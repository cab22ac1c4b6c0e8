"""The metrics routes of the fake (README 4.6 and 7): workload, project and department metrics.

``GET /api/v1/workloads/{id}/metrics`` and ``GET /api/v1/org-unit/{projects|departments}/{id}/metrics``
take ``metricType`` (required, comma-joined), ``start`` and ``end`` (required) and
``numberOfSamples`` (0..1000, default 20) and answer ``{"measurements": [{type, labels, values}]}``
with values as strings, from the simulator's truth (gpu_metrics.py).

Choices where the reference is silent:

* samples are ``numberOfSamples`` instants spread evenly over [start, end], both ends included
  (one sample: at ``start``); an instant after ``sim_now``, before the metrics retention
  (``FakeConfig.metrics_retention_days``) or, for a workload, when it is not Running has no
  sample (a series may be empty, as Prometheus leaves it);
* the workload's GPU_UTILIZATION is its mean over its GPUs (``labels`` null), not one series per
  GPU (the pods' metrics route, not served, has those);
* a metric type of the enum that the fake does not simulate (CPU_*, NIM_*, ...) is left out and
  the answer is 207 Partial success; a name outside the enum is a 400.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runai_extract.fake.config import FakeConfig
from runai_extract.fake.filters import datetime_to_us, integer_param, parse_instant
from runai_extract.fake.gpu_metrics import (
    Profile,
    QuotaPlan,
    memory_bytes,
    profile_of,
    quota_plan,
    running_at,
    utilisation,
)
from runai_extract.fake.lifecycle import DAY_MS, RUNNING, WorkloadPlan
from runai_extract.fake.problems import ApiProblem, bad_request, missing_parameter
from runai_extract.fake.reports import ReportStore
from runai_extract.fake.workload_render import iso_ms
from runai_extract.fake.workloads import WorkloadModel

Params = Sequence[tuple[str, str]]

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
ORG_UNIT_METRIC_TYPES = frozenset(
    {
        "GPU_QUOTA", "CPU_QUOTA_MILLICORES", "CPU_MEMORY_QUOTA_MB", "GPU_ALLOCATION",
        "CPU_ALLOCATION_MILLICORES", "CPU_MEMORY_ALLOCATION_MB", "GPU_MEMORY_UTILIZATION",
    }
)  # fmt: skip
SIMULATED_WORKLOAD: tuple[str, ...] = (
    "GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "GPU_ALLOCATION", "POD_COUNT", "RUNNING_POD_COUNT",
)  # fmt: skip
SIMULATED_ORG_UNIT = ("GPU_QUOTA", "GPU_ALLOCATION")
MAX_SAMPLES = 1000
DEFAULT_SAMPLES = 20


@dataclass(frozen=True)
class MetricsQuery:
    types: tuple[str, ...]
    start_ms: int
    end_ms: int
    samples: int

    def instants(self) -> list[int]:
        """``samples`` instants evenly over [start, end], both ends included."""
        if self.samples == 0:
            return []
        if self.samples == 1:
            return [self.start_ms]
        span = self.end_ms - self.start_ms
        return [self.start_ms + span * i // (self.samples - 1) for i in range(self.samples)]


def parse_metrics_query(params: Params, allowed: frozenset[str]) -> MetricsQuery:
    """Validate the metrics parameters the way the API does: 400 with a named parameter."""
    single = dict(params)
    raw_types = [value for key, value in params if key == "metricType"]
    if not raw_types or not any(raw_types):
        raise missing_parameter("metricType")
    types = tuple(dict.fromkeys(t.strip() for raw in raw_types for t in raw.split(",") if t.strip()))
    unknown = [t for t in types if t not in allowed]
    if unknown:
        raise bad_request(f"query parameter 'metricType' has an unknown value {unknown[0]!r}")
    for name in ("start", "end"):
        if not single.get(name):
            raise missing_parameter(name)
    start = datetime_to_us(parse_instant(single["start"], "start")) // 1000
    end = datetime_to_us(parse_instant(single["end"], "end")) // 1000
    if start > end:
        raise bad_request("query parameter 'start' must not be after 'end'")
    samples = integer_param(single, "numberOfSamples", DEFAULT_SAMPLES, minimum=0, maximum=MAX_SAMPLES)
    return MetricsQuery(types, start, end, samples)


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
        return _answer(query, measurements, SIMULATED_WORKLOAD)

    def _workload_values(self, plan: WorkloadPlan, kind: str, instants: list[int]) -> list[dict[str, str]]:
        profile = self._profile(plan)
        values: list[dict[str, str]] = []
        for t in instants:
            if kind == "GPU_UTILIZATION":
                value = _number(utilisation(profile, t))
            elif kind == "GPU_MEMORY_USAGE_BYTES":
                value = str(memory_bytes(profile, plan.gpus, t))
            elif kind == "GPU_ALLOCATION":
                value = _number(plan.gpus)
            else:  # POD_COUNT, RUNNING_POD_COUNT: every pod runs while the workload does
                value = str(plan.pods)
            values.append({"value": value, "timestamp": iso_ms(t)})
        return values

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
                values = [_number(quota.at(t)) for t in instants]
            elif metric == "GPU_ALLOCATION":
                values = [_number(v) for v in self.allocation(unit.id, instants)]
            else:
                continue
            series = [{"value": v, "timestamp": iso_ms(t)} for v, t in zip(values, instants, strict=True)]
            measurements.append({"type": metric, "labels": None, "values": series})
        return _answer(query, measurements, SIMULATED_ORG_UNIT)

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
        now = self.model.now_ms
        oldest = now - self.retention_ms
        return [t for t in query.instants() if oldest <= t <= now]


def _answer(
    query: MetricsQuery, measurements: Sequence[Mapping[str, object]], simulated: tuple[str, ...]
) -> tuple[int, bytes]:
    partial = any(kind not in simulated for kind in query.types)
    return (207 if partial else 200), orjson.dumps({"measurements": measurements})


def _number(value: float) -> str:
    """A metric value as the API writes it: '2', '0.5', '91.25'."""
    return str(int(value)) if float(value).is_integer() else repr(round(float(value), 6))


# -- routes -----------------------------------------------------------------------------------------
Answer = Callable[[Params, Mapping[str, str], bytes], tuple[int, bytes, str]]
JSON = "application/json"


class AnsweringServer(Protocol):
    async def respond(self, request: Request, answer: Answer) -> Response: ...


def gpu_routes(server: AnsweringServer, model: WorkloadModel, config: FakeConfig) -> list[Route]:
    """Metrics of workloads and org units, and the consumption reports, over one tenant."""
    handlers = MetricHandlers(model, config.metrics_retention_days)
    reports = ReportStore(model, dict(config.report_skew), config.client_id)

    def json_get(render: Callable[[Params, Mapping[str, str]], tuple[int, bytes]]) -> Answer:
        def answer(params: Params, path: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
            status, payload = render(params, path)
            return status, payload, JSON

        return answer

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
        route("/api/v1/org-unit/projects/{project_id}/metrics", json_get(handlers.project_metrics)),
        route("/api/v1/org-unit/departments/{department_id}/metrics", json_get(handlers.department_metrics)),
        route(reports_path, create, "POST"),
        route(reports_path, listing),
        route(reports_path + "/availability", available),
        route(reports_path + "/{report_id}", one),
        route(reports_path + "/{report_id}", delete, "DELETE"),
        route(reports_path + "/{report_id}/file", download),
    ]
