"""Incremental verify: after a clean verify, the next proves only what is new, and still catches edits."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from runai_extract.audit.sync import sync_audit
from runai_extract.core.settings import Settings
from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.manifests import stream_tables
from runai_extract.ledger.verify import verify_lake
from runai_extract.ledger.verify_checkpoints import checkpoint_path
from tests.compliance.conftest import KEY, NOW
from tests.compliance.test_compliance_verify import data_files, tamper_manifests, verify
from tests.conftest import fake_config, settings_for
from transforms.storage import Lake
from transforms.tables import Tables


def live_rels(settings: Settings, stream: str) -> set[str]:
    tables = Tables(Lake(settings.lake_uri))
    return {f"{spec.name}/{f.path}" for spec in stream_tables(stream) for f in tables.live_files(spec)}


def test_a_second_verify_rehashes_nothing_and_after_a_sync_only_the_new_files(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(fake_config(days=2, events_per_day=600))
    ledger = settings_for(fake, tmp_path / "home")
    sync_audit(ledger, now=NOW)
    first = {r.stream: r for r in verify_lake(Lake(ledger.lake_uri), None, None)}
    assert first["audit"].ok and first["audit"].mode == "full"
    assert first["audit"].files_checked == len(live_rels(ledger, "audit"))

    again = {r.stream: r for r in verify_lake(Lake(ledger.lake_uri), None, None)}
    assert again["audit"].ok and again["audit"].mode.startswith("incremental")
    assert again["audit"].files_checked == 0
    assert again["audit"].files_unchanged == first["audit"].files_checked

    before = {stream: live_rels(ledger, stream) for stream in first}
    fake.simulator.add_rows(40, NOW - timedelta(minutes=1), NOW + timedelta(minutes=20))
    sync_audit(ledger, now=NOW + timedelta(minutes=30))
    after = {r.stream: r for r in verify_lake(Lake(ledger.lake_uri), None, None)}
    for stream, report in after.items():
        new = live_rels(ledger, stream) - before[stream]
        assert report.ok, report.problems
        assert report.files_checked == len(new), stream
        assert report.files_unchanged == len(live_rels(ledger, stream)) - len(new), stream
    assert len(live_rels(ledger, "audit") - before["audit"]) >= 1  # the sync did add audit files


def test_a_file_edited_after_a_clean_verify_is_caught_incrementally(ledger: Settings) -> None:
    assert verify(ledger)[0] == 0
    target = data_files(ledger)[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    code, out = verify(ledger)
    assert code == 1 and "incremental from #" in out
    assert "CHANGED" in out and target.name in out


def test_an_edit_that_keeps_size_and_timestamp_is_caught_by_full(ledger: Settings) -> None:
    """The one edit an incremental verify cannot see without re-reading; --full re-hashes everything."""
    assert verify(ledger)[0] == 0
    target = data_files(ledger)[0]
    stamp = target.stat()
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    code, out = verify(ledger, "--full")
    assert code == 1 and "audit: full," in out
    assert "CHANGED" in out and target.name in out
    # A failed verify moves no checkpoint: the next incremental one still starts where the clean one ended.
    code, out = verify(ledger, "--full")
    assert code == 1


def test_a_manifest_deleted_before_the_checkpoint_is_caught_incrementally(ledger: Settings) -> None:
    assert verify(ledger)[0] == 0
    tamper_manifests(ledger, lambda rows: [r for r in rows if (r["stream"], r["seq"]) != ("audit", 2)])
    code, out = verify(ledger)
    assert code == 1 and "incremental from #" in out
    assert "audit#3" in out and "deleted or reordered" in out


def test_a_checkpoint_edited_without_the_key_is_ignored(signed: Settings) -> None:
    ledger = signed
    env = {"LEDGER_KEY": KEY}
    code, out = verify(ledger, "--key-env", "LEDGER_KEY", env=env)
    assert code == 0 and "audit: full," in out
    checkpoint = Path(ledger.lake_uri) / checkpoint_path("audit")
    doc: dict[str, Any] = orjson.loads(checkpoint.read_bytes())
    assert doc["hmac"] and KEY not in checkpoint.read_text()
    # Someone who can write the lake tries to make the next verify skip a file it then edits.
    target = data_files(ledger)[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    rel = next(r for r in doc["files"] if r.endswith(target.name))
    doc["files"][rel]["stamp"] = [target.stat().st_size, target.stat().st_mtime_ns]
    checkpoint.write_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    code, out = verify(ledger, "--key-env", "LEDGER_KEY", env=env)
    assert code == 1 and "audit: full," in out and "not signed with this key" in out
    assert "CHANGED" in out and target.name in out
