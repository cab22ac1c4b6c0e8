"""A workload whose history (or metrics) keeps failing: partial runs, then a loud failure naming it, and `status`."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from runai_extract.cli.status import print_status
from runai_extract.core.errors import LedgerError
from runai_extract.fake import FakeControlPlane
from runai_extract.stream_runner import raise_for_failures, run_usage
from tests.usage.conftest import settings_for, usage_config

HISTORY = re.compile(r"/api/v1/workloads/([^/]+)/history$")
METRICS = re.compile(r"/api/v1/workloads/([^/]+)/metrics$")


class OneBrokenWorkload(httpx.BaseTransport):
    """Forwards to the fake over loopback, but answers 500 (or ``status``) for one workload's
    history (or ``path``) once armed.

    The workload is the first asked for after arming, and stays the same after.
    """

    def __init__(self, path: re.Pattern[str] = HISTORY, status: int = 500) -> None:
        self._path, self._status = path, status
        self._upstream = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.armed = False
        self.broken: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        match = self._path.search(request.url.path)
        if self.armed and match:
            with self._lock:
                self.broken = self.broken or match.group(1)
            if match.group(1) == self.broken:
                return httpx.Response(self._status, json={"message": "Something went wrong."})
        return self._upstream.handle_request(request)

    def close(self) -> None:
        self._upstream.close()


def test_partial_runs_in_a_row_fail_naming_the_workload_and_status_shows_the_stall(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(usage_config(events_per_day=200))
    settings = settings_for(fake, tmp_path, max_attempts=1, stall_runs=2, stall_after=timedelta(days=365))
    transport = OneBrokenWorkload()
    transport.armed = True

    [first] = run_usage(settings, "workloads", transport=transport)
    assert first.status == "partial"
    raise_for_failures([first])  # one partial run is tolerated: the workload is retried next run

    [second] = run_usage(settings, "workloads", transport=transport)
    assert second.status == "stalled"
    assert transport.broken is not None
    with pytest.raises(
        LedgerError, match=rf"2 partial run\(s\) in a row .*without details: {transport.broken}"
    ):
        raise_for_failures([second])

    console = Console(record=True, width=400)
    print_status(settings, console)
    shown = console.export_text()
    assert "ALERT stalled: workloads: 2 partial run(s) in a row" in shown
    assert transport.broken in shown
    assert re.search(r"workloads: watermark .*days before unsynced records leave the API", shown) is None
    assert "workloads: never synced" in shown  # partial runs never moved the watermark


def test_a_partial_run_holding_back_an_old_watermark_fails_at_once(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(usage_config(events_per_day=200))
    settings = settings_for(fake, tmp_path, max_attempts=1, stall_runs=10, stall_after=timedelta(hours=1))
    transport = OneBrokenWorkload()
    [clean] = run_usage(settings, "workloads", transport=transport)
    assert clean.status == "committed"

    fake.simulator.advance(timedelta(hours=2))
    transport.armed = True
    [stuck] = run_usage(settings, "workloads", transport=transport)
    assert stuck.status == "stalled" and transport.broken is not None
    assert stuck.error is not None and "1 partial run(s) in a row (watermark " in stuck.error
    assert transport.broken in stuck.error


def test_partial_metrics_runs_in_a_row_fail_naming_the_workload(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(usage_config(events_per_day=200))
    settings = settings_for(
        fake,
        tmp_path,
        max_attempts=1,
        stall_runs=2,
        stall_after=timedelta(days=365),
        metrics_resolution=timedelta(minutes=5),
    )
    [workloads] = run_usage(settings, "workloads")
    assert workloads.status == "committed"
    # Metrics runs retry 5xx and fail on exhausting them; a refusal (4xx) of one workload is partial.
    transport = OneBrokenWorkload(METRICS, status=400)
    transport.armed = True

    [first] = run_usage(settings, "metrics", transport=transport)
    assert first.status == "partial" and transport.broken is not None
    raise_for_failures([first])  # one partial run is tolerated: the workload is read again next run

    [second] = run_usage(settings, "metrics", transport=transport)
    assert second.status == "stalled"
    with pytest.raises(
        LedgerError, match=rf"metrics {second.run_id}: .*2 partial run\(s\) in a row .*{transport.broken}"
    ):
        raise_for_failures([second])
