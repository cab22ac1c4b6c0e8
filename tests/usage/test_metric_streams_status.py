"""`runai-ledger status` shows the metric streams like the others: watermark, last successful run,
retention risk and stalls, because metrics expire on the control plane."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from runai_extract.core.errors import LedgerError
from runai_extract.fake import FakeControlPlane
from runai_extract.stream_runner import raise_for_failures, run_usage
from tests.cli.test_cli import api_env, run_cli
from tests.conftest import FAKE_NOW
from tests.usage.conftest import settings_for, usage_config

METRICS = re.compile(r"/api/v1/workloads/([^/]+)/metrics$")


def test_status_shows_the_metric_streams_last_successful_run_and_retention_risk(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(usage_config(events_per_day=200))
    env = {**api_env(fake), "RUNAI_LEDGER_METRICS_RESOLUTION_S": "900"}
    before = run_cli("status", home=tmp_path)
    assert before.returncode == 0, before.stderr
    assert "metrics: never synced" in before.stdout and "quotas: never synced" in before.stdout

    synced = run_cli("sync", "usage", env=env, home=tmp_path)
    assert synced.returncode == 0, synced.stderr
    metrics_run = re.search(r"GPU metrics sync (\S+):", synced.stdout)
    quotas_run = re.search(r"quota series sync (\S+):", synced.stdout)
    assert metrics_run and quotas_run, synced.stdout

    # The watermarks are the fake's server time (FAKE_NOW), days ago: a retention five days longer
    # than their age is inside the 10-day margin, a risk the status must name for both streams.
    kept = (datetime.now(UTC) - FAKE_NOW).days + 5
    retention = f"audit=90,workloads=90,metrics={kept}"
    status = run_cli("status", env={"RUNAI_LEDGER_RETENTION_DAYS": retention}, home=tmp_path)
    assert status.returncode == 0, status.stderr
    shown = status.stdout
    for stream, run in (("metrics", metrics_run.group(1)), ("quotas", quotas_run.group(1))):
        line = re.search(rf"^{stream}: watermark {FAKE_NOW:%Y-%m-%d}.*$", shown, re.MULTILINE)
        assert line, shown
        assert f"last successful run {run} (" in line.group(0)
        assert re.search(r"; \d+\.\d days before unsynced records leave the API$", line.group(0))
        assert f"ALERT retention lag: {stream}: watermark" in shown
        assert f"run `runai-ledger sync {stream}` now" in shown


class OneBrokenMetricsSeries(httpx.BaseTransport):
    """Forwards to the fake over loopback, but refuses one workload's metrics (400) every time."""

    def __init__(self) -> None:
        self._upstream = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.broken: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        match = METRICS.search(request.url.path)
        if match:
            with self._lock:
                self.broken = self.broken or match.group(1)
            if match.group(1) == self.broken:
                return httpx.Response(400, json={"code": 400, "message": "Invalid request parameter"})
        return self._upstream.handle_request(request)

    def close(self) -> None:
        self._upstream.close()


def test_metrics_runs_that_keep_failing_a_workload_stall_loudly_and_status_says_so(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(usage_config(events_per_day=200))
    settings = settings_for(
        fake, tmp_path, max_attempts=1, stall_runs=2, metrics_resolution=timedelta(seconds=900)
    )
    transport = OneBrokenMetricsSeries()
    first = {s.stream: s for s in run_usage(settings, "usage", transport=transport)}
    assert first["metrics"].status == "partial" and first["workloads"].status == "committed"
    raise_for_failures(list(first.values()))  # one partial run is tolerated: retried next run

    [second] = run_usage(settings, "metrics", transport=transport)
    assert second.status == "stalled" and transport.broken is not None
    with pytest.raises(LedgerError, match=rf"metrics .*2 partial run\(s\) in a row .*{transport.broken}"):
        raise_for_failures([second])

    env = {"RUNAI_LEDGER_STALL_RUNS": "2"}
    status = run_cli("status", env=env, home=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "ALERT stalled: metrics: 2 partial run(s) in a row (no watermark yet)" in status.stdout
    assert transport.broken in status.stdout
    assert "metrics: never synced" in status.stdout  # partial runs never moved the watermark
    assert re.search(r"^quotas: watermark .*last successful run", status.stdout, re.MULTILINE)
