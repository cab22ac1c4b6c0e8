"""The ledger against every control-plane release the fake speaks (2.18 ... 3.0, latest): audit,
workloads and org units each land exactly the simulator's rows; and a tenant upgrading from 2.19
to 2.20 (legacy audit endpoint gone) keeps syncing without a duplicate at the seam."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from runai_extract.audit.sync import sync_audit
from runai_extract.cli.status import print_status
from runai_extract.fake import FakeConfig, FakeControlPlane, FaultConfig
from runai_extract.fake.legacy_audit import legacy_id
from runai_extract.fake.releases import RELEASES, release
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.workloads import sync_workloads
from tests.conftest import FAKE_NOW, fake_config, settings_for
from tests.usage.conftest import rows, views

NOW = FAKE_NOW + timedelta(minutes=5)


def _config(version: str) -> FakeConfig:
    return replace(fake_config(days=1, events_per_day=250, seed=29), api_version=version)


def _expected_audit_ids(fake: FakeControlPlane, home: Path) -> set[str]:
    settings = settings_for(fake, home)
    start, end = NOW - settings.initial_lookback, NOW - settings.settle_lag
    ids = fake.simulator.audit_ids(start, end - timedelta(microseconds=1))
    if release(fake.config.api_version).has("audit.modern"):
        return ids
    return {str(legacy_id(i)) for i in ids}


@pytest.mark.parametrize("version", RELEASES)
def test_audit_workloads_and_org_land_exactly_the_simulators_rows(
    version: str, start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(_config(version))
    settings = settings_for(fake, tmp_path)
    legacy = not release(version).has("audit.modern")

    summary = sync_audit(settings, now=NOW)
    assert sync_org(settings).status == "committed"
    assert sync_workloads(settings).status == "committed"

    con = views(settings)
    stored = rows(con, "select event_id, api_flavour, result, subject from audit_events")
    ids = [row[0] for row in stored]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == _expected_audit_ids(fake, tmp_path)
    assert {row[1] for row in stored} == {"k8s_audit" if legacy else "audit_log"}
    assert {row[2] for row in stored} == {"Succeeded", "Failed"} and all(row[3] for row in stored)
    features = rows(con, "select distinct api_features from ingest_runs where stream = 'audit'")
    assert features == [(f"audit={'k8s_audit' if legacy else 'audit_log'}",)]
    assert summary.to_dict()["api_features"] == [features[0][0]]

    truth = {w["workload_id"]: w["phase"] for w in fake.simulator.workload_truth()}
    assert dict(rows(con, "select workload_id, phase from workloads")) == truth
    org = fake.simulator.org_truth()
    assert dict(rows(con, "select project_id, name from projects")) == org["projects"]
    assert dict(rows(con, "select department_id, name from departments")) == org["departments"]
    model = fake.simulator.workloads
    pools = {p.name for p in model.org.nodepools if p.created_ms <= model.now_ms}
    assert {row[0] for row in rows(con, "select name from node_pools")} == pools


def test_a_2_19_ledger_keeps_syncing_after_the_tenant_upgrades_to_2_20(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    before = start_fake(_config("2.19"))
    first = sync_audit(settings_for(before, tmp_path), now=NOW - timedelta(hours=6))
    assert first.rows_new > 0
    before.stop()

    after = start_fake(_config("2.20"))  # same tenant, upgraded: /v1/k8s/audit answers 404 now
    assert after.requests_to("/v1/k8s/audit") == 0
    second = sync_audit(settings_for(after, tmp_path), now=NOW)
    assert second.totals()["duplicates_dropped"] > 0, "the overlap must re-read the seam"

    con = views(settings_for(after, tmp_path))
    ids = [row[0] for row in rows(con, "select event_id from audit_events")]
    assert len(ids) == len(set(ids)), "the seam stored an event twice"
    assert set(ids) == _expected_audit_ids(after, tmp_path)
    assert rows(con, "select distinct api_flavour from audit_events") == [("audit_log",)]


def test_latest_adding_and_dropping_fields_keeps_landing_and_is_reported(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    config = replace(
        _config("latest"),
        extra_audit_fields=(("actor_country", "NL"),),
        dropped_audit_fields=("request_id",),
    )
    fake = start_fake(config)
    summary = sync_audit(settings_for(fake, tmp_path), now=NOW)
    drift = summary.to_dict()["drift"]
    stored = summary.rows_new
    assert stored > 0
    assert drift["field:actor_country"] == stored and drift["gone:request_id"] == stored

    con = views(settings_for(fake, tmp_path))
    assert {row[0] for row in rows(con, "select event_id from audit_events")} == _expected_audit_ids(
        fake, tmp_path
    )
    assert rows(con, "select distinct extra_fields['actor_country'], request_id from audit_events") == [
        ('"NL"', None)
    ]


def test_deprecated_endpoints_are_named_with_the_date_or_release_to_upgrade_by(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    sunset = "Sat, 01 Aug 2026 00:00:00 GMT"
    saas = start_fake(replace(_config("latest"), sunsets=(("/api/v1/audit/log", sunset),)))
    notices = sync_audit(settings_for(saas, tmp_path / "saas"), now=NOW).deprecations()
    assert notices == [f"the control plane marks /api/v1/audit/log deprecated: it stops working on {sunset}"]

    old = start_fake(_config("2.18"))  # reads /v1/k8s/audit, which 2.20 removes
    notices = sync_audit(settings_for(old, tmp_path / "old"), now=NOW).deprecations()
    assert len(notices) == 1 and "/v1/k8s/audit" in notices[0] and "2.20" in notices[0]
    console = Console(record=True, width=300)
    print_status(settings_for(old, tmp_path / "old"), console)
    said = console.export_text()
    assert "audit API in use: audit=k8s_audit" in said
    assert f"DEPRECATED API: {notices[0]}" in said
    current = start_fake(_config("2.24"))
    assert sync_audit(settings_for(current, tmp_path / "current"), now=NOW).deprecations() == []


def test_a_2_18_ledger_upgraded_to_the_modern_log_stores_the_seam_once(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Legacy rows carry integer ids, modern ones UUIDs: the overlap is deduplicated by content."""
    before = start_fake(_config("2.18"))
    first = sync_audit(settings_for(before, tmp_path), now=NOW - timedelta(hours=6))
    before.stop()

    after = start_fake(_config("2.20"))
    second = sync_audit(settings_for(after, tmp_path), now=NOW)
    assert second.totals()["duplicates_dropped"] > 0, "the overlap must re-read the seam"

    con = views(settings_for(after, tmp_path))
    stored = rows(con, "select api_flavour, count(*) from audit_events group by all order by 1")
    modern_total = len(_expected_audit_ids(after, tmp_path))
    legacy_stored = dict(stored)["k8s_audit"]
    assert legacy_stored == first.rows_new > 0
    # Every event of the tenant once: the legacy rows up to the seam, the modern rows after it.
    assert legacy_stored + dict(stored)["audit_log"] == modern_total


def test_rows_inserted_while_a_legacy_window_is_paged_are_caught_by_re_paging(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """2.18 sends no total: the second read's id set differs, the window is read again, none lost."""
    config = replace(_config("2.18"), faults=FaultConfig(insert_during_paging=15))
    fake = start_fake(config)
    settings = settings_for(fake, tmp_path, page_size=50)
    summary = sync_audit(settings, now=NOW)
    assert any(piece.repaged for piece in summary.slices), "a moved id set must trigger a re-page"
    assert not any(piece.total_mismatch and not piece.repaged for piece in summary.slices)

    con = views(settings)
    ids = [row[0] for row in rows(con, "select event_id from audit_events")]
    assert len(ids) == len(set(ids))
    assert set(ids) == _expected_audit_ids(fake, tmp_path)
