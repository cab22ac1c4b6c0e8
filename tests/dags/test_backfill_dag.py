"""runai_backfill: one mapped task per day in the API pool, run with dag.test() against a lake on S3."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import CLIENT_ID, CLIENT_SECRET, S3_SECRET
from tests.lake_reading import stored_audit_ids
from transforms.storage import Lake


def test_backfill_dag_maps_one_task_per_day_in_the_api_pool(dagbag: Any) -> None:
    dag = dagbag.dags["runai_backfill"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered with params, never scheduled
    assert set(dag.params.keys()) == {"start", "end"}
    day_task = dag.get_task("backfill_day")
    assert day_task.pool == "runai_api"
    assert day_task.retries == 3
    assert dag.get_task("advance").trigger_rule == "all_done"


def test_backfill_dag_on_s3_stores_every_day_once_and_moves_the_watermark_to_the_end(
    dagbag: Any,
    airflow_db: None,
    fake: FakeControlPlane,
    s3_lake: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = {
        "conn_type": "http",
        "host": fake.base_url,
        "login": CLIENT_ID,
        "password": CLIENT_SECRET,
        # The Connection names the lake and the Airflow AWS connection that holds its keys.
        "extra": {"ledger_home": str(tmp_path / "home"), "lake_uri": s3_lake, "aws_conn_id": "ledger_s3"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_RUNAI_DEFAULT", json.dumps(connection))
    aws = {
        "conn_type": "aws",
        "login": os.environ["AWS_ACCESS_KEY_ID"],
        "password": os.environ["AWS_SECRET_ACCESS_KEY"],
        "extra": {"region_name": "us-east-1", "endpoint_url": os.environ["AWS_ENDPOINT_URL"]},
    }
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_S3", json.dumps(aws))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(name)  # only the AWS connection says where the lake is and how to sign
    sim = fake.simulator
    first = datetime(sim.start.year, sim.start.month, sim.start.day, tzinfo=UTC)
    last = datetime(sim.now.year, sim.now.month, sim.now.day, tzinfo=UTC)  # the range ends before today's
    days = (last - first).days

    run = dagbag.dags["runai_backfill"].test(
        run_conf={"start": f"{first:%Y-%m-%d}", "end": f"{last:%Y-%m-%d}"}
    )

    assert run.state == "success"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == S3_SECRET  # the task put the connection's keys in place
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "backfill_day"]
    assert len(mapped) == days >= 2 and {ti.state for ti in mapped} == {"success"}
    ids = stored_audit_ids(s3_lake)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(sim.audit_ids(first, last - timedelta(microseconds=1)))
    assert StateStore(Lake(s3_lake)).read("audit").watermark == last  # type: ignore[union-attr]
    # Nothing in Airflow's files (metadata DB with XCom, logs) holds the S3 key or the API secret.
    for file in (f for f in Path(os.environ["AIRFLOW_HOME"]).rglob("*") if f.is_file()):
        content = file.read_bytes()
        assert S3_SECRET.encode() not in content and CLIENT_SECRET.encode() not in content, file
