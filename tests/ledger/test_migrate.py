"""A lake written before Delta Lake becomes Delta tables in place, checked against its old manifests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runai_extract.core.errors import StateError
from runai_extract.ledger.migrate import migrate
from runai_extract.ledger.verify import verify_lake
from runai_extract.ledger.watermarks import StateStore
from tests.lake_reading import stored_audit_ids
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.schemas import AUDIT_EVENTS
from transforms.storage import Lake
from transforms.tables import Tables
from warehouse.build import build_views

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def _events(prefix: str, start: datetime, n: int) -> pa.Table:
    rows = [
        {
            "event_id": f"{prefix}-{i}",
            "event_time": start + timedelta(minutes=i),
            "action": "create",
            "event_id_derived": False,
            "ingest_run_id": "old-run",
            "ingested_at": start,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=AUDIT_EVENTS)


def old_lake(root: Path) -> Path:
    """The pre-Delta layout: day files, a watermark file and an old manifest chain naming the files."""
    files = {
        "audit_events/event_date=2026-11-01/part-a.parquet": _events("a", DAY, 5),
        # written by a release from before the legacy-API columns existed
        "audit_events/event_date=2026-11-02/part-b.parquet": _events(
            "b", DAY + timedelta(days=1), 3
        ).drop_columns(["api_flavour", "extra_fields"]),
    }
    entries = []
    for rel, table in files.items():
        path = root / rel
        path.parent.mkdir(parents=True)
        pq.write_table(table, path)
        entries.append(
            {"path": rel, "rows": table.num_rows, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        )
    (root / "_manifests" / "audit").mkdir(parents=True)
    (root / "_manifests" / "audit" / "00000001.json").write_bytes(orjson.dumps({"seq": 1, "files": entries}))
    (root / "_state").mkdir()
    state = {
        "stream": "audit",
        "watermark": "2026-11-02T06:00:00.000000Z",
        "updated_at": "x",
        "run_id": "old",
    }
    (root / "_state" / "audit.json").write_bytes(orjson.dumps(state))
    return root


def test_old_files_become_the_tables_files_with_their_watermark_and_verify_clean(tmp_path: Path) -> None:
    lake = old_lake(tmp_path / "lake")
    report = migrate(Lake(str(lake)))
    assert report.tables == {"audit_events": 2}
    assert sorted(stored_audit_ids(lake)) == sorted(
        [f"a-{i}" for i in range(5)] + [f"b-{i}" for i in range(3)]
    )
    state = StateStore(Lake(str(lake))).read("audit")
    assert state is not None and state.watermark == datetime(2026, 11, 2, 6, tzinfo=UTC)
    assert [(r.stream, r.problems) for r in verify_lake(Lake(str(lake)), None, None)] == [("audit", [])]
    assert (lake / "_manifests" / "audit" / "00000001.json").exists()  # kept until the user removes it
    again = migrate(Lake(str(lake)))
    assert again.tables == {} and "audit_events" in again.skipped


def test_views_read_migrated_files_of_older_columns_beside_new_ones(tmp_path: Path) -> None:
    """The old layout's files keep the columns of their day; the views reconcile them by name."""
    lake = Lake(str(old_lake(tmp_path / "lake")))
    migrate(lake)
    build_views(tmp_path / "warehouse.duckdb", lake)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    rows = con.sql(
        "select event_date::varchar, api_flavour, count(*) from audit_events group by all order by 1"
    ).fetchall()
    assert rows == [("2026-11-01", "audit_log", 5), ("2026-11-02", "audit_log", 3)]
    assert Tables(lake).stamp_uniform(AUDIT_EVENTS_TABLE) is False  # until the old day is rewritten


def test_a_file_that_no_longer_matches_the_old_manifest_stops_the_migration(tmp_path: Path) -> None:
    lake = old_lake(tmp_path / "lake")
    victim = lake / "audit_events" / "event_date=2026-11-01" / "part-a.parquet"
    pq.write_table(_events("x", DAY, 5), victim)
    with pytest.raises(StateError, match="differ from the old manifests"):
        migrate(Lake(str(lake)))
    assert not (lake / "audit_events" / "_delta_log").exists()
