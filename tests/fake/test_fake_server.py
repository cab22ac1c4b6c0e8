"""Lifecycle of the loopback server: ports, start/stop, the request log, the blocking CLI mode."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from runai_extract.fake import FakeConfig, FakeControlPlane

AUDIT = "/api/v1/audit/log"


def test_port_zero_picks_free_ports_for_concurrent_planes(
    start_plane: Callable[..., FakeControlPlane],
) -> None:
    first, second = start_plane(days=1, events_per_day=10), start_plane(days=1, events_per_day=10)
    assert first.base_url.startswith("http://127.0.0.1:") and first.port != second.port
    for plane in (first, second):
        assert httpx.get(plane.base_url + "/nowhere").status_code == 404


def test_stop_closes_the_port_and_is_idempotent() -> None:
    plane = FakeControlPlane(FakeConfig(days=1, events_per_day=10)).start()
    with pytest.raises(RuntimeError):
        plane.start()
    url = plane.base_url
    plane.stop()
    plane.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + AUDIT)


def test_base_url_needs_a_started_plane() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = FakeControlPlane(FakeConfig(days=1, events_per_day=10)).base_url


def test_request_log_records_requests_but_no_secrets(
    start_plane: Callable[..., FakeControlPlane], client_for: Callable[[FakeControlPlane], httpx.Client]
) -> None:
    plane = start_plane(days=1, events_per_day=10)
    client = client_for(plane)
    client.get(
        AUDIT, params={"start": "2025-06-03T00:00:00Z", "end": "2025-06-03T12:00:00Z", "filterBy": "a==b"}
    )
    token_call, audit_call = plane.request_log
    assert (token_call.method, token_call.path, token_call.status) == ("POST", "/api/v1/token", 200)
    assert (audit_call.method, audit_call.path, audit_call.status) == ("GET", AUDIT, 400)
    assert audit_call.query == {
        "start": "2025-06-03T00:00:00Z",
        "end": "2025-06-03T12:00:00Z",
        "filterBy": "a==b",
    }
    assert token_call.at <= audit_call.at
    assert plane.requests_to(AUDIT) == 1 and plane.requests_to(AUDIT, "POST") == 0
    logged = repr(plane.request_log)
    assert plane.config.client_secret not in logged and "Bearer" not in logged
    assert plane.config.client_secret not in repr(plane.config)


def test_config_rejects_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone"):
        FakeConfig(now=datetime(2025, 6, 3, 12, 0))


SERVE = (
    "from datetime import UTC, datetime\n"
    "from runai_extract.fake import FakeConfig, serve_forever\n"
    "serve_forever(FakeConfig(days=1, events_per_day=50, now=datetime(2025, 6, 3, tzinfo=UTC)), '127.0.0.1', 0)\n"
)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_prints_its_url_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:"), line
        assert httpx.get(base_url + AUDIT, timeout=10).status_code == 401
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
