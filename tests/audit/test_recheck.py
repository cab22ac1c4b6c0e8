"""Re-checking closed windows over real loopback: late rows are found, stored once, and recorded.

A sync re-reads only the overlap before its watermark, so a row that appears later with an older
timestamp is invisible to it; these tests show that, then show the recheck finding exactly those
rows and leaving one reconciliation record per window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runai_extract.audit.recheck import Reconciliation, _compare, recheck_audit
from runai_extract.audit.slices import PagePass, StagedSlice
from runai_extract.audit.sync import sync_audit
from runai_extract.core.errors import ApiContractError
from runai_extract.core.times import Window
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.ledger.run_records import SliceResult
from runai_extract.ledger.watermarks import StateStore
from tests.cli.test_cli import api_env, one_error_line, run_cli
from tests.conftest import FAKE_NOW, fake_config, settings_for
from tests.lake_reading import stored_audit_ids, table_rows
from transforms.catalog import RECONCILIATION_TABLE
from transforms.storage import Lake
from warehouse.build import ensure_views
from warehouse.query import run_query

NOW = FAKE_NOW + timedelta(minutes=5)
DAY = datetime(2026, 11, 19, tzinfo=UTC)  # a whole day the first sync closes


def stored_ids(home: Path) -> list[str]:
    return stored_audit_ids(home / "lake")


def reconciliation_rows(home: Path) -> list[dict[str, object]]:
    rows = [r for r in table_rows(home / "lake", RECONCILIATION_TABLE).to_pylist() if r["stream"] == "audit"]
    # Runs in the order they ran; within a run, windows in window order (slices of one run are
    # checked concurrently, so their checked_at order is not their window order).
    run_started: dict[object, object] = {}
    for row in sorted(rows, key=lambda r: r["checked_at"]):  # type: ignore[arg-type, return-value]
        run_started.setdefault(row["run_id"], row["checked_at"])
    return sorted(rows, key=lambda r: (run_started[r["run_id"]], r["window_start"]))  # type: ignore[return-value]


def test_recheck_finds_late_rows_a_sync_cannot_see(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    sync_audit(settings, now=NOW)
    late = fake.simulator.add_rows(3, DAY + timedelta(hours=6), DAY + timedelta(hours=7))

    # Why recheck exists: the late rows lie far before watermark - overlap, so a sync never re-reads them.
    plain = sync_audit(settings, now=NOW + timedelta(minutes=1))
    assert plain.rows_new == 0
    assert not set(late) & set(stored_ids(tmp_path))
    watermark = StateStore(Lake(settings.lake_uri)).read("audit").watermark  # type: ignore[union-attr]

    found = recheck_audit(settings, start=DAY, end=DAY + timedelta(days=1), now=NOW + timedelta(minutes=2))
    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids)), "an event id was stored twice"
    assert set(late) <= set(ids)
    assert found.late_rows == 3 and found.rows_new == 3 and found.missing_from_api == 0
    assert StateStore(Lake(settings.lake_uri)).read("audit").watermark == watermark  # type: ignore[union-attr]
    [record] = reconciliation_rows(tmp_path)
    truth = set(fake.simulator.audit_ids(DAY, DAY + timedelta(days=1) - timedelta(microseconds=1)))
    assert record["status"] == "late_rows" and record["late_rows_added"] == 3
    assert record["sample_late_ids"] == sorted(late)
    assert record["api_ids"] == len(truth) and record["stored_before"] == len(truth) - 3
    assert record["missing_from_api"] == 0 and record["sample_missing_ids"] == []
    assert record["sealed"] is False and record["error"] is None

    again = recheck_audit(settings, start=DAY, end=DAY + timedelta(days=1), now=NOW + timedelta(minutes=3))
    assert again.late_rows == 0 and again.rows_new == 0
    second = reconciliation_rows(tmp_path)[-1]
    assert second["status"] == "clean" and second["sealed"] is True  # ended ~12 h before the check
    assert second["stored_before"] == len(truth) == second["api_ids"]
    assert len(stored_ids(tmp_path)) == len(ids)


def test_recheck_of_a_clean_range_adds_nothing(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    sync_audit(settings, now=NOW)
    before = sorted(stored_ids(tmp_path))
    start = DAY + timedelta(hours=12)  # two slices: the rest of the 19th, and the 20th up to 11:30
    summary = recheck_audit(settings, start=start, end=FAKE_NOW - timedelta(minutes=30), now=NOW)
    assert summary.rows_new == 0 and summary.late_rows == 0
    assert sorted(stored_ids(tmp_path)) == before
    rows = reconciliation_rows(tmp_path)
    assert [(r["status"], r["sealed"]) for r in rows] == [("clean", True), ("clean", False)]
    assert all(r["api_ids"] == r["stored_before"] > 0 for r in rows)


def test_reconciliation_view_returns_the_records(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    sync_audit(settings, now=NOW)
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    empty = run_query(settings.warehouse_path, "select count(*) as n from reconciliation")
    assert empty.to_pylist() == [{"n": 0}], "no records yet: the typed empty relation"

    late = fake.simulator.add_rows(2, DAY + timedelta(hours=1), DAY + timedelta(hours=2))
    recheck_audit(settings, start=DAY, end=DAY + timedelta(days=1), now=NOW)
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    rows = run_query(
        settings.warehouse_path,
        "select stream, status, late_rows_added, sample_late_ids, sealed from reconciliation",
    ).to_pylist()
    assert rows == [
        {
            "stream": "audit",
            "status": "late_rows",
            "late_rows_added": 2,
            "sample_late_ids": sorted(late),
            "sealed": False,
        }
    ]


def test_a_failed_slice_is_recorded_then_raised(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(fake_config(faults=FaultConfig(lying_total=5)))
    settings = settings_for(fake, tmp_path)
    with pytest.raises(ApiContractError):
        recheck_audit(settings, start=DAY, end=DAY + timedelta(days=1), now=NOW)
    [record] = reconciliation_rows(tmp_path)
    assert record["status"] == "failed" and "total=" in str(record["error"])
    assert record["sealed"] is False


def test_missing_rows_outrank_late_ones_and_samples_are_capped() -> None:
    record = Reconciliation(DAY, DAY + timedelta(days=1))
    result = SliceResult(DAY, DAY + timedelta(days=1), rows_new=25, api_total=30)
    stored = {f"s{i:02d}" for i in range(30)}
    api = {f"a{i:02d}" for i in range(25)} | {"s00"}
    staged = StagedSlice(Window(DAY, DAY + timedelta(days=1)), result, NOW, PagePass(api_ids=api), stored)
    _compare(record, staged, seal_before=NOW)
    assert record.status == "missing_from_api" and record.missing_from_api == 29
    assert len(record.sample_late_ids) == len(record.sample_missing_ids) == 20
    assert record.sealed is False


def test_cli_recheck_prints_late_rows_and_refuses_an_inverted_range(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    inverted = run_cli("recheck", "audit", "--start", "2026-11-19", "--end", "2026-11-18", home=tmp_path)
    assert inverted.returncode == 2
    assert "--start must be before --end" in one_error_line(inverted)

    settings = settings_for(fake, tmp_path)
    sync_audit(settings, now=NOW)
    late = fake.simulator.add_rows(1, DAY + timedelta(hours=3), DAY + timedelta(hours=4))
    result = run_cli(
        "recheck", "audit", "--start", "2026-11-19", "--end", "2026-11-20", env=api_env(fake), home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "1 late row(s) found and stored" in result.stdout
    assert "0 stored id(s) missing from the API" in result.stdout
    assert late[0] in result.stdout
    ids = stored_ids(tmp_path)
    assert late[0] in ids and len(ids) == len(set(ids))
