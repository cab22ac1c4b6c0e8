"""End to end over real loopback HTTP: fake control plane -> sync -> Parquet -> DuckDB views.

Every assertion compares what landed in the lake and the views with the simulator's ground truth.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from runai_extract.audit.sync import backfill_audit, sync_audit
from runai_extract.core.errors import AuthError
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import FAKE_NOW, fake_config, settings_for
from tests.lake_reading import live_files, stored_audit_ids
from transforms.storage import Lake
from warehouse.build import ensure_views
from warehouse.query import run_query

NOW = FAKE_NOW + timedelta(minutes=5)


def stored_ids(home: Path) -> list[str]:
    """Every event_id the audit table holds (duplicates included, so tests can see them)."""
    return stored_audit_ids(home / "lake")


def truth(fake: FakeControlPlane, start: datetime, end: datetime) -> set[str]:
    return set(fake.simulator.audit_ids(start, end))


def test_first_sync_stores_exactly_the_ground_truth(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    summary = sync_audit(settings, now=NOW)

    window_start, window_end = NOW - settings.initial_lookback, NOW - settings.settle_lag
    expected = truth(fake, window_start, window_end - timedelta(microseconds=1))
    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids)), "an event id was stored twice"
    assert set(ids) == expected
    assert summary.rows_new == len(expected) > 1000
    assert summary.watermark_after == window_end
    assert StateStore(Lake(settings.lake_uri)).read("audit").watermark == window_end  # type: ignore[union-attr]


def test_second_sync_adds_nothing_and_views_match(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    first = sync_audit(settings, now=NOW)
    second = sync_audit(settings, now=NOW + timedelta(minutes=1))
    assert second.rows_new == 0
    assert second.totals()["duplicates_dropped"] > 0, "the overlap should re-read rows and drop them"

    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    count = run_query(
        settings.warehouse_path, "select count(*) as n, count(distinct event_id) as d from audit_events"
    )
    assert count.to_pylist() == [{"n": first.rows_new, "d": first.rows_new}]
    runs = run_query(settings.warehouse_path, "select count(distinct run_id) as runs from ingest_runs")
    assert runs.to_pylist() == [{"runs": 2}]


def test_files_a_crashed_run_staged_stay_invisible_and_the_rerun_adds_nothing(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    """A writer killed after writing its files but before its commit leaves files no reader sees."""
    settings = settings_for(fake, tmp_path)
    first = sync_audit(settings, now=NOW)
    committed = live_files(tmp_path / "lake")
    orphan = committed[0].with_name("part-crashed-writer.parquet")
    orphan.write_bytes(committed[0].read_bytes())  # staged, never committed
    again = sync_audit(settings, now=NOW)
    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids)) == first.rows_new
    assert again.rows_new == 0
    assert orphan not in live_files(tmp_path / "lake")


def test_backfill_of_synced_range_adds_nothing(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    sync_audit(settings, now=NOW)
    before = stored_ids(tmp_path)
    summary = backfill_audit(settings, start=NOW - timedelta(days=3), end=NOW - timedelta(hours=1), now=NOW)
    assert summary.rows_new == 0
    assert sorted(stored_ids(tmp_path)) == sorted(before)


def test_sync_survives_faults_and_short_tokens(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    faults = FaultConfig(error_rate=0.3, retry_after="http-date", token_lifetime_s=2)
    fake = start_fake(fake_config(faults=faults))
    settings = settings_for(fake, tmp_path, page_size=200, max_attempts=12)
    summary = sync_audit(settings, now=NOW)

    window_end = NOW - settings.settle_lag
    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids))
    assert set(ids) == truth(fake, NOW - settings.initial_lookback, window_end - timedelta(microseconds=1))
    totals = summary.totals()
    assert totals["retries"] > 0 and totals["throttled_429"] > 0


def test_rows_inserted_while_paging_are_caught_by_a_repage(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Rows that land in a window after its first page shift offsets; the moved total triggers a re-page.

    (Rows that land after a window's last page are late arrivals: the next run's overlap or the
    re-check finds them, so this test keeps every window busy enough to span several pages.)
    """
    fake = start_fake(fake_config(faults=FaultConfig(insert_during_paging=25)))
    settings = settings_for(fake, tmp_path, page_size=100, initial_lookback=timedelta(days=2))
    summary = sync_audit(settings, now=NOW)
    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids))
    assert set(ids) == truth(
        fake, NOW - settings.initial_lookback, NOW - settings.settle_lag - timedelta(microseconds=1)
    )
    assert any(s.repaged for s in summary.slices)


def test_bad_credentials_fail_clearly_without_the_secret(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path, client_secret="wrong-secret-value")
    with pytest.raises(AuthError) as caught:
        sync_audit(settings, now=NOW)
    assert "wrong-secret-value" not in str(caught.value)
    assert StateStore(Lake(settings.lake_uri)).read("audit") is None


def test_two_syncs_at_once_both_finish_and_store_each_id_once(fake: FakeControlPlane, tmp_path: Path) -> None:
    """No lock: the table log orders the two writers; the later commit of a window adds nothing."""
    settings = settings_for(fake, tmp_path)
    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda _: sync_audit(settings, now=NOW), range(2)))
    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids))
    assert set(ids) == truth(fake, NOW - settings.initial_lookback, NOW - settings.settle_lag)
    assert sum(s.rows_new for s in summaries) == len(ids)


def test_warehouse_opens_from_any_directory(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path / "home")
    summary = sync_audit(settings, now=NOW)
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(con.sql('select count(*) from audit_events').fetchall()[0][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(settings.warehouse_path)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == summary.rows_new


def test_event_times_are_utc_and_within_their_partition(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    sync_audit(settings, now=NOW)
    for file in live_files(tmp_path / "lake"):
        table = pq.read_table(file)
        assert str(table.schema.field("event_time").type) == "timestamp[us, tz=UTC]"
        day = file.parent.name.removeprefix("event_date=")
        dates = {t.astimezone(UTC).date().isoformat() for t in table.column("event_time").to_pylist()}
        assert dates <= {day}


def test_late_rows_within_the_overlap_are_picked_up_by_the_next_sync(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    """Rows written late with timestamps just before the watermark (inside the overlap) are stored
    by the next ordinary sync, once; older ones are the recheck's job (tests/test_recheck.py)."""
    settings = settings_for(fake, tmp_path)
    first = sync_audit(settings, now=NOW)
    assert first.watermark_after is not None
    late = fake.simulator.add_rows(
        7,
        first.watermark_after - settings.overlap + timedelta(seconds=1),
        first.watermark_after - timedelta(seconds=1),
    )
    second = sync_audit(settings, now=NOW + timedelta(minutes=1))
    assert second.rows_new == 7
    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids))
    assert set(late) <= set(ids)
