"""The GPU-efficiency views against the simulator's truth: allocated and utilised GPU-hours per
project-day within 0.5%, idle workloads exactly the planted idlers, quota hours as served."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from runai_extract.fake import FakeControlPlane
from runai_extract.stream_runner import run_usage
from tests.conftest import fake_config, settings_for
from tests.usage.conftest import rows, views

ACCURACY = 0.005  # the bound, per project-day
RESOLUTION = timedelta(minutes=5)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], tuple[FakeControlPlane, Path]]:
    """One tenant synced hourly three times (org, workloads, GPU metrics, quotas), shared by the module."""
    home = tmp_path_factory.mktemp("efficiency")
    fake = FakeControlPlane(fake_config(days=2, events_per_day=400, seed=23), port=0).start()
    settings = settings_for(fake, home, metrics_resolution=RESOLUTION, initial_lookback=timedelta(days=3))
    for step in range(3):
        if step:
            fake.simulator.advance(timedelta(hours=1))
        for summary in run_usage(settings, "usage"):
            assert summary.status == "committed", summary.to_dict()

    def get() -> tuple[FakeControlPlane, Path]:
        return fake, home

    yield get  # type: ignore[misc]
    fake.stop()


def test_allocated_and_utilised_gpu_hours_per_project_day_within_half_a_percent(
    synced: Callable[[], tuple[FakeControlPlane, Path]],
) -> None:
    fake, home = synced()
    con = views(settings_for(fake, home))
    got: dict[tuple[date, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for day, project, allocated, utilised, missing in rows(
        con,
        "select usage_date, project_id, allocated_gpu_hours, utilised_gpu_hours, gpu_hours_without_metrics "
        "from usage_gpu_efficiency_daily",
    ):
        got[(day, project)][0] += allocated
        got[(day, project)][1] += utilised
        got[(day, project)][2] += missing
    con.close()
    truth = {key: value for key, value in fake.simulator.gpu_efficiency_truth().items() if value[0] > 0}
    assert set(got) == set(truth)
    for key, (allocated, utilised) in truth.items():
        assert got[key][0] == pytest.approx(allocated, rel=ACCURACY), key
        assert got[key][1] == pytest.approx(utilised, rel=ACCURACY), key
        # Only runs shorter than a sample's spacing can have no sample at all.
        assert got[key][2] <= allocated * ACCURACY, key
    total_allocated = sum(value[0] for value in truth.values())
    total_utilised = sum(value[1] for value in truth.values())
    assert 0.2 < total_utilised / total_allocated < 0.9  # idle notebooks and hogs pull it down


def test_idle_workloads_are_exactly_the_planted_idlers(
    synced: Callable[[], tuple[FakeControlPlane, Path]],
) -> None:
    fake, home = synced()
    con = views(settings_for(fake, home))
    found = rows(
        con, "select workload_id, submitted_by, idle_hours, mean_utilisation from usage_idle_workloads"
    )
    watermark = rows(con, "select max(watermark) from watermarks where stream = 'metrics'")[0][0]
    con.close()
    truth = fake.simulator.idle_workloads_truth(watermark, RESOLUTION)
    assert truth, "the tenant has planted idle notebooks"
    assert {workload_id for workload_id, *_ in found} == truth
    submitters = {row["workload_id"]: row["submitted_by"] for row in fake.simulator.workload_truth()}
    for workload_id, submitted_by, idle_hours, utilisation in found:
        assert submitted_by == submitters[workload_id]
        assert idle_hours > 1 and utilisation < 5


def test_hourly_utilisation_and_quota_days(synced: Callable[[], tuple[FakeControlPlane, Path]]) -> None:
    fake, home = synced()
    con = views(settings_for(fake, home))
    hourly = rows(
        con,
        "select workload_type, gpus_allocated, mean_utilisation, p95_utilisation, mean_memory_bytes "
        "from workload_gpu_utilisation_hourly",
    )
    assert hourly and all(mean <= p95 + 1e-9 and memory > 0 for _, _, mean, p95, memory in hourly)
    quota = rows(
        con,
        "select project_id, usage_date, min_quota, max_quota, hours_over_quota, sampled_hours "
        "from project_quota_daily",
    )
    con.close()
    assert quota and all(sampled == pytest.approx(24.0) for *_, sampled in quota)
    assert any(low < high for _, _, low, high, _, _ in quota)  # a quota changed during a day
    assert any(over > 0 for *_, over, _ in quota)  # some project ran over its quota


def test_the_notebook_surface_gives_the_same_figures(
    synced: Callable[[], tuple[FakeControlPlane, Path]],
) -> None:
    from warehouse.analytics import Ledger

    fake, home = synced()
    settings = settings_for(fake, home)
    views(settings).close()
    ledger = Ledger(settings.warehouse_path)
    truth = fake.simulator.gpu_efficiency_truth()
    days = sorted({day for day, _ in truth})
    start, end = days[0], days[-1] + timedelta(days=1)
    per_project = ledger.gpu_efficiency(start, end, by="project")
    assert per_project["allocated_gpu_hours"].sum() == pytest.approx(
        sum(v[0] for v in truth.values()), rel=ACCURACY
    )
    assert per_project["utilised_gpu_hours"].sum() == pytest.approx(
        sum(v[1] for v in truth.values()), rel=ACCURACY
    )
    assert ((per_project["efficiency"] > 0) & (per_project["efficiency"] < 1)).all()
    idle = ledger.idle_workloads(start, end)
    assert set(idle["workload_id"]) and idle["idle_gpu_hours"].is_monotonic_decreasing
