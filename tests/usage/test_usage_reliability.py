"""The workload and org syncs under a hostile server: what is stored still equals the tenant's truth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from runai_extract.core.errors import LedgerError
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.ledger.verify import verify_lake
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.workloads import sync_workloads
from tests.usage.conftest import rows, settings_for, usage_config, views
from transforms.storage import Lake


def test_a_storm_of_errors_resets_and_short_tokens_changes_nothing_stored(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Injected: 25% of data requests 429/5xx (Retry-After), 5% connections cut mid-body, tokens
    living 3 s. Checked: every workload with its final phase and deletion, and GPU-hours equal the
    truth; retries happened; a second run with nothing new stores nothing."""
    faults = FaultConfig(error_rate=0.25, reset_rate=0.05, token_lifetime_s=3)
    fake = start_fake(usage_config(faults=faults, events_per_day=250))
    settings = settings_for(fake, tmp_path, max_attempts=15)
    assert sync_org(settings).status == "committed"
    first = sync_workloads(settings)
    fake.simulator.advance(timedelta(hours=2))
    second = sync_workloads(settings)
    assert first.status == second.status == "committed"
    assert first.retries + second.retries > 0 and sum(fake.injected.values()) > 0

    con = views(settings)
    stored = {w: (p, d) for w, p, d in rows(con, "select workload_id, phase, deleted_at from workloads")}
    truth = {w["workload_id"]: (w["phase"], w["deleted_at"]) for w in fake.simulator.workload_truth()}
    assert stored == truth
    total = rows(con, "select sum(gpu_hours) from usage_gpu_hours_daily")[0][0]
    assert abs(total - sum(fake.simulator.gpu_hours_truth().values())) < 1e-6 * total
    con.close()
    assert sync_workloads(settings).snapshots_written == 0


def test_a_run_that_dies_after_writing_history_is_repaired_by_the_next(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Injected: the day's snapshot partition cannot be written (a file sits where its directory
    should be), so the run fails after history and events were stored. Checked: the watermark did not move, the run
    record says failed, and once storage is fixed the next run stores every workload; the history
    the failed run wrote is kept and not stored twice."""
    fake = start_fake(usage_config(events_per_day=200))
    settings = settings_for(fake, tmp_path)
    blocker = tmp_path / "lake" / "workload_snapshots" / f"observed_date={fake.simulator.sim_now.date()}"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")
    with pytest.raises(LedgerError, match=r"cannot (create|write) .*workload_snapshots/observed_date="):
        sync_workloads(settings)
    assert not (tmp_path / "lake" / "_state" / "workloads.json").exists()
    assert list((tmp_path / "lake" / "workload_history").rglob("*.parquet"))

    blocker.unlink()
    repaired = sync_workloads(settings)
    assert repaired.status == "committed"
    con = views(settings)
    assert rows(con, "select count(*) from workloads")[0][0] == len(fake.simulator.workload_truth())
    assert rows(con, "select status from ingest_runs where stream = 'workloads' order by started_at") == [
        ("failed",),
        ("committed",),
    ]
    raw, distinct = rows(
        con,
        "select (select count(*) from src_workload_history), (select count(*) from workload_phase_history)",
    )[0]
    phases = rows(con, "select count(*) from src_workload_history where record_type = 'PhaseUpdate'")[0][0]
    # The failed run's history stays; the repair run stores only records it does not have yet.
    assert raw > phases == distinct > 0
    # Its files were manifested too, so verify accounts for every file of the stream.
    assert [r.problems for r in verify_lake(Lake(settings.lake_uri), ["workloads"], None)] == [[]]
