"""First contact: a wrong address, rejected credentials or a missing role fail once, at once, in one line.

A typo'd port used to cost minutes: every slice retried its token request with backoff and the
log filled with WARNINGs before the one-line error. These tests run the real client over loopback
(the project's fake, a refused port, an unresolvable host, a stub that answers 403) and count the
requests that were sent, rather than timing them; the wall bound is only a generous backstop.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runai_extract.audit.sync import sync_audit
from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import load_settings
from runai_extract.fake import FakeControlPlane
from tests.cli.test_cli import api_env, free_port, one_error_line, run_cli
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAKE_NOW
from tests.httpfakes import CountingTransport

TOKEN_PATH = "/api/v1/token"
WALL_BOUND_S = 10.0  # a backstop only; the counts below are the real assertions


def _env(base_url: str) -> dict[str, str]:
    return {"RUNAI_BASE_URL": base_url, "RUNAI_CLIENT_ID": CLIENT_ID, "RUNAI_CLIENT_SECRET": CLIENT_SECRET}


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (f"http://127.0.0.1:{free_port()}", "Connection refused"),
        ("http://runai-ledger-first-contact.invalid", "runai-ledger-first-contact.invalid"),
    ],
    ids=["refused-port", "unknown-host"],
)
def test_an_unreachable_control_plane_is_one_line_within_seconds(
    base_url: str, expected: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = run_cli("sync", "audit", env=_env(base_url), home=tmp_path)  # default retry policy
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    line = one_error_line(result)  # no WARNING lines from retries either
    assert line.startswith("runai-ledger: error: cannot reach the control plane at " + base_url)
    assert expected in line and "RUNAI_BASE_URL" in line
    assert elapsed < WALL_BOUND_S


def test_a_refused_port_is_tried_twice_for_the_whole_sync(tmp_path: Path) -> None:
    """Many slices, four threads, eight attempts configured: still two connection attempts in all."""
    settings = load_settings(
        {},
        home=tmp_path,
        base_url=f"http://127.0.0.1:{free_port()}",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        initial_lookback=timedelta(days=5),
    )
    assert settings.max_attempts == 8 and settings.concurrency == 4
    transport = CountingTransport()
    with pytest.raises(ConfigError, match="cannot reach the control plane"):
        sync_audit(settings, now=FAKE_NOW, transport=transport)
    assert transport.sent == 2


def test_rejected_credentials_are_asked_once(fake: FakeControlPlane, tmp_path: Path) -> None:
    result = run_cli("sync", "audit", env=api_env(fake, "definitely-wrong-secret"), home=tmp_path)
    assert result.returncode == 1
    assert "rejected the client credentials" in one_error_line(result)
    assert fake.requests_to(TOKEN_PATH) == 1
    assert len(fake.request_log) == 1  # no slice sent a data request


class _NoRoleHandler(BaseHTTPRequestHandler):
    """A control plane that issues tokens but answers every data request 403 (an app without a role)."""

    seen: list[str]

    def do_POST(self) -> None:
        self.seen.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(200, {"accessToken": "opaque-token", "expiresIn": 3600})

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self._answer(403, {"code": 403, "message": "You do not have sufficient permissions."})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def no_role_server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_NoRoleHandler,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join()


def test_403_on_the_first_data_call_is_one_line_and_never_retried(
    no_role_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    base_url, seen = no_role_server
    started = time.monotonic()
    result = run_cli("sync", "audit", env=_env(base_url), home=tmp_path)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "HTTP 403" in line and "sufficient permissions" in line and CLIENT_ID in line
    assert time.monotonic() - started < WALL_BOUND_S
    data = [path for path in seen if not path.startswith(TOKEN_PATH)]
    assert seen.count(TOKEN_PATH) == 1
    # Slices already running when the first 403 came back each made their one request; none retried.
    assert 1 <= len(data) <= 2 * 4 and len(set(data)) == len(data)
