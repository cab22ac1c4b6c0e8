"""Corrupt records inside otherwise healthy pages, over real loopback HTTP, checked against ground truth.

Injected (``FaultConfig.bad_record_rate``, see runai_extract/fake/badrecords.py): a fraction of
rows replaced by corrupt variants chosen by a hash of their id, so the simulator knows which ids
were served corrupt and how (``simulator.corrupt_ids``, ``simulator.served_rows``).

Checked: the run never crashes; good rows are all kept; rows missing required fields or with a
string status code are quarantined with a reason naming the field (``quarantine`` view) and
counted in ``ingest_runs.quarantined``; a numeric tenant_id is stored as a string; Unicode, emoji,
right-to-left marks and NUL round-trip exactly; SQL quotes and ``../`` stay data (no file appears
outside the lake, the views still answer); a 10 MB metadata map is stored or quarantined, never
a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from runai_extract.audit.sync import sync_audit
from runai_extract.core.settings import Settings
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.fake.badrecords import (
    BAD_RECORD_KINDS,
    HUGE_METADATA_BYTES,
    PATH_NAME,
    SQL_NAME,
    UNICODE_NAME,
    UNKNOWN_ACTION,
)
from tests.conftest import FAKE_NOW, fake_config, settings_for
from tests.lake_reading import live_files
from transforms.storage import Lake
from warehouse.build import ensure_views
from warehouse.query import run_query

NOW = FAKE_NOW + timedelta(minutes=5)
US = timedelta(microseconds=1)
QUARANTINED_KINDS = {"missing_required": ("subject", "action"), "status_string": ("http_status_code",)}
NAME_KINDS = {"unicode_name": UNICODE_NAME, "sql_quote": SQL_NAME, "path_segment": PATH_NAME}


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def query(settings: Settings, sql: str, params: list[object] | None = None) -> list[dict[str, object]]:
    return run_query(settings.warehouse_path, sql, params).to_pylist()


@pytest.fixture
def corrupt_run(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> tuple[FakeControlPlane, Settings, dict[str, str], object]:
    """One sync of a 1,200-row day with 10% corrupt rows of every kind but the 10 MB map."""
    kinds = tuple(k for k in BAD_RECORD_KINDS if k != "huge_metadata")
    faults = FaultConfig(bad_record_rate=0.1, bad_record_kinds=kinds)
    fake = start_fake(fake_config(days=1, events_per_day=1200, faults=faults))
    home = tmp_path / "home"
    settings = settings_for(fake, home, page_size=250, initial_lookback=timedelta(days=2))
    summary = sync_audit(settings, now=NOW)
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    corrupt = fake.simulator.corrupt_ids(NOW - settings.initial_lookback, NOW - settings.settle_lag - US)
    assert corrupt == fake.simulator.served_corrupt(), "ground truth and what was served disagree"
    assert set(corrupt.values()) == set(kinds), "every kind should occur at this size"
    return fake, settings, corrupt, summary


def test_good_rows_kept_and_bad_ones_quarantined_with_reasons(
    corrupt_run: tuple[FakeControlPlane, Settings, dict[str, str], object],
) -> None:
    fake, settings, corrupt, _ = corrupt_run
    window = (NOW - settings.initial_lookback, NOW - settings.settle_lag - US)
    expected_quarantine = {i for i, kind in corrupt.items() if kind in QUARANTINED_KINDS}
    stored = {r["event_id"] for r in query(settings, "select event_id from audit_events")}
    assert stored == fake.simulator.audit_ids(*window) - expected_quarantine

    rows = query(settings, "select record_id, reason from quarantine")
    assert {r["record_id"] for r in rows} == expected_quarantine
    assert len(rows) == len(expected_quarantine), "a record was quarantined twice"
    for row in rows:
        for field in QUARANTINED_KINDS[corrupt[str(row["record_id"])]]:
            assert field in str(row["reason"]), row
    counted = query(settings, "select sum(quarantined) as n from ingest_runs")
    assert counted == [{"n": len(expected_quarantine)}]
    print(
        f"bad records: {len(corrupt)} corrupt of {len(fake.simulator.audit_ids(*window))}; "
        f"{len(expected_quarantine)} quarantined, {len(stored)} stored"
    )


def test_numeric_tenant_ids_are_stored_as_strings_and_unknown_enums_kept(
    corrupt_run: tuple[FakeControlPlane, Settings, dict[str, str], object],
) -> None:
    fake, settings, corrupt, summary = corrupt_run
    numeric = sorted(i for i, kind in corrupt.items() if kind == "tenant_number")
    rows = query(
        settings, "select distinct tenant_id from audit_events where list_contains(?, event_id)", [numeric]
    )
    assert rows == [{"tenant_id": fake.config.tenant_id}]
    assert isinstance(rows[0]["tenant_id"], str)

    unknown = sorted(i for i, kind in corrupt.items() if kind == "unknown_enum")
    actions = query(
        settings, "select distinct action from audit_events where list_contains(?, event_id)", [unknown]
    )
    assert actions == [{"action": UNKNOWN_ACTION}]
    assert any(UNKNOWN_ACTION in key for key in summary.drift()), summary.drift()  # type: ignore[attr-defined]


def test_hostile_names_round_trip_exactly_and_stay_data(
    corrupt_run: tuple[FakeControlPlane, Settings, dict[str, str], object], tmp_path: Path
) -> None:
    fake, settings, corrupt, _ = corrupt_run
    served = {row["id"]: row for row in fake.simulator.served_rows(NOW - settings.initial_lookback, NOW)}
    for kind, name in NAME_KINDS.items():
        ids = sorted(i for i, k in corrupt.items() if k == kind)
        assert ids, kind
        rows = query(
            settings,
            "select event_id, subject, entity_name, url from audit_events "
            "where list_contains(?, event_id) order by event_id",
            [ids],
        )
        assert [r["event_id"] for r in rows] == ids
        for row in rows:
            wire = served[row["event_id"]]
            assert row["subject"] == wire["subject"] == name
            assert row["entity_name"] == wire["entity_name"] == name
            assert row["url"] == wire["url"]
    assert "\x00" in UNICODE_NAME and "\u202e" in UNICODE_NAME and "🚀" in UNICODE_NAME

    # Nothing was created outside the ledger home, and the home holds only the lake and the warehouse.
    outside = all_files(tmp_path) - {f for f in all_files(tmp_path) if f.startswith("home" + os.sep)}
    assert outside == set(), outside
    top = {Path(f).parts[1] for f in all_files(tmp_path)}
    assert top <= {"lake", settings.warehouse_path.name, settings.warehouse_path.name + ".wal"}, top
    assert not any("passwd" in f or "drop table" in f for f in all_files(tmp_path))
    # The hostile text did not reach SQL: every view still answers and the table is intact.
    for view in ("audit_events", "compliance_entity_changes", "compliance_failed_actions", "quarantine"):
        assert query(settings, f"select count(*) as n from {view}")[0]["n"] is not None  # noqa: S608
    assert query(settings, "select count(*) as n from audit_events")[0]["n"] == sum(
        pq.read_metadata(f).num_rows for f in live_files(settings.home / "lake")
    )


def test_ten_megabyte_metadata_map_is_stored_or_quarantined(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """A ~10 MB ``metadata`` map on a few rows: the sync finishes, and each such row is either
    stored with its whole map or quarantined with a reason mentioning metadata."""
    faults = FaultConfig(bad_record_rate=0.01, bad_record_kinds=("huge_metadata",))
    fake = start_fake(fake_config(days=1, events_per_day=300, faults=faults))
    settings = settings_for(fake, tmp_path, page_size=100, initial_lookback=timedelta(days=2))
    summary = sync_audit(settings, now=NOW)
    huge = sorted(fake.simulator.corrupt_ids())
    assert huge, "the seed should give at least one huge row"
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    stored = query(
        settings, "select event_id, metadata from audit_events where list_contains(?, event_id)", [huge]
    )
    quarantined = query(
        settings, "select record_id, reason from quarantine where list_contains(?, record_id)", [huge]
    )
    kept, rejected = {str(r["event_id"]) for r in stored}, {str(r["record_id"]) for r in quarantined}
    assert kept | rejected == set(huge) and not kept & rejected, "a huge row was lost or doubled"
    served = {row["id"]: row for row in fake.simulator.served_rows()}
    for row in stored:
        metadata = dict(row["metadata"])  # type: ignore[call-overload]
        assert metadata == served[row["event_id"]]["metadata"], "the huge map was not stored whole"
        assert sum(len(k) + len(v) for k, v in metadata.items()) >= HUGE_METADATA_BYTES * 0.95
    for row in quarantined:
        assert "metadata" in str(row["reason"]), row
    assert summary.rows_new + len(quarantined) == fake.simulator.count()
    print(f"huge metadata: {len(stored)} stored, {len(quarantined)} quarantined of {len(huge)}")
