"""Coverage an auditor can read: gaps named by status, hours provisional until a recheck seals them.

Everything runs against the fake control plane over loopback: two backfills with a hole between
them make a real gap, and a real recheck seals the hours it found clean.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from runai_extract.audit.recheck import recheck_audit
from runai_extract.audit.sync import backfill_audit
from runai_extract.cli.status import print_status
from runai_extract.core.settings import Settings
from runai_extract.fake import FakeControlPlane
from tests.conftest import settings_for
from transforms.digest import id_set_digest
from transforms.storage import Lake
from warehouse.build import ensure_views
from warehouse.query import run_query

DAY = datetime(2026, 11, 19, tzinfo=UTC)


def status_text(settings: Settings) -> str:
    console = Console(record=True, width=240, force_terminal=False)
    print_status(settings, console)
    return console.export_text()


def coverage(settings: Settings) -> dict[datetime, str]:
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    result = run_query(
        settings.warehouse_path,
        "select period_start, status from coverage where stream = 'audit' and period_start < ?",
        [DAY + timedelta(hours=10)],
    )
    return {row["period_start"]: row["status"] for row in result.to_pylist()}


@pytest.fixture
def gapped(fake: FakeControlPlane, tmp_path: Path) -> Settings:
    """00:00-03:00 and 05:00-08:00 of one day stored; 03:00-05:00 never read."""
    settings = settings_for(fake, tmp_path)
    backfill_audit(settings, start=DAY, end=DAY + timedelta(hours=3))
    backfill_audit(settings, start=DAY + timedelta(hours=5), end=DAY + timedelta(hours=8))
    return settings


def hour(n: int) -> datetime:
    return DAY + timedelta(hours=n)


def test_status_names_the_gap_between_two_backfills(gapped: Settings) -> None:
    text = status_text(gapped)
    assert "audit: 1 gap: 2026-11-19 03:00..05:00 (2 h)" in text
    assert "audit coverage (UTC hours): 2 h missing," in text
    assert "6 h provisional" in text and "sealed" not in text


def test_hours_are_provisional_until_a_clean_recheck_seals_them(gapped: Settings) -> None:
    before = coverage(gapped)
    assert [before[hour(n)] for n in range(10)] == (
        ["provisional"] * 3 + ["missing"] * 2 + ["provisional"] * 3 + ["pending"] * 2
    )

    found = recheck_audit(gapped, start=DAY, end=DAY + timedelta(hours=2))
    assert found.late_rows == 0 and found.missing_from_api == 0

    after = coverage(gapped)
    assert [after[hour(n)] for n in range(3)] == ["sealed", "sealed", "provisional"]
    assert "2 h sealed" in status_text(gapped)


def test_a_backfill_of_the_gap_turns_missing_into_provisional(gapped: Settings) -> None:
    backfill_audit(gapped, start=DAY + timedelta(hours=3), end=DAY + timedelta(hours=5))
    assert [coverage(gapped)[hour(n)] for n in range(8)] == ["provisional"] * 8
    assert "audit: no gaps" in status_text(gapped)


def test_every_window_records_its_query_and_the_digest_of_its_ids(gapped: Settings) -> None:
    ensure_views(gapped.warehouse_path, Lake(gapped.lake_uri))
    result = run_query(
        gapped.warehouse_path,
        "select api_query, id_set_digest, files, rows_written, api_total from ingest_runs order by window_start",
    )
    rows = [tuple(r.values()) for r in result.to_pylist()]
    assert len(rows) == 2
    for api_query, digest, files, rows_written, api_total in rows:
        assert api_query.startswith("GET /api/v1/audit/log?end=2026-11-19T0")
        assert "numberOfSamples=1000" in api_query and "offset" not in api_query
        [path] = files
        ids = pq.read_table(Path(gapped.lake_uri) / path, columns=["event_id"]).column("event_id")
        assert digest == id_set_digest(reversed(ids.to_pylist())) and rows_written == len(ids) == api_total


def test_the_digest_is_order_independent_and_set_sensitive() -> None:
    assert id_set_digest(["b", "a", "a"]) == id_set_digest(["a", "b"])
    assert id_set_digest(["a", "b"]) != id_set_digest(["a", "b", "c"])
    # sha256 of "a\nb\n": what `LC_ALL=C sort -u ids.txt | sha256sum` prints for those ids.
    assert id_set_digest(["b", "a"]) == "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2"


def test_run_records_written_before_the_coverage_columns_still_read(gapped: Settings) -> None:
    """A lake from an older release: its run records lack api_query and id_set_digest."""
    lake = Lake(gapped.lake_uri)
    for path in lake.list_files("_ops/ingest_runs", ".parquet"):
        full = Path(gapped.lake_uri) / path
        pq.write_table(pq.read_table(full).drop_columns(["api_query", "id_set_digest"]), full)
    rows = coverage(gapped)
    assert rows[hour(3)] == "missing" and rows[hour(0)] == "provisional"
    result = run_query(
        gapped.warehouse_path, "select count(*) as n, count(id_set_digest) as d from ingest_runs"
    )
    assert result.to_pylist() == [{"n": 2, "d": 0}]


def test_late_rows_unseal_an_hour_until_the_next_clean_recheck(
    gapped: Settings, fake: FakeControlPlane
) -> None:
    recheck_audit(gapped, start=DAY, end=DAY + timedelta(hours=2))
    assert coverage(gapped)[hour(1)] == "sealed"

    late = fake.simulator.add_rows(2, hour(1) + timedelta(minutes=10), hour(1) + timedelta(minutes=20))
    found = recheck_audit(gapped, start=DAY, end=DAY + timedelta(hours=2))
    assert found.late_rows == len(late) == 2
    assert [coverage(gapped)[hour(n)] for n in range(2)] == ["provisional", "provisional"]

    recheck_audit(gapped, start=DAY, end=DAY + timedelta(hours=2))
    assert [coverage(gapped)[hour(n)] for n in range(2)] == ["sealed", "sealed"]
