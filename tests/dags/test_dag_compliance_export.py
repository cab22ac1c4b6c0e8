"""dag.test() of the daily compliance export: a synced lake yields a checked bundle of the previous day."""

from __future__ import annotations

import hashlib
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


def test_monthly_export_bundles_the_months_report_listed_and_checksummed(
    dagbag: Any,
    airflow_db: None,
    start_fake: Callable[..., FakeControlPlane],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runai_extract.report.render import render_report
    from runai_extract.usage.org_units import sync_org
    from runai_extract.usage.workloads import sync_workloads

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
    settings = settings_for(fake, home)
    sync_audit(settings, now=FAKE_NOW + timedelta(minutes=5))
    sync_org(settings)
    sync_workloads(settings)

    # The run after November: its data interval is [1 Nov 06:00, 1 Dec 06:00), the bundle is the calendar month.
    run = dagbag.dags["runai_compliance_export_monthly"].test(
        logical_date=pendulum.datetime(2026, 12, 1, 7, tz="UTC")
    )
    assert run.state == "success"
    bundle = home / "lake" / "exports" / "compliance" / "monthly" / "2026-11"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["period"] == {
        "start": "2026-11-01T00:00:00.000000Z",
        "end": "2026-12-01T00:00:00.000000Z",
    }
    page = (bundle / "report.html").read_bytes()
    assert manifest["attachments"] == [
        {"file": "report.html", "bytes": len(page), "sha256": hashlib.sha256(page).hexdigest()}
    ]
    assert f"{hashlib.sha256(page).hexdigest()}  report.html\n" in (bundle / "SHA256SUMS").read_text()
    assert verify_bundle(Lake(str(bundle))) == []
    assert b"Run:ai ledger report, 2026-11-01 to 2026-11-30" in page
    # Deterministic: rendered again outside Airflow, the same bytes.
    start, end = pendulum.datetime(2026, 11, 1, tz="UTC"), pendulum.datetime(2026, 12, 1, tz="UTC")
    assert render_report(settings, start, end).html == page

    (bundle / "report.html").write_bytes(page.replace(b"GPU-hours", b"CPU-hours", 1))
    assert [p.path for p in verify_bundle(Lake(str(bundle)))] == ["report.html"]
