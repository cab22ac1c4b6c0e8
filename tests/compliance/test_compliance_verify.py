"""verify: a clean lake verifies clean; every kind of tampering is named with its file and window."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from runai_extract.audit.sync import sync_audit
from runai_extract.cli.main import app
from runai_extract.core.settings import Settings
from tests.compliance.conftest import NOW

KEY = "hmac-key-for-tests-only-4c2e9"


def verify(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", "--home", str(settings.home), *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def lake(settings: Settings) -> Path:
    return Path(settings.lake_uri)


def data_files(settings: Settings) -> list[Path]:
    return sorted((lake(settings) / "audit_events").rglob("*.parquet"))


def manifests(settings: Settings) -> list[Path]:
    return sorted((lake(settings) / "_manifests" / "audit").glob("0*.json"))


def test_clean_lake_after_sync_rerun_and_recheck_verifies_clean(ledger: Settings) -> None:
    code, out = verify(ledger)
    assert code == 0, out
    assert "audit: " in out and "OK" in out and "signature unsigned" in out
    docs = [orjson.loads(p.read_bytes()) for p in manifests(ledger)]
    assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1))
    assert sum(1 for d in docs if d["files"]) >= 3  # sync, rerun and recheck each manifested windows
    first = docs[0]
    assert first["prev_sha256"] == "0" * 64
    assert set(first["params"]) == {"start", "end", "sortBy", "sortOrder", "numberOfSamples"}
    assert first["schema_version"] and first["code_version"]


def test_a_crash_before_the_watermark_commit_leaves_a_verifiable_chain(ledger: Settings) -> None:
    """Losing the watermark (as a crash before commit does) makes the rerun rewrite files: still clean."""
    before = len(manifests(ledger))
    (lake(ledger) / "_state" / "audit.json").unlink()
    sync_audit(ledger, now=NOW + timedelta(minutes=3))
    assert len(manifests(ledger)) > before
    code, out = verify(ledger)
    assert code == 0, out


def test_changed_parquet_file_is_named_with_its_window(ledger: Settings) -> None:
    target = data_files(ledger)[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    code, out = verify(ledger)
    assert code == 1
    assert "CHANGED" in out and target.name in out
    assert "Z .. 20" in out  # the window's bounds are printed


def test_deleted_parquet_file_is_named(ledger: Settings) -> None:
    target = data_files(ledger)[-1]
    target.unlink()
    code, out = verify(ledger)
    assert code == 1
    assert "DELETED" in out and target.name in out


def test_inserted_parquet_file_is_named(ledger: Settings) -> None:
    source = data_files(ledger)[0]
    extra = source.with_name("part-smuggled.parquet")
    shutil.copy(source, extra)
    code, out = verify(ledger)
    assert code == 1
    assert "INSERTED" in out and "part-smuggled.parquet" in out


def test_edited_manifest_breaks_the_chain_at_the_next_one(ledger: Settings) -> None:
    paths = manifests(ledger)
    doc = orjson.loads(paths[1].read_bytes())
    doc["api_total"] = (doc["api_total"] or 0) + 1
    paths[1].write_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    code, out = verify(ledger)
    assert code == 1
    assert "prev_sha256" in out and paths[2].name in out


def test_consistently_edited_last_manifest_is_caught_by_recounting(ledger: Settings) -> None:
    """Rewriting the newest manifest to match a changed row count still disagrees with the file."""
    paths = manifests(ledger)
    last = max(paths, key=lambda p: (bool(orjson.loads(p.read_bytes())["files"]), p.name))
    doc = orjson.loads(last.read_bytes())
    doc["files"][0]["rows"] += 5
    last.write_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    code, out = verify(ledger)
    assert code == 1
    assert "rows" in out


def test_reordered_manifests_are_caught(ledger: Settings) -> None:
    paths = manifests(ledger)
    first, second = paths[0].read_bytes(), paths[1].read_bytes()
    paths[0].write_bytes(second)
    paths[1].write_bytes(first)
    code, out = verify(ledger)
    assert code == 1
    assert "reordered" in out


def test_deleted_manifest_is_caught(ledger: Settings) -> None:
    paths = manifests(ledger)
    paths[2].unlink()
    code, out = verify(ledger)
    assert code == 1
    assert "missing before seq" in out and paths[3].name in out


@pytest.fixture
def signed(ledger: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ledger with one more sync run while the signing key is set: the head is signed."""
    monkeypatch.setenv("RUNAI_LEDGER_SIGNING_KEY", KEY)
    (lake(ledger) / "_state" / "audit.json").unlink()  # so the sync manifests windows again
    sync_audit(ledger, now=NOW + timedelta(minutes=4))
    monkeypatch.delenv("RUNAI_LEDGER_SIGNING_KEY")
    return ledger


def test_signed_head_verifies_with_the_key_and_never_leaks_it(signed: Settings) -> None:
    code, out = verify(signed, "--key-env", "LEDGER_KEY", env={"LEDGER_KEY": KEY})
    assert code == 0, out
    assert "signature valid" in out
    assert KEY not in out
    for root, _dirs, files in os.walk(lake(signed)):
        for name in files:
            assert KEY.encode() not in (Path(root) / name).read_bytes()
    code, out = verify(signed)
    assert code == 0 and "not checked" in out


def test_wrong_key_or_edited_head_fails(signed: Settings) -> None:
    code, out = verify(signed, "--key-env", "LEDGER_KEY", env={"LEDGER_KEY": "not-the-key"})
    assert code == 1 and "HMAC does not match" in out
    head = lake(signed) / "_manifests" / "audit" / "HEAD.json"
    doc = orjson.loads(head.read_bytes())
    doc["seq"] -= 1
    head.write_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    code, out = verify(signed, "--key-env", "LEDGER_KEY", env={"LEDGER_KEY": KEY})
    assert code == 1 and "HEAD.json" in out


def test_a_damaged_newest_manifest_never_blocks_ingestion_and_is_reported(ledger: Settings) -> None:
    newest = manifests(ledger)[-1]
    newest.write_bytes(b"{not json")
    (lake(ledger) / "_state" / "audit.json").unlink()  # the next sync manifests windows again
    sync_audit(ledger, now=NOW + timedelta(minutes=3))
    code, out = verify(ledger)
    assert code == 1
    assert "MANIFEST" in out and newest.name in out and "unreadable JSON" in out
    assert "prev_sha256" not in out  # the next manifest chains to the damaged bytes as stored
