"""Every command against a lake on S3 (moto's server on loopback), as a user runs them.

The lake URI comes from RUNAI_LEDGER_LAKE and the store from the standard AWS variables; the
warehouse file stays in the local home. Parametrised over local disk and S3 so a difference
between the two shows up as one failing id. Each command runs through the CLI's own entry point in
this process (CliRunner: the same arguments, environment and exit code as a shell, without a new
interpreter's start-up per command); real `runai-ledger` processes on S3 are in
tests/reliability (two syncs at once, SIGKILLed syncs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runai_extract.cli.main import app
from runai_extract.core.times import format_utc
from runai_extract.fake import FakeControlPlane
from tests.conftest import CLIENT_ID, CLIENT_SECRET, S3_SECRET, fake_config
from tests.lake_reading import stored_audit_ids
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables

DAY = "2026-11-19"
NEXT_DAY = "2026-11-20"


def cli(*args: str) -> str:
    """One command in-process with the test's environment; its output, one line per line."""
    result = CliRunner().invoke(app, list(args))
    output = result.output + (repr(result.exception) if result.exception else "")
    assert result.exit_code == 0, f"runai-ledger {' '.join(args)}:\n{output}"
    assert S3_SECRET not in output
    return output


@pytest.fixture
def home(lake_uri: str, fake: FakeControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {
        "RUNAI_BASE_URL": fake.base_url,
        "RUNAI_CLIENT_ID": CLIENT_ID,
        "RUNAI_CLIENT_SECRET": CLIENT_SECRET,
        "RUNAI_LEDGER_HOME": str(tmp_path / "home"),
        "RUNAI_LEDGER_LAKE": lake_uri,
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "home"


@pytest.fixture
def fake(start_fake: Callable[..., FakeControlPlane]) -> FakeControlPlane:
    """A small tenant (300 audit events a day, ~130 workloads): every stream, quick on S3 too."""
    return start_fake(fake_config(days=2, events_per_day=300, seed=23))


def test_every_command_works_on_the_lake(
    home: Path, lake_uri: str, fake: FakeControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the CLI, as a user types it: what they would notice is checked at each step."""
    caplog.set_level(logging.DEBUG)
    sim = fake.simulator
    until = format_utc(sim.now)
    events = sim.audit_ids(sim.start, sim.now - timedelta(microseconds=1))
    # First install: an empty backfill just before the stream starts sets the watermark there (the
    # CLI's first look-back is 90 days of slices), then one sync of every stream.
    cli(
        "backfill",
        "audit",
        "--start",
        format_utc(sim.start - timedelta(hours=1)),
        "--end",
        format_utc(sim.start),
    )
    synced = cli("sync", "all", "--until", until)
    assert "audit sync" in synced and "org sync" in synced and "workloads sync" in synced
    assert f"-> {until}" in synced  # the audit watermark moved to the end of the window
    ids = stored_audit_ids(lake_uri)
    assert len(ids) == len(set(ids)) and set(ids) == events

    # A backfill and a recheck of a synced day store nothing twice and find the day clean.
    assert " 0 new rows" in cli("backfill", "audit", "--start", DAY, "--end", NEXT_DAY)
    rechecked = cli("recheck", "audit", "--start", DAY, "--end", NEXT_DAY)
    assert "0 late row(s) found and stored, 0 stored id(s) missing from the API" in rechecked
    assert sorted(stored_audit_ids(lake_uri)) == sorted(ids)

    # Compaction leaves one file per closed day, the same ids, and chains verify accepts.
    assert re.search(r"compacted: \d+ -> \d+ live data files", cli("compact"))
    days = [f.path.split("/")[0] for f in Tables(Lake(lake_uri)).live_files(AUDIT_EVENTS_TABLE)]
    assert len(days) == len(set(days))
    assert sorted(stored_audit_ids(lake_uri)) == sorted(ids)
    verified = cli("verify", "--full")
    for stream in ("audit", "ledger", "org", "workloads"):
        assert re.search(rf"^{stream}: full, .*: OK$", verified, re.MULTILINE), verified

    # The warehouse stays local; its views read the lake's files wherever they are.
    cli("build-views")
    assert (home / "warehouse.duckdb").exists()
    counted = cli("query", "-f", "csv", "SELECT count(*), count(distinct event_id) FROM audit_events")
    assert counted.split()[-1] == f"{len(ids)},{len(ids)}"
    hours = cli("query", "-f", "csv", "SELECT round(sum(gpu_hours), 3) FROM usage_gpu_hours_daily")
    assert hours.split()[-1] == str(round(sum(sim.gpu_hours_truth().values()), 3))
    status = cli("status")
    assert f"lake: {lake_uri}" in status and f"audit: watermark {until}" in status
    assert "never synced" not in status and "audit: no gaps" in status and "ALERT" not in status
    out = tmp_path / "bundle"
    exported = cli("export", "compliance", "--start", DAY, "--end", NEXT_DAY, "--out", str(out))
    assert "coverage: complete: every hour of the period is sealed" in exported
    assert "OK" in cli("verify", "--bundle", str(out))

    # The S3 secret key is in no log record.
    assert S3_SECRET not in caplog.text
