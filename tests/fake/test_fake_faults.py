"""Each fault knob, observed the way a client would notice it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from runai_extract.fake import FakeControlPlane, FaultConfig

AUDIT = "/api/v1/audit/log"
WINDOW = {"start": "2025-06-02T12:00:00Z", "end": "2025-06-03T12:00:00Z"}

Start = Callable[..., FakeControlPlane]
ClientFor = Callable[[FakeControlPlane], httpx.Client]


def _always(status: int, **knobs: object) -> FaultConfig:
    return FaultConfig(error_rate=1.0, error_statuses=(status,), **knobs)  # type: ignore[arg-type]


def test_429_with_retry_after_in_seconds(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=100, faults=_always(429, retry_after_seconds=3))
    response = client_for(plane).get(AUDIT, params=WINDOW)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["code"] == 429


def test_429_with_retry_after_as_an_http_date(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(
        days=1, events_per_day=100, faults=_always(429, retry_after="http-date", retry_after_seconds=3)
    )
    response = client_for(plane).get(AUDIT, params=WINDOW)
    assert response.status_code == 429
    header = response.headers["Retry-After"]
    assert header.endswith(" GMT")
    wait = parsedate_to_datetime(header) - datetime.now(UTC)
    assert timedelta(seconds=2) <= wait <= timedelta(seconds=4.5)


@pytest.mark.parametrize(("status", "has_header"), [(503, True), (500, False), (502, False), (504, False)])
def test_retry_after_only_on_429_and_503(
    start_plane: Start, client_for: ClientFor, status: int, has_header: bool
) -> None:
    plane = start_plane(days=1, events_per_day=100, faults=_always(status))
    response = client_for(plane).get(AUDIT, params=WINDOW)
    assert response.status_code == status
    assert ("Retry-After" in response.headers) == has_header


def test_retry_after_can_be_left_out(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=100, faults=_always(429, retry_after="none"))
    response = client_for(plane).get(AUDIT, params=WINDOW)
    assert response.status_code == 429 and "Retry-After" not in response.headers


def test_error_rate_is_a_seeded_fraction_of_data_requests_only(
    start_plane: Start, client_for: ClientFor
) -> None:
    faults = FaultConfig(error_rate=0.4)
    sequences = []
    for _ in range(2):
        plane = start_plane(days=1, events_per_day=100, faults=faults)
        client = client_for(plane)  # the token request itself is never faulted
        sequences.append([client.get(AUDIT, params=WINDOW).status_code for _ in range(60)])
        assert plane.requests_to("/api/v1/token") == 1
        assert plane.requests_to(AUDIT, "GET") == 60
    assert sequences[0] == sequences[1], "same seed, same faults"
    failures = [status for status in sequences[0] if status != 200]
    assert 12 <= len(failures) <= 36
    assert set(failures) == {429, 500, 502, 503, 504}


def test_latency_is_added_to_data_requests(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=100, faults=FaultConfig(latency_s=0.3))
    client = client_for(plane)
    began = time.perf_counter()
    assert client.get(AUDIT, params=WINDOW).status_code == 200
    assert time.perf_counter() - began >= 0.3


def test_faults_can_be_flipped_mid_run(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=100)
    client = client_for(plane)
    assert client.get(AUDIT, params=WINDOW).status_code == 200
    plane.set_faults(_always(503))
    assert client.get(AUDIT, params=WINDOW).status_code == 503
    plane.set_faults(FaultConfig())
    assert client.get(AUDIT, params=WINDOW).status_code == 200
    assert [record.status for record in plane.request_log if record.path == AUDIT] == [200, 503, 200]


def test_late_arrivals_appear_after_the_delay(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(
        days=1, events_per_day=300, faults=FaultConfig(late_arrivals=6, late_arrival_delay_s=0.8)
    )
    simulator = plane.simulator
    late = simulator.late_ids()
    assert len(late) == 6
    params = {
        "start": simulator.start.isoformat(),
        "end": simulator.now.isoformat(),
        "numberOfSamples": 1000,
    }
    client = client_for(plane)
    early = client.get(AUDIT, params=params).json()
    assert early["total"] == simulator.count(include_late=False) == simulator.count() - 6
    assert not late & {row["id"] for row in early["audit_logs"]}
    deadline = time.monotonic() + 10
    while simulator.late_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    after = client.get(AUDIT, params=params).json()
    assert after["total"] == simulator.count() == early["total"] + 6
    arrived = [row for row in after["audit_logs"] if row["id"] in late]
    assert len(arrived) == 6
    # Late rows carry *past* timestamps: they land behind a watermark taken before they showed up.
    last_seen_early = max(row["timestamp"] for row in early["audit_logs"])
    assert any(row["timestamp"] < last_seen_early for row in arrived)


def test_insert_during_paging_moves_total_once_per_window(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=500, faults=FaultConfig(insert_during_paging=7))
    client = client_for(plane)
    truth_before = plane.simulator.count(
        datetime(2025, 6, 2, 12, tzinfo=UTC), datetime(2025, 6, 3, 12, tzinfo=UTC)
    )
    first = client.get(AUDIT, params={**WINDOW, "numberOfSamples": 100}).json()
    second = client.get(AUDIT, params={**WINDOW, "numberOfSamples": 100, "offset": 100}).json()
    assert first["total"] == truth_before
    assert second["total"] == truth_before + 7  # rows slid under the client's offsets
    again = client.get(AUDIT, params={**WINDOW, "numberOfSamples": 100}).json()
    assert again["total"] == truth_before + 7  # once per window, so a restart converges
    other_window = {**WINDOW, "end": "2025-06-03T11:00:00Z"}
    before_other = client.get(AUDIT, params={**other_window, "offset": 5}).json()["total"]
    assert client.get(AUDIT, params=other_window).json()["total"] == before_other
    assert client.get(AUDIT, params={**other_window, "offset": 5}).json()["total"] == before_other + 7
