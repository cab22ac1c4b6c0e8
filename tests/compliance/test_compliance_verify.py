"""verify: a clean lake verifies clean; every kind of tampering is named with its file and window."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from deltalake import write_deltalake
from typer.testing import CliRunner

from runai_extract.audit.sync import sync_audit
from runai_extract.cli.main import app
from runai_extract.core.settings import Settings
from runai_extract.ledger.manifests import read_chain, sha256_hex
from tests.compliance.conftest import KEY, NOW
from tests.lake_reading import live_files, table_rows
from transforms.catalog import AUDIT_EVENTS_TABLE, MANIFESTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables


def verify(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", "--home", str(settings.home), *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def lake(settings: Settings) -> Path:
    return Path(settings.lake_uri)


def data_files(settings: Settings) -> list[Path]:
    return live_files(lake(settings))


def manifests(settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(m.raw) for m in read_chain(Lake(settings.lake_uri), "audit")]


def tamper_manifests(
    settings: Settings, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> None:
    """Rewrite the manifests table as someone with write access to the lake could (an overwrite)."""
    rows = sorted(
        table_rows(lake(settings), MANIFESTS_TABLE).to_pylist(), key=lambda r: (r["stream"], r["seq"])
    )
    table = pa.Table.from_pylist(edit(rows), schema=MANIFESTS_TABLE.schema)
    write_deltalake(str(lake(settings) / MANIFESTS_TABLE.name), table, mode="overwrite")


def audit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["stream"] == "audit"]


def rehashed(row: dict[str, Any], doc: dict[str, Any]) -> None:
    """Put an edited manifest back in canonical form with a matching recorded hash."""
    raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    row["manifest"], row["sha256"] = raw.decode(), sha256_hex(raw)


def test_clean_lake_after_sync_rerun_and_recheck_verifies_clean(ledger: Settings) -> None:
    code, out = verify(ledger)
    assert code == 0, out
    assert "audit: " in out and "OK" in out and "signature unsigned" in out
    docs = manifests(ledger)
    assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1))
    assert sum(1 for d in docs if d["files"]) >= 3  # sync, rerun and recheck each manifested windows
    first = docs[0]
    assert first["prev_sha256"] == "0" * 64
    assert set(first["params"]) == {"start", "end", "sortBy", "sortOrder", "numberOfSamples"}
    assert first["schema_version"] and first["code_version"]


def test_files_a_crashed_writer_staged_but_never_committed_do_not_count(ledger: Settings) -> None:
    """A writer killed between writing its file and committing it leaves a file no table holds."""
    before = len(manifests(ledger))
    shutil.copy(
        data_files(ledger)[0], data_files(ledger)[0].with_name("part-staged-by-a-dead-writer.parquet")
    )
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


def test_rows_committed_outside_the_ledger_are_named(ledger: Settings) -> None:
    """A commit to the audit table that no manifest records (an edit from a notebook, say)."""
    tables = Tables(Lake(ledger.lake_uri))
    smuggled = tables.append(AUDIT_EVENTS_TABLE, table_rows(lake(ledger), AUDIT_EVENTS_TABLE).slice(0, 1))
    code, out = verify(ledger)
    assert code == 1
    assert "INSERTED" in out and smuggled.adds[0].path.rsplit("/", 1)[-1] in out


def test_edited_manifest_is_caught_by_its_own_hash_or_at_the_next_link(ledger: Settings) -> None:
    def edit(rows: list[dict[str, Any]], *, fix_hash: bool) -> list[dict[str, Any]]:
        row = audit_rows(rows)[1]
        doc = orjson.loads(row["manifest"])
        doc["api_total"] = (doc["api_total"] or 0) + 1
        if fix_hash:
            rehashed(row, doc)
        else:
            row["manifest"] = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
        return rows

    tamper_manifests(ledger, lambda rows: edit(rows, fix_hash=False))
    code, out = verify(ledger)
    assert code == 1 and "audit#2" in out and "does not match its recorded sha256" in out
    tamper_manifests(ledger, lambda rows: edit(rows, fix_hash=True))
    code, out = verify(ledger)
    assert code == 1 and "prev_sha256" in out and "audit#3" in out


def test_consistently_edited_last_manifest_is_caught_by_recounting(ledger: Settings) -> None:
    """Rewriting the newest manifest to match a changed row count still disagrees with the file."""

    def edit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        last = [r for r in audit_rows(rows) if orjson.loads(r["manifest"])["files"]][-1]
        doc = orjson.loads(last["manifest"])
        doc["files"][0]["rows"] += 5
        rehashed(last, doc)
        return rows

    tamper_manifests(ledger, edit)
    code, out = verify(ledger)
    assert code == 1
    assert "rows" in out


def test_reordered_manifests_are_caught(ledger: Settings) -> None:
    def swap(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        first, second = audit_rows(rows)[:2]
        first["manifest"], second["manifest"] = second["manifest"], first["manifest"]
        first["sha256"], second["sha256"] = second["sha256"], first["sha256"]
        return rows

    tamper_manifests(ledger, swap)
    code, out = verify(ledger)
    assert code == 1
    assert "reordered" in out


def test_deleted_manifest_is_caught(ledger: Settings) -> None:
    tamper_manifests(ledger, lambda rows: [r for r in rows if (r["stream"], r["seq"]) != ("audit", 3)])
    code, out = verify(ledger)
    assert code == 1
    assert "missing before seq 4" in out and "audit#4" in out


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
    newest = len(manifests(ledger))

    def damage(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        audit_rows(rows)[-1]["manifest"] = "{not json"
        return rows

    tamper_manifests(ledger, damage)
    sync_audit(ledger, now=NOW + timedelta(minutes=3))
    assert len(read_chain(Lake(ledger.lake_uri), "audit")) > newest
    code, out = verify(ledger)
    assert code == 1
    assert "MANIFEST" in out and f"audit#{newest}" in out and "unreadable JSON" in out
    assert "prev_sha256" not in out  # the next manifest links to the hash recorded for the damaged one
