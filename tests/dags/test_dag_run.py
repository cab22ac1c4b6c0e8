"""dag.test() against the fake control plane on loopback: Parquet and views hold the ground truth."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest

from runai_extract.fake import FakeControlPlane
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAKE_NOW
from tests.lake_reading import stored_audit_ids
from warehouse.query import run_query


def _connection(fake: FakeControlPlane, home: Path) -> str:
    return json.dumps(
        {
            "conn_type": "http",
            "host": fake.base_url,
            "login": CLIENT_ID,
            "password": CLIENT_SECRET,
            "extra": {"ledger_home": str(home)},
        }
    )


def test_dag_run_ingests_history_and_rerun_adds_nothing(
    dagbag: Any, airflow_db: None, fake: FakeControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "ledger"
    monkeypatch.setenv("AIRFLOW_CONN_RUNAI_DEFAULT", _connection(fake, home))
    dag = dagbag.dags["runai_audit_log"]
    logical = pendulum.instance(FAKE_NOW + timedelta(minutes=31))

    first = dag.test(logical_date=logical)
    assert first.state == "success"
    summary = first.get_task_instance("sync").xcom_pull(task_ids="sync")
    assert summary["window_end"] == "2026-11-20T12:30:00.000000Z"  # the run's data_interval_end

    ids = stored_audit_ids(home / "lake")
    expected = set(fake.simulator.audit_ids(FAKE_NOW - timedelta(days=30), FAKE_NOW + timedelta(minutes=30)))
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert summary["rows_new"] == len(expected)

    views = run_query(home / "warehouse.duckdb", "select count(*) as n from audit_events").to_pylist()
    assert views == [{"n": len(expected)}]
    sign_ins = run_query(
        home / "warehouse.duckdb", "select count(*) as n from compliance_sign_ins"
    ).to_pylist()
    window_rows = fake.simulator.audit_rows(FAKE_NOW - timedelta(days=30), FAKE_NOW + timedelta(minutes=30))
    expected_sign_ins = [r for r in window_rows if r["action"] in ("sign-in", "sign-out", "reset-password")]
    assert sign_ins[0]["n"] == len(expected_sign_ins) > 0

    # Neither the secret nor any token may reach Airflow's metadata DB (XCom), its logs or files.
    checked = [f for f in Path(os.environ["AIRFLOW_HOME"]).rglob("*") if f.is_file()]
    assert any(f.name == "airflow.db" for f in checked)  # XCom and task state live here
    for file in checked:
        content = file.read_bytes()
        assert CLIENT_SECRET.encode() not in content, file
        assert b"eyJ" not in content, file
    xcom = json.dumps(summary)
    assert CLIENT_SECRET not in xcom and "eyJ" not in xcom

    rerun = dag.test(logical_date=logical)
    assert rerun.state == "success"
    assert rerun.get_task_instance("sync").xcom_pull(task_ids="sync")["rows_new"] == 0


def test_a_failing_sync_fails_the_run(
    dagbag: Any,
    airflow_db: None,
    start_fake: Callable[..., FakeControlPlane],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = start_fake()
    conn = json.loads(_connection(fake, tmp_path))
    conn["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_RUNAI_DEFAULT", json.dumps(conn))
    run = dagbag.dags["runai_audit_log"].test(logical_date=pendulum.instance(FAKE_NOW))
    assert run.state == "failed"
    assert not (tmp_path / "lake" / "_state" / "audit.json").exists()
