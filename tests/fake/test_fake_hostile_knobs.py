"""The hostile-server knobs (resets, stalls, paging lies, spoiled bodies, corrupt rows), seen by a client."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.fake.badrecords import (
    BAD_RECORD_KINDS,
    PATH_NAME,
    SQL_NAME,
    UNICODE_NAME,
    corrupt,
    kind_for,
)

AUDIT = "/api/v1/audit/log"
WINDOW = {"start": "2025-06-02T12:00:00Z", "end": "2025-06-03T12:00:00Z"}

Start = Callable[..., FakeControlPlane]
ClientFor = Callable[[FakeControlPlane], httpx.Client]


def _page(client: httpx.Client, offset: int, size: int = 100) -> dict[str, Any]:
    response = client.get(AUDIT, params={**WINDOW, "offset": offset, "numberOfSamples": size})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "knobs",
    [
        {"reset_rate": 1.5},
        {"slow_rate": -0.1},
        {"bad_body_rate": 2.0},
        {"bad_record_rate": 1.1},
        {"slow_rate": 0.5},  # no slow_s
        {"bad_body_forms": ("xml",)},
        {"bad_record_kinds": ()},
        {"bad_record_kinds": ("nonsense",)},
    ],
)
def test_invalid_hostile_knobs_are_rejected(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultConfig(**knobs)


def test_all_hostile_knobs_are_off_by_default() -> None:
    config = FaultConfig()
    assert config.reset_rate == config.slow_rate == config.bad_body_rate == config.bad_record_rate == 0
    assert not config.ignore_offset and not config.next_backwards and config.lying_total == 0


def test_reset_cuts_the_connection_mid_body(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=100, faults=FaultConfig(reset_rate=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        client_for(plane).get(AUDIT, params=WINDOW)
    assert plane.injected == {"reset": 1}


def test_slow_response_outlasts_a_short_read_timeout(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=100, faults=FaultConfig(slow_rate=1.0, slow_s=0.6))
    client = client_for(plane)
    with pytest.raises(httpx.ReadTimeout):
        client.get(AUDIT, params=WINDOW, timeout=httpx.Timeout(5.0, read=0.2))
    assert client.get(AUDIT, params=WINDOW, timeout=5.0).status_code == 200  # it does answer, late
    assert plane.injected == {"slow": 2}


def test_ignore_offset_serves_page_one_forever(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=500, faults=FaultConfig(ignore_offset=True))
    client = client_for(plane)
    first, later = _page(client, 0), _page(client, 300)
    assert [r["id"] for r in later["audit_logs"]] == [r["id"] for r in first["audit_logs"]]
    assert later["next"] == first["next"] == 100


def test_next_goes_backwards_after_the_first_page(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=500, faults=FaultConfig(next_backwards=True))
    client = client_for(plane)
    assert _page(client, 0)["next"] == 100
    assert _page(client, 100)["next"] == 0
    assert _page(client, 300)["next"] == 200


@pytest.mark.parametrize("delta", [-150, 70, -10_000])
def test_lying_total_is_constant_and_next_stays_honest(
    start_plane: Start, client_for: ClientFor, delta: int
) -> None:
    plane = start_plane(days=1, events_per_day=500, faults=FaultConfig(lying_total=delta))
    client = client_for(plane)
    true_total = plane.simulator.count()
    pages = [_page(client, offset) for offset in (0, 200, true_total - 50)]
    assert {p["total"] for p in pages} == {max(true_total + delta, 0)}
    assert pages[0]["next"] == 100 and "next" not in pages[-1]


@pytest.mark.parametrize("form", ["html", "truncated"])
def test_bad_bodies_are_200s_that_are_not_json(start_plane: Start, client_for: ClientFor, form: str) -> None:
    faults = FaultConfig(bad_body_rate=1.0, bad_body_forms=(form,))
    plane = start_plane(days=1, events_per_day=100, faults=faults)
    response = client_for(plane).get(AUDIT, params=WINDOW)
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)
    assert ("text/html" in response.headers["content-type"]) == (form == "html")
    assert plane.injected == {form: 1}


def test_corrupt_rows_match_ground_truth(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=400, faults=FaultConfig(bad_record_rate=0.2))
    client = client_for(plane)
    rows = [row for offset in range(0, 400, 100) for row in _page(client, offset)["audit_logs"]]
    truth = plane.simulator.corrupt_ids()
    assert truth and plane.simulator.served_corrupt() == truth
    served = {row["id"]: row for row in plane.simulator.served_rows()}
    assert {row["id"]: row for row in rows} == served  # the API and the ground truth agree row by row
    for row_id, kind in truth.items():
        assert served[row_id] != {r["id"]: r for r in plane.simulator.audit_rows()}[row_id], kind


def test_corruption_is_a_stable_function_of_the_id() -> None:
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(2000)]
    picked = {i: kind_for(7, i, 0.25, BAD_RECORD_KINDS) for i in ids}
    assert picked == {i: kind_for(7, i, 0.25, BAD_RECORD_KINDS) for i in ids}
    share = sum(k is not None for k in picked.values()) / len(ids)
    assert 0.2 < share < 0.3
    assert set(picked.values()) - {None} == set(BAD_RECORD_KINDS)
    assert kind_for(7, ids[0], 0.0, BAD_RECORD_KINDS) is None


def test_each_corrupt_variant() -> None:
    row = {
        "id": "x",
        "timestamp": "2025-06-03T10:00:00.000Z",
        "tenant_id": "1001",
        "subject": "a",
        "subject_type": "User",
        "action": "Create",
        "result": "Succeeded",
        "http_status_code": 200,
        "entity_name": "p",
        "url": "/api/v1/x",
    }
    variants = {kind: corrupt(row, kind) for kind in BAD_RECORD_KINDS}
    assert "subject" not in variants["missing_required"] and "action" not in variants["missing_required"]
    assert variants["tenant_number"]["tenant_id"] == 1001
    assert variants["status_string"]["http_status_code"] == "200"
    assert variants["unknown_enum"]["action"] not in ("Create", "Update", "Delete")
    assert len(orjson.dumps(variants["huge_metadata"]["metadata"])) >= 10 * 1024 * 1024
    assert variants["unicode_name"]["entity_name"] == UNICODE_NAME
    assert variants["sql_quote"]["entity_name"] == SQL_NAME
    assert variants["path_segment"]["entity_name"] == PATH_NAME
    assert all(v["id"] == "x" and v["timestamp"] == row["timestamp"] for v in variants.values())
    assert row["subject"] == "a"  # the input is untouched
    with pytest.raises(ValueError):
        corrupt(row, "nonsense")


def test_revoke_tokens_turns_the_next_request_into_a_401(start_plane: Start, client_for: ClientFor) -> None:
    plane = start_plane(days=1, events_per_day=100)
    client = client_for(plane)
    assert client.get(AUDIT, params=WINDOW).status_code == 200
    plane.revoke_tokens()
    assert client.get(AUDIT, params=WINDOW).status_code == 401


# -- the same knobs from `runai-ledger fake-server` -----------------------------------------------
CLI = [sys.executable, "-m", "runai_extract.cli", "fake-server"]


def test_fake_server_help_lists_the_hostile_flags() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    flags = ("--reset-rate", "--slow-rate", "--slow-seconds", "--ignore-offset", "--next-backwards")
    for flag in (*flags, "--lying-total", "--bad-body-rate", "--bad-record-rate"):
        assert flag in result.stdout, flag


def test_fake_server_rejects_an_inconsistent_knob_in_one_line() -> None:
    result = subprocess.run([*CLI, "--slow-rate", "0.5"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "slow_s must be positive" in lines[0], result.stderr


def test_fake_server_serves_with_hostile_flags() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["--port", str(port), "--days", "1", "--events-per-day", "300", "--lying-total", "7"]
    with subprocess.Popen([*CLI, *args, "--next-backwards"], stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            assert "listening" in server.stdout.readline()
            base = f"http://127.0.0.1:{port}"
            grant = {
                "grantType": "client_credentials",
                "clientId": "ledger-demo",
                "clientSecret": "ledger-demo-secret",
            }
            token = httpx.post(base + "/api/v1/token", json=grant).json()["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            end = datetime.now(UTC)
            params: dict[str, str | int] = {
                "start": (end - timedelta(days=2)).isoformat(),
                "end": end.isoformat(),
                "numberOfSamples": 100,
            }
            pages = [
                httpx.get(base + AUDIT, params={**params, "offset": offset}, headers=headers).json()
                for offset in (0, 100)
            ]
            assert [p["total"] for p in pages] == [307, 307]
            assert [p["next"] for p in pages] == [100, 0]
        finally:
            server.terminate()
            server.wait(timeout=15)
