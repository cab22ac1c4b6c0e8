"""Every command against a lake on S3 (moto's server on loopback), as a user runs them.

The lake URI comes from RUNAI_LEDGER_LAKE and the store from the standard AWS variables; the
warehouse file stays in the local home. Parametrised over local disk and S3 so a difference
between the two shows up as one failing id.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runai_extract.audit.recheck import recheck_audit
from runai_extract.audit.sync import backfill_audit, sync_audit
from runai_extract.cli.main import app
from runai_extract.fake import FakeControlPlane
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAKE_NOW, S3_SECRET, settings_for
from tests.lake_reading import stored_audit_ids
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables

DAY = "2026-11-19"
NEXT_DAY = "2026-11-20"
DAY_START = datetime(2026, 11, 19, tzinfo=UTC)
NOW = FAKE_NOW + timedelta(minutes=5)


def cli(*args: str) -> str:
    """One command in-process with the test's environment; its output, one line per line."""
    result = CliRunner().invoke(app, list(args))
    output = result.output + (repr(result.exception) if result.exception else "")
    assert result.exit_code == 0, output
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


def test_every_command_works_on_the_lake(
    home: Path, lake_uri: str, fake: FakeControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Ingest through the library with a short first look-back (the CLI's is 90 days of slices).
    settings = settings_for(fake, home, lake_uri=lake_uri, initial_lookback=timedelta(days=3))
    sync_audit(settings, now=NOW)
    ids = stored_audit_ids(lake_uri)
    assert ids and len(ids) == len(set(ids))

    # A backfill and a recheck of a synced day store nothing twice.
    backfill_audit(settings, start=DAY_START, end=DAY_START + timedelta(days=1), now=NOW)
    recheck_audit(settings, start=DAY_START, end=DAY_START + timedelta(days=1), now=NOW)
    assert sorted(stored_audit_ids(lake_uri)) == sorted(ids)

    # Compaction leaves one file per closed day, the same ids, and a chain verify accepts.
    cli("compact")
    days = [f.path.split("/")[0] for f in Tables(Lake(lake_uri)).live_files(AUDIT_EVENTS_TABLE)]
    assert len(days) == len(set(days))
    assert sorted(stored_audit_ids(lake_uri)) == sorted(ids)
    assert "ok" in cli("verify").lower()

    # The warehouse stays local; its views read the lake's files wherever they are.
    cli("build-views")
    assert (home / "warehouse.duckdb").exists()
    counted = cli("query", "-f", "csv", "SELECT count(*) AS n FROM audit_events")
    assert counted.split()[-1] == str(len(ids))
    assert "audit" in cli("status")
    out = tmp_path / "bundle"
    cli("export", "compliance", "--start", DAY, "--end", NEXT_DAY, "--out", str(out))
    assert any(out.iterdir())
    cli("verify", "--bundle", str(out))

    # The S3 secret key is in no log record.
    assert S3_SECRET not in caplog.text
