"""The simulator's GPU-hours truth equals an independent recomputation from what the API serves:
phase histories (PhaseUpdate records), requested GPUs and the server's ``Date`` as "now"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from runai_extract.fake import FakeControlPlane

WORKLOADS = "/api/v1/workloads"


def _paged(api: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        body = api.get(path, params={**params, "offset": len(items), "limit": 50}).json()
        items.extend(body[key])
        if "next" not in body:
            return items


def _gpu_hours_from_api(api: httpx.Client) -> dict[tuple[date, str], float]:
    now = parsedate_to_datetime(api.get(WORKLOADS, params={"limit": 1}).headers["date"])
    hours: dict[tuple[date, str], float] = defaultdict(float)
    workloads = _paged(api, WORKLOADS, "workloads") + _paged(api, WORKLOADS, "workloads", deleted="true")
    for workload in workloads:
        gpus = float(workload["workloadRequestedResources"]["gpu"]["request"])
        records = _paged(api, f"{WORKLOADS}/{workload['id']}/history", "records")
        changes = sorted(
            (datetime.fromisoformat(r["meta"]["creationTimestamp"]), r["spec"]["phaseUpdate"]["phase"])
            for r in records
            if r["meta"]["type"] == "PhaseUpdate"
        )
        running = timedelta(0)
        for (start, phase), (end, _) in zip(changes, [*changes[1:], (now, "")], strict=True):
            if phase != "Running":
                continue
            running += end - start
            while start < end:
                midnight = datetime.combine(
                    start.date() + timedelta(days=1), datetime.min.time(), start.tzinfo
                )
                piece = min(end, midnight)
                hours[(start.date(), workload["projectId"])] += (piece - start) / timedelta(hours=1) * gpus
                start = piece
        assert workload["totalRunningTimeSeconds"] == int(running.total_seconds())
    return dict(hours)


def _assert_same(truth: dict[tuple[date, str], float], served: dict[tuple[date, str], float]) -> None:
    assert set(truth) == set(served) and truth
    for key, value in truth.items():
        assert served[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_gpu_hours_truth_matches_the_served_phase_histories(
    start_plane: Callable[..., FakeControlPlane], client_for: Callable[[FakeControlPlane], httpx.Client]
) -> None:
    plane = start_plane(days=2, events_per_day=250)
    api = client_for(plane)
    _assert_same(plane.simulator.gpu_hours_truth(), _gpu_hours_from_api(api))
    plane.simulator.advance(timedelta(hours=7, minutes=13))
    _assert_same(plane.simulator.gpu_hours_truth(), _gpu_hours_from_api(api))


def test_truth_rows_match_the_served_workloads(plane: FakeControlPlane, api: httpx.Client) -> None:
    served = {
        w["id"]: w
        for w in _paged(api, WORKLOADS, "workloads") + _paged(api, WORKLOADS, "workloads", deleted="true")
    }
    truth = plane.simulator.workload_truth()
    assert len(truth) == len(served)
    for row in truth:
        workload = served[str(row["workload_id"])]
        assert (row["name"], row["type"], row["category"], row["phase"]) == (
            workload["name"],
            workload["type"],
            workload["category"],
            workload["phase"],
        )
        assert (row["project_id"], row["department_id"], row["cluster_id"]) == (
            workload["projectId"],
            workload["departmentId"],
            workload["clusterId"],
        )
        for key, wire in (
            ("created_at", "createdAt"),
            ("completed_at", "completedAt"),
            ("deleted_at", "deletedAt"),
        ):
            value = row[key]
            assert (
                value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None
            ) == workload[wire]
        assert row["gpus"] == float(workload["workloadRequestedResources"]["gpu"]["request"])
