"""The CLI as a user meets it: a real process, real exit codes, one clear line on failure."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from runai_extract.fake import FakeControlPlane
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.lake_reading import live_files
from transforms.catalog import INGEST_RUNS_TABLE, RECONCILIATION_TABLE

CLI = [sys.executable, "-m", "runai_extract.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNAI_")}
    full_env.update(env or {})
    if home is not None:
        full_env["RUNAI_LEDGER_HOME"] = str(home)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=120)


def api_env(fake: FakeControlPlane, secret: str = CLIENT_SECRET) -> dict[str, str]:
    return {"RUNAI_BASE_URL": fake.base_url, "RUNAI_CLIENT_ID": CLIENT_ID, "RUNAI_CLIENT_SECRET": secret}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("runai-ledger: error: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("sync", "backfill", "recheck", "status", "query", "fake-server", "demo", "report"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sync", "nope"), "unknown stream 'nope'"),
        (
            ("backfill", "audit", "--start", "2026-11-02", "--end", "2026-11-01"),
            "--start must be before --end",
        ),
        (
            ("backfill", "audit", "--start", "yesterday-ish", "--end", "2026-11-01"),
            "--start: cannot read time",
        ),
        (("sync", "audit"), "missing configuration: RUNAI_BASE_URL, RUNAI_CLIENT_ID, RUNAI_CLIENT_SECRET"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run_cli(*args, home=tmp_path)
    assert result.returncode == 2
    assert message in one_error_line(result)


def test_bad_credentials_one_line_no_secret(fake: FakeControlPlane, tmp_path: Path) -> None:
    result = run_cli("sync", "audit", env=api_env(fake, "definitely-wrong-secret"), home=tmp_path)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "credentials" in line
    assert "definitely-wrong-secret" not in result.stdout + result.stderr


def test_sync_status_and_query_formats(fake: FakeControlPlane, tmp_path: Path) -> None:
    synced = run_cli("sync", "audit", env=api_env(fake), home=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert "new rows" in synced.stdout

    status = run_cli("status", home=tmp_path)
    assert status.returncode == 0
    assert "audit: watermark" in status.stdout

    as_csv = run_cli(
        "query",
        "select action, count(*) as n from audit_events group by 1 order by 1",
        "--format",
        "csv",
        home=tmp_path,
    )
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {"action", "n"} == set(rows[0]) and any(r["action"] == "sign-in" for r in rows)

    as_json = run_cli("query", "select count(*) as n from audit_events", "--format", "json", home=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    first = json.loads(as_json.stdout.strip().splitlines()[0].lstrip("["))
    assert first["n"] == fake.simulator.count()  # the fake's whole history is inside the first window

    again = run_cli("sync", "audit", env=api_env(fake), home=tmp_path)
    assert again.returncode == 0 and " 0 new rows" in again.stdout


def test_query_is_read_only(fake: FakeControlPlane, tmp_path: Path) -> None:
    assert run_cli("sync", "audit", env=api_env(fake), home=tmp_path).returncode == 0
    result = run_cli("query", "drop view audit_events", home=tmp_path)
    assert result.returncode != 0
    assert run_cli("query", "select count(*) from audit_events", home=tmp_path).returncode == 0


def test_a_failed_sync_keeps_its_error_when_the_view_refresh_fails_too(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    # A warehouse file DuckDB cannot open: the refresh after the failed sync fails as well.
    (tmp_path / "warehouse.duckdb").write_text("not a database")
    result = run_cli("sync", "workloads", env=api_env(fake, "definitely-wrong-secret"), home=tmp_path)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "credentials" in line and "warehouse" not in line


@pytest.fixture
def users_broken(fake: FakeControlPlane) -> Iterator[str]:
    """The fake behind a loopback proxy that answers 500 for the users list: one org kind fails."""
    upstream = httpx.Client(base_url=fake.base_url)

    class Forward(BaseHTTPRequestHandler):
        def _forward(self, method: str) -> None:
            if self.path.startswith("/api/v1/users"):
                status, body, kind = 500, b'{"message": "Something went wrong."}', "application/json"
            else:
                length = int(self.headers.get("content-length") or 0)
                answer = upstream.request(
                    method,
                    self.path,
                    content=self.rfile.read(length) if length else None,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                status, body = answer.status_code, answer.content
                kind = answer.headers.get("content-type", "application/json")
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    upstream.close()


def test_a_failed_org_run_keeps_its_error_when_the_view_refresh_fails_too(
    users_broken: str, tmp_path: Path
) -> None:
    # The run returns (it does not raise) with the users kind failed; the warehouse cannot be
    # opened, so the refresh before the run's error is raised fails as well.
    (tmp_path / "warehouse.duckdb").write_text("not a database")
    env = {
        "RUNAI_BASE_URL": users_broken,
        "RUNAI_CLIENT_ID": CLIENT_ID,
        "RUNAI_CLIENT_SECRET": CLIENT_SECRET,
        "RUNAI_MAX_ATTEMPTS": "1",
    }
    result = run_cli("sync", "org", env=env, home=tmp_path)
    assert result.returncode == 1, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("runai-ledger: error: ")]
    assert "1 run(s) did not complete: org " in line and "could not read users" in line, line


def test_status_that_could_not_be_computed_in_full_exits_non_zero(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    assert run_cli("sync", "audit", env=api_env(fake), home=tmp_path).returncode == 0
    assert run_cli("sync", "org", env=api_env(fake), home=tmp_path).returncode == 0
    healthy = run_cli("status", home=tmp_path)
    assert healthy.returncode == 0, healthy.stderr
    # A run-records file damaged so DuckDB cannot read it: the watermarks are still shown, the
    # health of the streams cannot be computed, and status says so in one line and exits non-zero.
    broken = live_files(tmp_path / "lake", INGEST_RUNS_TABLE)[0]
    broken.write_bytes(b"PAR1 this is not parquet PAR1")
    status = run_cli("status", home=tmp_path)
    assert "audit: watermark" in status.stdout  # what could be computed is still shown
    assert status.returncode == 1
    line = one_error_line(status)
    assert "cannot read the run records" in line and "verify" in line


def test_status_whose_coverage_could_not_be_computed_exits_non_zero(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    assert run_cli("sync", "audit", env=api_env(fake), home=tmp_path).returncode == 0
    day = f"{fake.simulator.now - timedelta(days=1):%Y-%m-%d}"
    rechecked = run_cli(
        "recheck",
        "audit",
        "--start",
        day,
        "--end",
        f"{fake.simulator.now:%Y-%m-%d}",
        env=api_env(fake),
        home=tmp_path,
    )
    assert rechecked.returncode == 0, rechecked.stderr
    # Only the reconciliation records are damaged: the run records still read (watermarks, stalls,
    # last runs), but coverage, which reads which windows a recheck sealed, cannot be computed.
    broken = live_files(tmp_path / "lake", RECONCILIATION_TABLE)[0]
    broken.write_bytes(b"PAR1 this is not parquet PAR1")
    status = run_cli("status", home=tmp_path)
    assert "audit: watermark" in status.stdout
    assert "audit coverage (UTC hours)" not in status.stdout
    assert status.returncode == 1
    assert "cannot compute coverage" in one_error_line(status)
