"""The DAG folder parses cleanly and the audit DAG is shaped as operators expect."""

from __future__ import annotations

from typing import Any


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}


def test_audit_dag_schedule_and_guards(dagbag: Any) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags["runai_audit_log"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "*/15 * * * *"
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    sync = dag.get_task("sync")
    assert sync.pool == "runai_api"
    assert sync.retries >= 1
    assert [o.name for o in sync.outlets] == ["runai_ledger_audit_events"]
    assert dag.get_task("refresh_views").upstream_task_ids == {"sync"}


def test_demo_driver_is_not_parsed_as_a_dag(dagbag: Any) -> None:
    """dags/demo_airflow.py is listed in .airflowignore; the bag must not even have looked at it."""
    assert all(not path.endswith("demo_airflow.py") for path in dagbag.file_last_changed)
    assert {"runai_audit_log", "runai_audit_recheck"} <= set(dagbag.dag_ids)


def test_recheck_dag_runs_hourly_after_the_settle_period(dagbag: Any) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags["runai_audit_recheck"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "40 * * * *"  # between the sync's quarter-hour runs
    assert dag.max_active_runs == 1 and dag.catchup is False
    recheck = dag.get_task("recheck")
    assert recheck.pool == "runai_api" and recheck.retries >= 1


def test_compliance_export_dags_follow_the_audit_asset_and_the_month(dagbag: Any) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    daily = dagbag.dags["runai_compliance_export"]
    assert "runai_ledger_audit_events" in repr(daily.timetable.asset_condition)
    assert daily.max_active_runs == 1 and daily.catchup is False
    assert daily.task_ids == ["export_previous_day"]
    monthly = dagbag.dags["runai_compliance_export_monthly"]
    assert isinstance(monthly.timetable, CronDataIntervalTimetable)
    assert monthly.timetable.expression == "0 6 1 * *"
    assert monthly.task_ids == ["export_month"]
