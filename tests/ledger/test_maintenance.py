"""Maintenance keeps one file per closed day, loses and doubles nothing, and verify can prove it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from runai_extract.audit.sync import sync_audit
from runai_extract.core.errors import ConfigError
from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.maintenance import maintain
from runai_extract.ledger.verify import verify_lake
from tests.conftest import FAKE_NOW, settings_for
from tests.lake_reading import live_files, stored_audit_ids
from transforms.catalog import AUDIT_EVENTS_TABLE, INGEST_RUNS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables
from warehouse.build import ensure_views, views_as_of
from warehouse.query import query_connection, run_query

NOW = FAKE_NOW + timedelta(minutes=5)


def files_per_day(lake: Path) -> Counter[str]:
    return Counter(path.parent.name for path in live_files(lake))


def test_closed_days_become_one_file_each_and_every_id_stays_once(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    # Hourly slices and a sync every hour: many small commits per day, as a scheduler makes them.
    settings = settings_for(fake, tmp_path, slice_length=timedelta(hours=2))
    for hours_ago in range(30, -1, -10):
        sync_audit(settings, now=NOW - timedelta(hours=hours_ago))
    lake = tmp_path / "lake"
    before_ids = stored_audit_ids(lake)
    before = files_per_day(lake)
    today = f"event_date={NOW.date().isoformat()}"
    assert max(before.values()) > 1
    version_before = Tables(Lake(str(lake))).load(AUDIT_EVENTS_TABLE).version()  # type: ignore[union-attr]

    report = maintain(Lake(str(lake)), now=NOW).to_dict()

    after = files_per_day(lake)
    assert all(n == 1 for day, n in after.items() if day != today), after
    assert after[today] == before[today]  # today's partition still takes commits: left alone
    assert sorted(stored_audit_ids(lake)) == sorted(before_ids) and len(set(before_ids)) == len(before_ids)
    assert report["files_after"] < report["files_before"]
    assert len(live_files(lake, INGEST_RUNS_TABLE)) == 1
    # Retired files stay for readers of older snapshots (time travel) until the retention passes.
    old = Tables(Lake(str(lake))).load(AUDIT_EVENTS_TABLE, version=version_before)
    assert old is not None and old.to_pyarrow_table().num_rows == len(before_ids)
    reports = verify_lake(Lake(str(lake)), None, None)
    assert [(r.stream, r.problems) for r in reports if r.problems] == []
    compactions = next(r for r in reports if r.stream == "audit")
    assert compactions.manifests > 0
    ensure_views(settings.warehouse_path, Lake(str(lake)))
    assert run_query(
        settings.warehouse_path, "select count(*) n, count(distinct event_id) d from audit_events"
    ).to_pylist() == [{"n": len(before_ids), "d": len(before_ids)}]


def test_a_retention_too_short_for_a_running_reader_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="below"):
        maintain(Lake(str(tmp_path)), retention=timedelta(minutes=5))


def test_maintenance_twice_changes_nothing_the_second_time(fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path, slice_length=timedelta(hours=6))
    sync_audit(settings, now=NOW - timedelta(hours=12))
    sync_audit(settings, now=NOW)
    maintain(Lake(str(tmp_path / "lake")), now=NOW)
    second = maintain(Lake(str(tmp_path / "lake")), now=NOW).to_dict()
    assert second["files_before"] == second["files_after"]
    assert all(t["compactions"] == 0 for t in second["tables"].values())  # type: ignore[union-attr]


def test_query_as_of_reads_the_tables_as_they_stood_even_after_compaction(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    """The ledger as of the day the auditor asked: later syncs and a compaction change nothing of it."""
    settings = settings_for(fake, tmp_path, slice_length=timedelta(hours=6))
    first = sync_audit(settings, now=NOW - timedelta(hours=12))
    asked = datetime.now(UTC)
    time.sleep(0.05)  # commit timestamps have millisecond resolution
    later = sync_audit(settings, now=NOW)
    maintain(Lake(str(tmp_path / "lake")), now=NOW)
    assert later.rows_new > 0
    sql = "select count(*) n from audit_events"
    then = query_connection(views_as_of(Lake(str(tmp_path / "lake")), asked), sql).to_pylist()
    assert then == [{"n": first.rows_new}]
    result = subprocess.run(
        [sys.executable, "-m", "runai_extract.cli", "query", "--home", str(tmp_path), "--as-of",
         asked.isoformat(), "--format", "csv", sql],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.split() == ["n", str(first.rows_new)]


def test_compacted_days_are_clustered_by_subject_in_small_row_groups(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    """A closed day's one file holds its rows clustered by subject, in row groups whose min/max
    let a reader skip everything but the subject it filters on (docs/performance.md)."""
    settings = settings_for(fake, tmp_path, slice_length=timedelta(hours=2))
    for hours_ago in range(30, -1, -10):
        sync_audit(settings, now=NOW - timedelta(hours=hours_ago))
    lake = tmp_path / "lake"
    maintain(Lake(str(lake)), now=NOW)
    today = f"event_date={NOW.date().isoformat()}"
    closed = [path for path in live_files(lake) if path.parent.name != today]
    assert closed
    for path in closed:
        parquet = pq.ParquetFile(path)
        subjects = [s for s in parquet.read(columns=["subject"]).column("subject").to_pylist() if s]
        assert subjects == sorted(subjects), path.name
        rows = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
        assert max(rows) <= AUDIT_EVENTS_TABLE.compact_row_group_rows
