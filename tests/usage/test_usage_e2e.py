"""Workloads and org units end to end against the fake control plane, compared with its ground truth."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from runai_extract.fake import FakeControlPlane
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.workloads import sync_workloads
from tests.usage.conftest import GPU_HOURS_REL, lake_files, rows, settings_for, views


def _sync(fake: FakeControlPlane, home: Path) -> None:
    settings = settings_for(fake, home)
    assert sync_org(settings).status == "committed"
    assert sync_workloads(settings).status == "committed"


def _usage_by_project_day(home: Path, fake: FakeControlPlane) -> dict[tuple[date, str], float]:
    con = views(settings_for(fake, home))
    got: dict[tuple[date, str], float] = defaultdict(float)
    for day, project, hours in rows(
        con, "select usage_date, project_id, gpu_hours from usage_gpu_hours_daily"
    ):
        got[(day, project)] += hours
    con.close()
    return dict(got)


def _assert_close(got: dict[tuple[date, str], float], truth: dict[tuple[date, str], float]) -> None:
    assert set(got) == {key for key, hours in truth.items() if hours > 0}
    for key, hours in truth.items():
        if hours > 0:
            assert got[key] == pytest.approx(hours, rel=GPU_HOURS_REL), key


def test_gpu_hours_and_final_states_equal_the_simulators_truth(
    usage_fake: FakeControlPlane, tmp_path: Path
) -> None:
    sim = usage_fake.simulator
    _sync(usage_fake, tmp_path)
    for _ in range(3):  # three hourly runs: new workloads, phase changes, deletions in between
        sim.advance(timedelta(hours=1))
        _sync(usage_fake, tmp_path)
    _assert_close(_usage_by_project_day(tmp_path, usage_fake), sim.gpu_hours_truth())

    con = views(settings_for(usage_fake, tmp_path))
    stored = {
        wid: (phase, deleted)
        for wid, phase, deleted in rows(con, "select workload_id, phase, deleted_at from workloads")
    }
    truth = sim.workload_truth()
    assert len(stored) == len(truth)
    for workload in truth:
        phase, deleted_at = stored[workload["workload_id"]]
        assert phase == workload["phase"], workload["workload_id"]
        assert deleted_at == workload["deleted_at"]
    assert any(w["deleted_at"] for w in truth), "the tenant should have deleted workloads"
    sources = dict(rows(con, "select gpu_source, count(*) from workload_gpu_intervals group by all"))
    assert sources.get("observed", 0) > 0 and sources.get("requested", 0) > 0


def test_a_rerun_stores_nothing_and_an_incremental_run_costs_what_changed(
    usage_fake: FakeControlPlane, tmp_path: Path
) -> None:
    settings = settings_for(usage_fake, tmp_path)
    first = sync_workloads(settings)
    files = lake_files(tmp_path)
    again = sync_workloads(settings)
    assert (again.changed, again.snapshots_written, again.history_rows, again.event_rows) == (0, 0, 0, 0)
    assert lake_files(tmp_path) == files
    # One page for each of active, created, phase_changed, deleted (and a token for the new client).
    assert again.requests - again.token_requests == 4

    usage_fake.simulator.advance(timedelta(hours=1))
    later = sync_workloads(settings)
    expected_changes = usage_fake.simulator.workload_changes_since(first.observed_at or datetime.now(UTC))
    assert later.changed == expected_changes > 0
    # Four list pages plus history and events for each changed workload: nothing per old workload.
    assert later.requests - later.token_requests == 4 + 2 * later.changed
    assert later.watermark_after == usage_fake.simulator.sim_now


def test_a_renamed_project_reports_under_the_name_it_had_at_the_time(
    usage_fake: FakeControlPlane, tmp_path: Path
) -> None:
    sim = usage_fake.simulator
    _sync(usage_fake, tmp_path)
    for hours in (6, 7, 12):  # syncs across the renames the fake makes after `now` (+6 h, +12 h)
        sim.advance(timedelta(hours=hours))
        _sync(usage_fake, tmp_path)
    renames = [
        r for r in sim.org_truth()["renames"] if r["kind"] == "project" and r["at"] > usage_fake.config.now
    ]
    assert renames, "the simulated tenant renames a project after now"
    rename = renames[0]
    con = views(settings_for(usage_fake, tmp_path))
    history = rows(
        con,
        "select name, valid_from, valid_to from projects_history where project_id = ? order by version_number",
        rename["id"],
    )
    # Other versions may sit between (its department's rename changes the parent name it carries).
    names = [name for i, (name, _, _) in enumerate(history) if i == 0 or history[i - 1][0] != name]
    assert names == [rename["old"], rename["new"]]
    renamed = next(i for i, version in enumerate(history) if version[0] == rename["new"])
    assert history[renamed - 1][2] == history[renamed][1] == rename["at"]
    before = rows(
        con,
        "select distinct project_name from usage_gpu_hours_daily where project_id = ? and usage_date < ?",
        rename["id"],
        rename["at"].date(),
    )
    after = rows(
        con,
        "select distinct project_name from usage_gpu_hours_daily where project_id = ? and usage_date >= ?",
        rename["id"],
        rename["at"].date(),
    )
    assert before == [(rename["old"],)] and after == [(rename["new"],)]
    current = rows(con, "select name from projects where project_id = ?", rename["id"])
    assert current == [(rename["new"],)]
    con.close()
    _assert_close(_usage_by_project_day(tmp_path, usage_fake), sim.gpu_hours_truth())


def test_backfill_reads_the_workloads_created_in_a_range(
    usage_fake: FakeControlPlane, tmp_path: Path
) -> None:
    settings = settings_for(usage_fake, tmp_path)
    end = usage_fake.simulator.sim_now
    start = end - timedelta(days=1)
    summary = sync_workloads(settings, created_between=(start, end))
    assert summary.status == "committed" and summary.watermark_after is None
    con = views(settings)
    stored = {wid for (wid,) in rows(con, "select workload_id from workloads")}
    expected = {
        w["workload_id"] for w in usage_fake.simulator.workload_truth() if start <= w["created_at"] <= end
    }
    assert stored == expected and expected
