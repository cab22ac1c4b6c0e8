"""GPU metrics and quota series end to end against the fake: incremental, paged by time,
stored exactly once, and an expired span reported as a gap."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from runai_extract.fake import FakeConfig, FakeControlPlane
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.quota_metrics import sync_quota_metrics
from runai_extract.usage.workload_metrics import sync_workload_metrics
from runai_extract.usage.workloads import sync_workloads
from tests.conftest import fake_config, settings_for
from transforms.catalog import (
    INGEST_RUNS_TABLE,
    METRIC_FETCHES_TABLE,
    ORG_UNIT_METRIC_SAMPLES_TABLE,
    WORKLOAD_METRIC_SAMPLES_TABLE,
)
from transforms.storage import Lake
from transforms.tables import Tables

FIVE_MINUTES = timedelta(minutes=5)


def _config(**changes: Any) -> FakeConfig:
    return replace(fake_config(days=1, events_per_day=300, seed=23), **changes)


def _samples(home: Path) -> list[tuple[str, str, str, datetime]]:
    table = Tables(Lake(str(home / "lake"))).read(
        WORKLOAD_METRIC_SAMPLES_TABLE, ["workload_id", "metric", "labels", "sample_time"]
    )
    return list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


def _metric_requests(fake: FakeControlPlane) -> list[dict[str, str]]:
    return [r.query for r in fake.request_log if r.path.endswith("/metrics")]


def test_running_workloads_are_read_since_the_last_fetch_and_finished_ones_once(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(_config())
    settings = settings_for(fake, tmp_path, metrics_resolution=FIVE_MINUTES)
    sync_org(settings)
    sync_workloads(settings)
    first = sync_workload_metrics(settings)
    assert first.status == "committed" and first.samples_new > 0 and not first.gaps
    assert first.watermark_after == fake.simulator.sim_now  # aligned: now is a whole hour
    # Paged by time: no request asks for more than 1000 samples, every instant on the 5-minute grid.
    requests = _metric_requests(fake)
    assert requests and max(int(q["numberOfSamples"]) for q in requests) <= 1000
    assert all(q["start"][14:] in {f"{m:02d}:00.000Z" for m in range(0, 60, 5)} for q in requests)

    fake.clear_request_log()
    again = sync_workload_metrics(settings)  # nothing new on the server's clock: nothing asked twice
    assert again.samples_new == 0 and _metric_requests(fake) == []

    fake.simulator.advance(timedelta(hours=2))
    sync_workloads(settings)
    fake.clear_request_log()
    later = sync_workload_metrics(settings)
    asked = {r.path.split("/")[4] for r in fake.request_log if r.path.endswith("/metrics")}
    truth = {row["workload_id"]: row for row in fake.simulator.workload_truth()}
    two_hours_ago = fake.simulator.sim_now - timedelta(hours=2)
    # Only what ran in the last two hours (running now, or finished since) was asked for.
    for workload_id in asked:
        completed = truth[workload_id]["completed_at"]
        assert completed is None or completed >= two_hours_ago - FIVE_MINUTES, workload_id
    assert later.samples_new > 0

    samples = _samples(tmp_path)
    assert len(samples) == len(set(samples))  # exactly once per (series, timestamp)
    runs = Tables(Lake(str(tmp_path / "lake"))).read(
        INGEST_RUNS_TABLE, ["stream", "window_start", "window_end"]
    )
    windows = sorted(
        (start, end)
        for stream, start, end in zip(*(runs.column(c).to_pylist() for c in runs.column_names), strict=True)
        if stream == "metrics"
    )
    assert all(earlier[1] == later[0] for earlier, later in pairwise(windows))
    finished_then = {
        w for w, row in truth.items() if row["completed_at"] and row["completed_at"] < two_hours_ago
    }
    fake.clear_request_log()
    sync_workload_metrics(settings)
    assert not finished_then & {r.path.split("/")[4] for r in fake.request_log if r.path.endswith("/metrics")}


def test_a_lost_fetch_log_refetches_without_storing_anything_twice(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """A run that stored samples and died before logging its fetches: the rerun asks again, stores nothing new."""
    fake = start_fake(_config())
    settings = settings_for(fake, tmp_path, metrics_resolution=FIVE_MINUTES)
    sync_org(settings)
    sync_workloads(settings)
    first = sync_workload_metrics(settings)
    before = _samples(tmp_path)
    shutil.rmtree(tmp_path / "lake" / METRIC_FETCHES_TABLE.name)
    rerun = sync_workload_metrics(settings)
    assert rerun.status == "committed" and rerun.requests > 1
    assert rerun.samples_new == 0 and sorted(_samples(tmp_path)) == sorted(before)
    assert first.samples_new == len(before)


def test_samples_past_the_metrics_retention_are_a_reported_gap(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(_config(days=3, metrics_retention_days=1))
    settings = settings_for(fake, tmp_path, metrics_resolution=FIVE_MINUTES, retention="metrics=1")
    sync_org(settings)
    sync_workloads(settings)
    summary = sync_workload_metrics(settings)
    assert summary.gaps, "workloads that ran more than a day ago have expired samples"
    assert all("past the metrics retention" in gap for gap in summary.gaps)
    log = Tables(Lake(str(tmp_path / "lake"))).read(METRIC_FETCHES_TABLE, ["status", "window_end"])
    gaps = log.filter(pc.equal(log.column("status"), "gap"))
    edge = fake.simulator.sim_now - timedelta(days=1)
    assert gaps.num_rows == len(summary.gaps)
    assert max(gaps.column("window_end").to_pylist()) <= edge + 2 * FIVE_MINUTES
    oldest = min(sample[3] for sample in _samples(tmp_path))
    assert oldest >= edge  # nothing stored from before the retention edge


def test_quota_series_are_read_a_closed_day_at_a_time(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(_config())
    settings = settings_for(fake, tmp_path, initial_lookback=timedelta(days=2))
    sync_org(settings)
    first = sync_quota_metrics(settings)
    midnight = fake.simulator.sim_now.replace(hour=0)
    assert first.status == "committed" and first.fetched_until == midnight
    lake = Lake(str(tmp_path / "lake"))
    table = Tables(lake).read(
        ORG_UNIT_METRIC_SAMPLES_TABLE, ["unit_kind", "unit_id", "metric", "sample_time"]
    )
    per_series = Counter(zip(*(table.column(c).to_pylist() for c in ("unit_id", "metric")), strict=True))
    assert max(per_series.values()) == 2 * 288  # two closed days, one sample every 5 minutes
    assert max(table.column("sample_time").to_pylist()) == midnight - timedelta(minutes=5)
    assert sync_quota_metrics(settings).samples_new == 0  # the same day: nothing closed since
    fake.simulator.advance(timedelta(hours=13))  # past the next midnight
    assert sync_quota_metrics(settings).samples_new == len(per_series) * 288
