"""Consumption reports (README 7): POST -> 202 Pending, polled to Ready, a CSV file, DELETE -> 204.

Computed from the same truth as the workloads: the GPU-hours of Running time inside [start, end)
per project, department, cluster or node pool. Choices where the reference is silent:

* each ``GET .../reports/{id}`` moves a report one step, Pending -> Processing -> Ready, so a
  client that polls sees the whole lifecycle; ``.../file`` before Ready is a 409;
* the CSV's columns (the spec leaves them open) are the group's names and ids, then
  ``gpuAllocationHours`` and ``gpuUtilizationHours``, numbers with six decimals, one row per
  group that held GPUs in the period;
* ``FakeConfig.report_skew`` ((project name, factor), ...) multiplies a project's hours in every
  report: a control plane whose report disagrees with its own workloads, for the cross-check.
"""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from runai_extract.fake.filters import datetime_to_us, parse_instant
from runai_extract.fake.gpu_metrics import hour_pieces, profile_of, utilisation
from runai_extract.fake.lifecycle import HOUR_MS, RUNNING
from runai_extract.fake.problems import ApiProblem, bad_request
from runai_extract.fake.workload_render import iso_ms
from runai_extract.fake.workloads import WorkloadModel

GROUP_BY = ("Nodepool", "Project", "Department", "Cluster")
FILTER_FIELDS = ("projectName", "departmentName", "clusterId")
STATUSES = ("Pending", "Processing", "Ready")
CSV_COLUMNS = {
    "Project": ("projectId", "projectName", "departmentId", "departmentName", "clusterId"),
    "Department": ("departmentId", "departmentName", "clusterId"),
    "Cluster": ("clusterId", "clusterName"),
    "Nodepool": ("nodepoolName", "clusterId"),
}


@dataclass
class StoredReport:
    wire: dict[str, Any]
    start_ms: int
    end_ms: int
    polls: int = 0


class ReportStore:
    """The tenant's reports; thread-safe (the server renders on a pool)."""

    def __init__(self, model: WorkloadModel, skew: Mapping[str, float], created_by: str) -> None:
        self.model = model
        self.skew = dict(skew)
        self.created_by = created_by
        self._reports: dict[str, StoredReport] = {}
        self._lock = threading.Lock()

    def create(self, body: bytes) -> dict[str, Any]:
        request = _request_fields(body)
        start_ms = datetime_to_us(parse_instant(request["start"], "start")) // 1000
        end_ms = datetime_to_us(parse_instant(request["end"], "end")) // 1000
        if start_ms >= end_ms:
            raise bad_request("'start' must be before 'end'")
        now = iso_ms(self.model.now_ms)
        wire = {
            **request,
            "id": str(uuid.uuid4()),
            "createdAt": now,
            "createdBy": self.created_by,
            "tenantId": self.model.tenant_id,
            "status": "Pending",
            "statusUpdatedAt": now,
            "statusMessage": "Report in queue",
        }
        with self._lock:
            self._reports[wire["id"]] = StoredReport(wire, start_ms, end_ms)
        return dict(wire)

    def get(self, report_id: str) -> dict[str, Any]:
        with self._lock:
            report = self._find(report_id)
            if report.wire["status"] != "Ready":
                report.polls += 1
                report.wire["status"] = STATUSES[min(report.polls, len(STATUSES) - 1)]
                report.wire["statusUpdatedAt"] = iso_ms(self.model.now_ms)
                report.wire["statusMessage"] = "" if report.wire["status"] == "Ready" else "Processing"
            return dict(report.wire)

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(report.wire) for report in self._reports.values()]

    def delete(self, report_id: str) -> None:
        with self._lock:
            self._find(report_id)
            del self._reports[report_id]

    def csv(self, report_id: str) -> bytes:
        with self._lock:
            report = self._find(report_id)
            if report.wire["status"] != "Ready":
                raise ApiProblem(
                    409, "Report is not ready.", f"report {report_id} is {report.wire['status']}"
                )
            wire, start_ms, end_ms = dict(report.wire), report.start_ms, report.end_ms
        group_by = wire.get("groupBy") or "Project"
        rows = self._hours(group_by, start_ms, min(end_ms, self.model.now_ms), wire.get("filterBy") or [])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*CSV_COLUMNS[group_by], "gpuAllocationHours", "gpuUtilizationHours"])
        for key in sorted(rows):
            allocated, utilised = rows[key]
            writer.writerow([*key, f"{allocated:.6f}", f"{utilised:.6f}"])
        return out.getvalue().encode()

    def _find(self, report_id: str) -> StoredReport:
        report = self._reports.get(report_id)
        if report is None:
            raise ApiProblem(404, "Resource id not found.", f"report {report_id} does not exist")
        return report

    def _hours(
        self, group_by: str, start_ms: int, end_ms: int, filters: list[str]
    ) -> dict[tuple[str, ...], tuple[float, float]]:
        model = self.model
        totals: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for plan in model.plans:
            if plan.created_ms >= end_ms:
                continue
            project = model.unit(plan.project_id)
            department = model.unit(project.parent_id or "")
            names = {
                "projectId": project.id,
                "projectName": project.name_at(end_ms),
                "departmentId": department.id,
                "departmentName": department.name_at(end_ms),
                "clusterId": plan.cluster_id,
                "clusterName": model.org.cluster(plan.cluster_id).name,
                "nodepoolName": plan.nodepool,
            }
            if not all(names[f.split("==", 1)[0]] == f.split("==", 1)[1] for f in filters):
                continue
            key = tuple(names[column] for column in CSV_COLUMNS[group_by])
            factor = self.skew.get(names["projectName"], 1.0)
            profile = profile_of(model.seed, plan)
            for run_start, run_stop in plan.intervals(RUNNING, end_ms):
                for piece_start, piece_end in hour_pieces(max(run_start, start_ms), min(run_stop, end_ms)):
                    hours = (piece_end - piece_start) / HOUR_MS * plan.gpus * factor
                    totals[key][0] += hours
                    totals[key][1] += hours * utilisation(profile, piece_start) / 100.0
        return {key: (value[0], value[1]) for key, value in totals.items()}


def _request_fields(body: bytes) -> dict[str, Any]:
    """A ReportRequestFields body, checked as the API checks it (400 naming the field)."""
    try:
        request = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        raise bad_request("the request body is not valid JSON") from None
    if not isinstance(request, dict):
        raise bad_request("the request body must be a JSON object")
    for name in ("name", "start", "end"):
        if not isinstance(request.get(name), str) or not request[name]:
            raise bad_request(f"body field '{name}' is required", "Required parameter is missing")
    group_by = request.get("groupBy")
    if group_by is not None and group_by not in GROUP_BY:
        raise bad_request(f"body field 'groupBy' must be one of {', '.join(GROUP_BY)}")
    filters = request.get("filterBy") or []
    if not isinstance(filters, list):
        raise bad_request("body field 'filterBy' must be an array")
    for expression in filters:
        field, op, value = str(expression).partition("==")
        if field not in FILTER_FIELDS or not op or not value:
            raise bad_request(f"body field 'filterBy' has an invalid expression {expression!r}")
    keep = ("name", "description", "start", "end", "groupBy", "filterBy")
    return {key: request[key] for key in keep if key in request}
