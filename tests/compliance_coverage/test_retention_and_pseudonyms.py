"""The retention-lag alert and the pseudonymised views, as an operator and an analyst meet them."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from runai_extract.audit.sync import backfill_audit, sync_audit
from runai_extract.cli.status import print_status, print_summary
from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import Secret, Settings
from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.retention import retention_alerts
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import settings_for
from transforms.storage import Lake
from warehouse.build import build_views, ensure_views
from warehouse.query import run_query

DAY = datetime(2026, 11, 19, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)


def printed(fn: object, *args: object) -> str:
    console = Console(record=True, width=300, force_terminal=False)
    fn(*args, console)  # type: ignore[operator]
    return console.export_text()


# -- retention lag ---------------------------------------------------------------------------------
def test_a_watermark_85_days_old_is_an_alert_in_logs_status_and_the_sync_summary(
    fake: FakeControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(fake, tmp_path)
    old = datetime.now(UTC) - timedelta(days=85)
    StateStore(Lake(settings.lake_uri)).commit("audit", old, "run-from-long-ago")

    with caplog.at_level(logging.WARNING):
        [alert] = retention_alerts(Lake(settings.lake_uri), settings.retention, settings.retention_margin)
    assert alert.stream == "audit" and 4.9 < alert.days_left < 5.1
    assert "retention lag: audit: watermark" in caplog.text and "lost in 5.0 days" in caplog.text

    status = printed(print_status, settings)
    assert "ALERT retention lag: audit: watermark" in status
    assert "85.0 days old and the API keeps 90 days" in status and "lost in 5.0 days" in status

    # A sync that stops short (Airflow's data interval) still leaves the watermark old: say so.
    summary = sync_audit(settings, until=old + timedelta(hours=1))
    assert summary.to_dict()["alerts"] and "lost in 5.0 days" in summary.to_dict()["alerts"][0]
    assert "ALERT retention lag: audit" in printed(print_summary, summary)


def test_a_fresh_watermark_or_a_wider_margin_decides_the_alert(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    settings = settings_for(fake, tmp_path)
    lake = Lake(settings.lake_uri)
    StateStore(lake).commit("audit", datetime.now(UTC) - timedelta(days=70), "run")
    assert retention_alerts(lake, settings.retention, settings.retention_margin) == []
    assert len(retention_alerts(lake, settings.retention, timedelta(days=25))) == 1
    assert "ALERT" not in printed(print_status, settings)


def test_the_tenants_retention_is_a_setting_and_covers_workloads_and_metrics(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    settings = settings_for(fake, tmp_path, retention="audit=120,workloads=30,metrics=14")
    lake = Lake(settings.lake_uri)
    StateStore(lake).commit("audit", datetime.now(UTC) - timedelta(days=100), "run-a")
    StateStore(lake).commit("workloads", datetime.now(UTC) - timedelta(days=25), "run-w")
    StateStore(lake).commit("metrics", datetime.now(UTC) - timedelta(days=6), "run-m")
    metrics, workloads = retention_alerts(lake, settings.retention, settings.retention_margin)
    assert (workloads.stream, workloads.retention) == ("workloads", timedelta(days=30))
    assert 4.9 < workloads.days_left < 5.1
    assert (metrics.stream, metrics.retention) == ("metrics", timedelta(days=14))
    assert 7.9 < metrics.days_left < 8.1

    status = printed(print_status, settings)
    assert "ALERT retention lag: workloads: watermark" in status and "the API keeps 30 days" in status
    assert "ALERT retention lag: metrics: watermark" in status and "the API keeps 14 days" in status
    assert re.search(r"audit: watermark .*; 20\.0 days before unsynced records leave the API", status)
    assert re.search(r"workloads: watermark .*; 5\.0 days before unsynced records leave the API", status)


# -- pseudonymised views ---------------------------------------------------------------------------
@pytest.fixture
def lake_settings(fake: FakeControlPlane, tmp_path: Path) -> Settings:
    settings = settings_for(fake, tmp_path)
    backfill_audit(settings, start=DAY, end=DAY + timedelta(hours=6), now=NOW)
    return settings


def pseudonymised(settings: Settings, key: str, name: str) -> tuple[list[dict[str, object]], Path]:
    path = settings.home / f"{name}.duckdb"
    build_views(path, Lake(settings.lake_uri), pseudonym_key=Secret(key))
    rows = run_query(path, "select * from audit_events_pseudonymised").to_pylist()
    return rows, path


def test_pseudonyms_are_stable_for_a_key_and_unrelated_under_another(lake_settings: Settings) -> None:
    first, _ = pseudonymised(lake_settings, "key-one", "a")
    again, _ = pseudonymised(lake_settings, "key-one", "b")
    other, _ = pseudonymised(lake_settings, "key-two", "c")
    by_id = {r["event_id"]: r for r in first}
    assert {r["event_id"]: r["subject_pseudonym"] for r in again} == {
        k: r["subject_pseudonym"] for k, r in by_id.items()
    }
    assert all(r["subject_pseudonym"] and r["source_ip_pseudonym"] for r in first)
    one = {r["subject_pseudonym"] for r in first}
    two = {r["subject_pseudonym"] for r in other}
    assert len(one) == len(two) > 1 and not one & two
    raw = run_query(
        _built(lake_settings), "select count(distinct subject) as n from audit_events"
    ).to_pylist()
    assert len(one) == raw[0]["n"]  # one pseudonym per person, no more, no fewer


def _built(settings: Settings) -> Path:
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    return settings.warehouse_path


def test_no_raw_identity_reaches_the_pseudonymised_views_or_the_file(
    lake_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    key = "a-key-that-must-never-be-stored-9d3e"
    with caplog.at_level(logging.DEBUG):
        rows, path = pseudonymised(lake_settings, key, "p")
    assert key not in caplog.text and key not in repr(lake_settings.with_overrides(pseudonym_key=key))
    raw = run_query(_built(lake_settings), "select distinct subject, source_ip from audit_events").to_pylist()
    identities = {r["subject"] for r in raw} | {r["source_ip"] for r in raw}
    daily = run_query(path, "select * from activity_by_subject_daily").to_pylist()
    assert daily and sum(int(r["events"]) for r in daily) == len(rows)  # type: ignore[call-overload]
    for row in [*rows, *daily]:
        assert not {str(v) for v in row.values()} & identities, [
            (k, v) for k, v in row.items() if str(v) in identities
        ]
        assert not {"subject", "source_ip", "url", "metadata", "entity_name"} & set(row)
    blob = path.read_bytes()
    assert key.encode() not in blob
    assert not [i for i in identities if i and i.encode() in blob]


def test_without_a_key_the_views_build_and_refuse_clearly(lake_settings: Settings) -> None:
    path = lake_settings.home / "nokey.duckdb"
    build_views(path, Lake(lake_settings.lake_uri))
    assert run_query(path, "select count(*) as n from audit_events").to_pylist()[0]["n"] > 0
    with pytest.raises(ConfigError, match="RUNAI_LEDGER_PSEUDONYM_KEY"):
        run_query(path, "select * from activity_by_subject_daily")
    # Setting the key later is enough for the next refresh to switch them on.
    report = ensure_views(path, Lake(lake_settings.lake_uri), pseudonym_key=Secret("late-key"))
    assert report.rebuilt and run_query(path, "select * from audit_events_pseudonymised").num_rows > 0
