"""A run killed right after an audit commit: the next run writes its manifest and its run record.

The state such a kill leaves is built here with the pipeline's own steps (page and stage a slice,
commit it with its watermark) and nothing after them, which is exactly where a SIGKILL between
``commit_slice`` and ``record_audit_window`` stops a run. tests/reliability/test_crashes.py
reaches the same state with real SIGKILLs, on local disk and on S3.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
from typer.testing import CliRunner

from runai_extract.api.client import RunaiClient
from runai_extract.audit.commit import commit_slice
from runai_extract.audit.slices import stage_slice
from runai_extract.audit.sync import sync_audit
from runai_extract.cli.main import app
from runai_extract.core.settings import Settings, require_api
from runai_extract.core.times import Window
from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.manifests import read_chain
from runai_extract.ledger.run_records import SilentProgress
from tests.conftest import FAKE_NOW, fake_config, settings_for
from tests.lake_reading import stored_audit_ids, table_rows
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables

MIDNIGHT = FAKE_NOW.replace(hour=0)
NOW = FAKE_NOW + timedelta(minutes=5)
KILLED = Window(MIDNIGHT, MIDNIGHT + timedelta(hours=6))


def verify(settings: Settings) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", "--full", "--home", str(settings.home)])
    return result.exit_code, " ".join(result.output.split())


def commit_without_manifest(settings: Settings, piece: Window, run_id: str) -> str:
    """Page, stage and commit ``piece`` as a sync does, then stop (the kill); the file committed."""
    tables = Tables(Lake(settings.lake_uri))
    with RunaiClient(require_api(settings)) as client:
        client.connect()
        staged = stage_slice(client, tables, piece, run_id, settings.page_size, SilentProgress())
        assert staged.error is None
        done = commit_slice(tables, staged, run_id, "sync")
    assert done.commit is not None and done.watermark_moved
    [added] = done.commit.adds
    return f"{AUDIT_EVENTS_TABLE.name}/{added.path}"


def test_the_next_sync_completes_a_commit_whose_run_died_before_its_manifest(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(fake_config(days=2, events_per_day=600))
    sim = fake.simulator
    settings = settings_for(fake, tmp_path / "home")
    sync_audit(settings, until=KILLED.start, now=NOW)
    orphan = commit_without_manifest(settings, KILLED, "run-killed")
    code, out = verify(settings)
    assert code == 1 and "INSERTED" in out and orphan.rsplit("/", 1)[-1] in out

    rerun = sync_audit(settings, now=NOW)

    code, out = verify(settings)
    assert code == 0, out
    # The killed slice's run record was written too: status sees its window covered, not a gap.
    status = CliRunner().invoke(app, ["status", "--home", str(settings.home)])
    assert status.exit_code == 0 and "audit: no gaps" in status.output, status.output
    [recovered] = [
        doc for doc in (orjson.loads(m.raw) for m in read_chain(Lake(settings.lake_uri), "audit"))
        if doc.get("recovered_by")
    ]  # fmt: skip
    assert recovered["recovered_by"] == rerun.run_id and recovered["run_id"] == "run-killed"
    assert [f["path"] for f in recovered["files"]] == [orphan]
    assert recovered["window"] == {
        "start": "2026-11-20T00:00:00.000000Z",
        "end": "2026-11-20T06:00:00.000000Z",
    }
    assert rerun.watermark_after is not None
    ids = stored_audit_ids(settings.lake_uri)
    assert len(ids) == len(set(ids))
    assert set(ids) == sim.audit_ids(sim.start, rerun.watermark_after - timedelta(microseconds=1))


def test_a_commit_made_outside_the_ledger_stays_inserted_after_the_next_sync(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """The recovery vouches only for the ledger's own commits: a notebook's append is still named."""
    fake = start_fake(fake_config(days=2, events_per_day=600))
    settings = settings_for(fake, tmp_path / "home")
    sync_audit(settings, until=KILLED.start, now=NOW)
    tables = Tables(Lake(settings.lake_uri))
    smuggled = tables.append(
        AUDIT_EVENTS_TABLE, table_rows(settings.lake_uri, AUDIT_EVENTS_TABLE).slice(0, 1)
    )

    sync_audit(settings, now=NOW)

    code, out = verify(settings)
    assert code == 1 and "INSERTED" in out and smuggled.adds[0].path.rsplit("/", 1)[-1] in out
