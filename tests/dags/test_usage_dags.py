"""The usage DAGs: shaped like the audit one, and a real dag.test() run against the fake tenant."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest

from runai_extract.fake import FakeControlPlane
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAKE_NOW, fake_config
from tests.usage.conftest import GPU_HOURS_REL
from warehouse.query import run_query


@pytest.mark.parametrize(
    ("dag_id", "cron", "asset"),
    [
        ("runai_workloads", "5 * * * *", "runai_ledger_workloads"),
        ("runai_org_units", "0 1 * * *", "runai_ledger_org_units"),
    ],
)
def test_usage_dags_are_scheduled_and_guarded_like_the_audit_dag(
    dagbag: Any, dag_id: str, cron: str, asset: str
) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags[dag_id]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == cron
    assert dag.max_active_runs == 1 and dag.catchup is False
    sync = dag.get_task("sync")
    assert sync.pool == "runai_api" and sync.retries >= 1
    assert [o.name for o in sync.outlets] == [asset]


def test_org_then_workload_runs_fill_the_usage_views(
    dagbag: Any,
    airflow_db: None,
    start_fake: Callable[..., FakeControlPlane],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = start_fake(fake_config(days=1, events_per_day=300, seed=5))
    home = tmp_path / "ledger"
    connection = {
        "conn_type": "http",
        "host": fake.base_url,
        "login": CLIENT_ID,
        "password": CLIENT_SECRET,
        "extra": {"ledger_home": str(home)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_RUNAI_DEFAULT", json.dumps(connection))
    logical = pendulum.instance(FAKE_NOW + timedelta(minutes=10))
    assert dagbag.dags["runai_org_units"].test(logical_date=logical).state == "success"
    run = dagbag.dags["runai_workloads"].test(logical_date=logical)
    assert run.state == "success"
    summary = run.get_task_instance("sync").xcom_pull(task_ids="sync")
    assert summary["rows_new"] == len(fake.simulator.workload_truth()) > 0
    assert CLIENT_SECRET not in json.dumps(summary)

    hours = run_query(
        home / "warehouse.duckdb", "select sum(gpu_hours) as h from usage_gpu_hours_daily"
    ).to_pylist()
    assert hours[0]["h"] == pytest.approx(sum(fake.simulator.gpu_hours_truth().values()), rel=GPU_HOURS_REL)
    rerun = dagbag.dags["runai_workloads"].test(logical_date=logical)
    assert rerun.get_task_instance("sync").xcom_pull(task_ids="sync")["rows_new"] == 0


@pytest.mark.parametrize(
    ("dag_id", "cron", "asset"),
    [
        ("runai_gpu_metrics", "20 * * * *", "runai_ledger_gpu_metrics"),
        ("runai_quota_series", "30 1 * * *", "runai_ledger_quota_series"),
    ],
)
def test_gpu_metric_dags_are_stream_dags(dagbag: Any, dag_id: str, cron: str, asset: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.timetable.expression == cron and dag.max_active_runs == 1
    assert [o.name for o in dag.get_task("sync").outlets] == [asset]


def test_monthly_crosscheck_dag_runs_after_the_month_closes(dagbag: Any) -> None:
    dag = dagbag.dags["runai_usage_crosscheck_monthly"]
    assert dag.timetable.expression == "0 7 2 * *" and dag.catchup is False
    assert dag.get_task("crosscheck_month").pool == "runai_api"
