"""The GPU-hours views on a hand-made lake whose answer is worked out by hand below.

A  project p1, 2 GPUs: Running 19th 22:00 -> 20th 02:00, seen running at 23:00 (observed)
B  project p1, 0.5 GPU requested: Running 20th 03:00 -> 07:00, never seen running (requested)
C  project p2, 1 GPU: Running since 20th 08:00, seen at 09:00; the last sync ran at 12:00
p1 is renamed alpha -> alpha-2 at 20th 01:00 (its updatedAt, seen by the sync at 06:00)

19th  p1 alpha    22:00-24:00 x 2      = 4.0 (observed)
20th  p1 alpha    00:00-01:00 x 2      = 2.0 (observed)
20th  p1 alpha-2  01:00-02:00 x 2 + 03:00-07:00 x 0.5 = 2.0 observed + 2.0 requested
20th  p2 beta     08:00-12:00 x 1      = 4.0 (observed; still running, counted to the last sync)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runai_extract.ledger.run_records import SliceResult, record_run
from tests.warehouse.fixtures import write_parquet
from transforms.orgunits import ORG_KINDS, normalise_org
from transforms.records import to_table
from transforms.storage import Lake
from transforms.usage_schemas import WORKLOAD_HISTORY, WORKLOAD_SNAPSHOTS
from transforms.workloads import normalise_history, normalise_workloads
from warehouse.build import build_views


def _t(day: int, hour: int) -> datetime:
    return (
        datetime(2026, 11, day, hour, 0, tzinfo=UTC)
        if hour < 24
        else datetime(2026, 11, day + 1, 0, 0, tzinfo=UTC)
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _workload(
    wid: str, project: str, name: str, phase: str, requested: float, allocated: float
) -> dict[str, Any]:
    return {
        "id": wid,
        "name": f"job-{wid}",
        "type": "Training",
        "phase": phase,
        "projectId": project,
        "projectName": name,
        "departmentId": "d1",
        "departmentName": "research",
        "clusterId": "c1",
        "submittedBy": "ann@example.com",
        "createdAt": _iso(_t(19, 21)),
        "workloadRequestedResources": {"gpu": {"request": requested}},
        "allocatedResources": {"gpu": allocated},
    }


def _phases(*changes: tuple[datetime, str]) -> list[dict[str, Any]]:
    return [
        {
            "meta": {"creationTimestamp": _iso(at), "type": "PhaseUpdate"},
            "spec": {"phaseUpdate": {"phase": phase, "phaseMessage": ""}},
        }
        for at, phase in changes
    ]


def _write(lake: Lake, path: str, rows: list[dict[str, Any]], schema: Any) -> None:
    write_parquet(lake, path, to_table(rows, schema).to_pylist(), schema)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    lake = Lake(str(tmp_path / "lake"))
    seen: list[tuple[datetime, list[dict[str, Any]]]] = [
        (_t(19, 23), [_workload("A", "p1", "alpha", "Running", 2, 2)]),
        (_t(20, 9), [_workload("C", "p2", "beta", "Running", 1, 1)]),
        (
            _t(20, 10),
            [
                _workload("A", "p1", "alpha", "Completed", 2, 0),
                _workload("B", "p1", "alpha-2", "Completed", 0.5, 0),
            ],
        ),
    ]
    for n, (at, items) in enumerate(seen):
        rows = normalise_workloads(items, observed_at=at, run_id=f"r{n}", ingested_at=at).rows
        _write(
            lake, f"workload_snapshots/observed_date={at.date()}/part-r{n}.parquet", rows, WORKLOAD_SNAPSHOTS
        )
    histories = {
        "A": _phases((_t(19, 21), "Pending"), (_t(19, 22), "Running"), (_t(20, 2), "Completed")),
        "B": _phases(
            (_t(20, 3), "Running"), (_t(19, 23), "Pending"), (_t(20, 7), "Completed")
        ),  # unsorted, as the API may
        "C": _phases((_t(20, 7), "Pending"), (_t(20, 8), "Running")),
    }
    history = [
        row
        for wid, records in histories.items()
        for row in normalise_history(
            wid, records, observed_at=_t(20, 10), run_id="r9", ingested_at=_t(20, 10)
        ).rows
    ]
    _write(lake, "workload_history/observed_date=2026-11-20/part-r9.parquet", history, WORKLOAD_HISTORY)
    projects = ORG_KINDS["projects"]
    for at, name, updated in ((_t(19, 20), "alpha", _t(1, 0)), (_t(20, 6), "alpha-2", _t(20, 1))):
        item = {
            "id": "p1",
            "name": name,
            "parentId": "d1",
            "createdAt": _iso(_t(1, 0)),
            "updatedAt": _iso(updated),
        }
        rows = normalise_org(projects, [item], observed_at=at, run_id="o", ingested_at=at).rows
        _write(lake, f"org/projects/observed_date={at.date()}/part-{name}.parquet", rows, projects.schema)
    last_sync = SliceResult(_t(20, 11), _t(20, 12), status="committed")
    record_run(lake, "w-last", "sync", last_sync, _t(20, 12), stream="workloads")
    path = tmp_path / "warehouse.duckdb"
    build_views(path, lake)
    return path


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_daily_gpu_hours_split_at_midnight_and_at_the_rename(warehouse: Path) -> None:
    got = _query(
        warehouse,
        "select usage_date, project_id, project_name, gpu_hours, coalesce(gpu_hours_observed, 0), "
        "coalesce(gpu_hours_requested, 0) from usage_gpu_hours_daily order by 1, 2, 3",
    )
    assert got == [
        (date(2026, 11, 19), "p1", "alpha", pytest.approx(4.0), pytest.approx(4.0), 0),
        (date(2026, 11, 20), "p1", "alpha", pytest.approx(2.0), pytest.approx(2.0), 0),
        (date(2026, 11, 20), "p1", "alpha-2", pytest.approx(4.0), pytest.approx(2.0), pytest.approx(2.0)),
        (date(2026, 11, 20), "p2", "beta", pytest.approx(4.0), pytest.approx(4.0), 0),
    ]


def test_intervals_say_where_the_gpus_come_from(warehouse: Path) -> None:
    got = _query(
        warehouse,
        "select workload_id, gpus, gpu_source, still_running from workload_gpu_intervals order by 1",
    )
    assert got == [
        ("A", 2.0, "observed", False),
        ("B", 0.5, "requested", False),
        ("C", 1.0, "observed", True),
    ]


def test_monthly_and_top_consumers_add_up(warehouse: Path) -> None:
    assert _query(
        warehouse, "select usage_month, round(sum(gpu_hours), 6) from usage_gpu_hours_monthly group by 1"
    ) == [(date(2026, 11, 1), 14.0)]
    top = _query(
        warehouse,
        "select consumer_id, rank, round(share, 6) from usage_top_consumers where consumer_kind = 'project' order by rank",
    )
    assert top == [("p1", 1, round(10 / 14, 6)), ("p2", 2, round(4 / 14, 6))]


def test_phase_history_is_ordered_by_time_not_by_arrival(warehouse: Path) -> None:
    got = _query(
        warehouse,
        "select phase, started_at, ended_at from workload_phase_history where workload_id = 'B' order by started_at",
    )
    assert got == [
        ("Pending", _t(19, 23), _t(20, 3)),
        ("Running", _t(20, 3), _t(20, 7)),
        ("Completed", _t(20, 7), None),
    ]
