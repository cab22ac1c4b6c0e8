"""Cluster and node-pool metrics of the fake (README 7; the spec's get_cluster_metrics and
get_nodepool_metrics), from the same truth as the workload and org-unit metrics.

``GET /api/v1/clusters/{clusterUuid}/metrics`` (``GroupedMetricsResponse``; optional ``groupBy``
Category|Nodepool|Project|Department and ``nodepoolName`` filter) and
``GET /api/v1/clusters/{clusterUuid}/nodepools/{nodepoolName}/metrics`` (``MetricsResponse``) take
the ``MetricsType`` enum plus the shared parameters (metric_query.py). Simulated:

    ALLOCATED_GPU    GPUs the running workloads of the cluster (pool) hold: the same running
                     spans as a project's GPU_ALLOCATION, so a cluster's is the sum of its projects'
    WORKLOADS_COUNT  running workloads
    GPU_QUOTA        the sum of the cluster's projects' quotas in force; projects declare their
                     quota on the cluster's default pool, so any other pool's quota is 0

Choices where the reference is silent:

* ``groupBy`` splits ALLOCATED_GPU and WORKLOADS_COUNT into one measurement per group value that
  has a workload in the cluster, with ``groups: [{key, value}]`` (Project and Department: the id,
  which a rename does not change; Nodepool: the name; Category: Train, Build, Deploy); GPU_QUOTA
  cannot be grouped: 422, as the spec allows ("grouping availability depends on the metric type");
* an unknown cluster, or a pool name the cluster does not have, is a 404; instants before the
  cluster existed have no sample; other types of the enum are left out (207).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runai_extract.fake.gpu_metrics import QuotaPlan
from runai_extract.fake.lifecycle import RUNNING
from runai_extract.fake.metric_query import (
    MetricsQuery,
    Params,
    answer,
    number,
    parse_metrics_query,
    served_instants,
)
from runai_extract.fake.orgunits import Cluster
from runai_extract.fake.problems import ApiProblem, bad_request
from runai_extract.fake.workload_render import CATEGORY, iso_ms
from runai_extract.fake.workloads import WorkloadModel

CLUSTER_METRIC_TYPES = frozenset(
    {
        "TOTAL_GPU_NODES", "GPU_UTILIZATION", "GPU_UTILIZATION_DISTRIBUTION", "GPU_MEMORY_UTILIZATION",
        "CPU_UTILIZATION", "CPU_MEMORY_UTILIZATION", "TOTAL_GPU", "GPU_QUOTA", "ALLOCATED_GPU",
        "UNALLOCATED_GPU", "AVG_WORKLOAD_WAIT_TIME", "WORKLOADS_COUNT",
    }
)  # fmt: skip
SIMULATED_CLUSTER: tuple[str, ...] = ("ALLOCATED_GPU", "WORKLOADS_COUNT", "GPU_QUOTA")
GROUPABLE = ("ALLOCATED_GPU", "WORKLOADS_COUNT")
GROUP_BY = ("Category", "Nodepool", "Project", "Department")
Floats = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class RunningSpans:
    """Every Running interval of every workload: [start, stop) ms, GPUs, and what it belongs to."""

    start: Floats
    stop: Floats
    gpus: Floats
    keys: Mapping[str, np.ndarray[Any, np.dtype[np.object_]]]  # "Cluster", *GROUP_BY -> per span

    def held(
        self, mask: np.ndarray[Any, np.dtype[np.bool_]], instants: Sequence[int]
    ) -> np.ndarray[Any, Any]:
        """instants x chosen spans: is the span running at the instant?"""
        at = np.asarray(instants, dtype=np.float64)[:, None]
        return (self.start[mask][None, :] <= at) & (at < self.stop[mask][None, :])


def running_spans(model: WorkloadModel) -> RunningSpans:
    rows: list[tuple[int, int, float, str, str, str, str, str]] = []
    for plan in model.plans:
        department = model.unit(plan.project_id).parent_id or ""
        category = CATEGORY[plan.type]
        for start, stop in plan.intervals(RUNNING, 2**62):
            rows.append((start, stop, plan.gpus, plan.cluster_id, plan.nodepool, plan.project_id,
                         department, category))  # fmt: skip
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    names = ("Cluster", "Nodepool", "Project", "Department", "Category")
    return RunningSpans(
        np.asarray(columns[0], dtype=np.float64),
        np.asarray(columns[1], dtype=np.float64),
        np.asarray(columns[2], dtype=np.float64),
        {name: np.asarray(column, dtype=object) for name, column in zip(names, columns[3:], strict=True)},
    )


class ClusterMetricHandlers:
    """Pure request -> (status, body) functions for the cluster and node-pool metrics routes."""

    def __init__(self, model: WorkloadModel, retention_ms: int, quotas: Mapping[str, QuotaPlan]) -> None:
        self.model = model
        self.retention_ms = retention_ms
        self.quotas = quotas
        self._spans: RunningSpans | None = None  # built on first use, like the workload profiles
        self._lock = threading.Lock()

    def cluster_metrics(self, params: Params, path: Mapping[str, str]) -> tuple[int, bytes]:
        cluster = self._cluster(path["cluster_uuid"])
        query = parse_metrics_query(params, CLUSTER_METRIC_TYPES)
        single = dict(params)
        group_by = single.get("groupBy") or None
        if group_by is not None and group_by not in GROUP_BY:
            raise bad_request(f"query parameter 'groupBy' must be one of {', '.join(GROUP_BY)}")
        if group_by is not None and "GPU_QUOTA" in query.types:
            raise ApiProblem(
                422, "Unprocessable entity", f"metric type GPU_QUOTA cannot be grouped by {group_by}"
            )
        pool = single.get("nodepoolName") or None
        return self._measure(cluster, pool, query, group_by)

    def nodepool_metrics(self, params: Params, path: Mapping[str, str]) -> tuple[int, bytes]:
        cluster = self._cluster(path["cluster_uuid"])
        name = path["nodepool_name"]
        known = [p.name for p in self.model.org.pools_on(cluster.uuid) if p.created_ms <= self.model.now_ms]
        if name not in known:
            details = f"node pool {name} does not exist in cluster {cluster.uuid}"
            raise ApiProblem(404, "Resource id not found.", details)
        return self._measure(cluster, name, parse_metrics_query(params, CLUSTER_METRIC_TYPES), None)

    def _measure(
        self, cluster: Cluster, pool: str | None, query: MetricsQuery, group_by: str | None
    ) -> tuple[int, bytes]:
        instants = [
            t for t in served_instants(query, self.model.now_ms, self.retention_ms) if t >= cluster.created_ms
        ]
        spans = self._running()
        mask = spans.keys["Cluster"] == cluster.uuid
        if pool is not None:
            mask &= spans.keys["Nodepool"] == pool
        measurements: list[dict[str, object]] = []
        for metric in query.types:
            series: list[tuple[str | None, list[float]]]
            if metric == "GPU_QUOTA":
                series = [(None, self._quota(cluster, pool, instants))]
            elif metric in GROUPABLE:
                series = self._grouped(spans, mask, metric, instants, group_by)
            else:
                continue
            for group, values in series:
                measurement: dict[str, object] = {
                    "type": metric,
                    "labels": None,
                    "values": [
                        {"value": number(v), "timestamp": iso_ms(t)}
                        for v, t in zip(values, instants, strict=True)
                    ],
                }
                if group is not None:
                    measurement["groups"] = [{"key": group_by, "value": group}]
                measurements.append(measurement)
        return answer(query, measurements, SIMULATED_CLUSTER)

    def _grouped(
        self,
        spans: RunningSpans,
        mask: np.ndarray[Any, np.dtype[np.bool_]],
        metric: str,
        instants: list[int],
        group_by: str | None,
    ) -> list[tuple[str | None, list[float]]]:
        """(group value or None, value per instant): GPUs held, or workloads running."""
        groups: list[str | None] = [None] if group_by is None else sorted(set(spans.keys[group_by][mask]))
        out: list[tuple[str | None, list[float]]] = []
        for group in groups:
            chosen = mask if group is None or group_by is None else mask & (spans.keys[group_by] == group)
            held = spans.held(chosen, instants)
            weights = spans.gpus[chosen] if metric == "ALLOCATED_GPU" else np.ones(int(chosen.sum()))
            out.append((group, [float(v) for v in (held * weights[None, :]).sum(axis=1)]))
        return out

    def _quota(self, cluster: Cluster, pool: str | None, instants: list[int]) -> list[float]:
        """The cluster's projects' quotas in force; all of it on the default pool, none elsewhere."""
        pools = self.model.org.pools_on(cluster.uuid)
        if pool is not None and (not pools or pool != pools[0].name):
            return [0.0] * len(instants)
        projects = self.model.org.projects_on(cluster.uuid)
        return [sum(self.quotas[p.id].at(t) for p in projects if p.created_ms <= t) for t in instants]

    def _cluster(self, uuid: str) -> Cluster:
        now = self.model.now_ms
        found = next((c for c in self.model.org.clusters if c.uuid == uuid and c.created_ms <= now), None)
        if found is None:
            raise ApiProblem(404, "Resource id not found.", f"cluster {uuid} does not exist")
        return found

    def _running(self) -> RunningSpans:
        with self._lock:
            if self._spans is None:
                self._spans = running_spans(self.model)
            return self._spans
