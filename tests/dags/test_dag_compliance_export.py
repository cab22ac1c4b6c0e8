"""dag.test() of the daily compliance export: a synced lake yields a checked bundle of the previous day."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest

from runai_extract.audit.sync import sync_audit
from runai_extract.compliance.bundles import verify_bundle
from runai_extract.fake import FakeControlPlane
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAKE_NOW, fake_config, settings_for
from transforms.storage import Lake


def test_daily_export_writes_a_verifiable_bundle_of_the_previous_day(
    dagbag: Any,
    airflow_db: None,
    start_fake: Callable[..., FakeControlPlane],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = start_fake(fake_config(days=2, events_per_day=300))
    home = tmp_path / "ledger"
    connection = {
        "conn_type": "http",
        "host": fake.base_url,
        "login": CLIENT_ID,
        "password": CLIENT_SECRET,
        "extra": {"ledger_home": str(home)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_RUNAI_DEFAULT", json.dumps(connection))
    sync_audit(settings_for(fake, home), now=FAKE_NOW + timedelta(minutes=5))

    run = dagbag.dags["runai_compliance_export"].test(logical_date=pendulum.instance(FAKE_NOW))
    assert run.state == "success"
    summary = run.get_task_instance("export_previous_day").xcom_pull(task_ids="export_previous_day")
    day = (FAKE_NOW - timedelta(days=1)).strftime("%Y-%m-%d")
    bundle = home / "lake" / "exports" / "compliance" / "daily" / day
    assert summary["bundle"] == str(bundle)
    assert summary["coverage"] == "incomplete"  # synced, not yet sealed by a recheck
    assert summary["rows"]["compliance_sign_ins.parquet"] > 0
    assert verify_bundle(Lake(str(bundle))) == []
