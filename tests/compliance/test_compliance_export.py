"""export compliance: deterministic bundles an auditor can check with sha256sum alone."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from runai_extract.cli.main import app
from runai_extract.core.settings import Settings
from tests.compliance.conftest import SEALED_DAY
from tests.lake_reading import live_files
from warehouse.query import run_query

DAY = SEALED_DAY.strftime("%Y-%m-%dT%H:%M:%SZ")
NEXT_DAY = (SEALED_DAY + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
DAY_AFTER = (SEALED_DAY + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


def export(
    settings: Settings, out: Path, *args: str, start: str = DAY, end: str = NEXT_DAY
) -> tuple[int, str]:
    argv = [
        "export",
        "compliance",
        "--home",
        str(settings.home),
        "--start",
        start,
        "--end",
        end,
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, [*argv, *args])
    return result.exit_code, " ".join(result.output.split()) + repr(result.exception or "")


def verify_bundle(out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", "--bundle", str(out)])
    return result.exit_code, " ".join(result.output.split())


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_same_period_twice_gives_byte_identical_bundles(ledger: Settings, tmp_path: Path, fmt: str) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert export(ledger, first, "--format", fmt)[0] == 0
    assert export(ledger, second, "--format", fmt)[0] == 0
    assert files_of(first) == files_of(second)
    names = set(files_of(first))
    assert {"manifest.json", "SHA256SUMS", f"compliance_sign_ins.{fmt}"} <= names
    assert len(names) == 2 + 4  # every compliance view by default


def test_bundle_rows_match_the_views_and_the_manifest_says_how(ledger: Settings, tmp_path: Path) -> None:
    code, out = export(ledger, tmp_path / "b", "--format", "jsonl", "--view", "compliance_sign_ins")
    assert code == 0, out
    manifest = orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())
    (entry,) = manifest["views"]
    expected = (
        run_query(
            ledger.warehouse_path,
            "select count(*) as n from compliance_sign_ins where event_time >= ?::timestamptz and event_time < ?::timestamptz",
            [DAY, NEXT_DAY],
        )
        .column("n")[0]
        .as_py()
    )
    lines = (tmp_path / "b" / "compliance_sign_ins.jsonl").read_text().splitlines()
    assert entry["rows"] == len(lines) == expected > 0
    times = [(orjson.loads(line)["event_time"], orjson.loads(line)["event_id"]) for line in lines]
    assert times == sorted(times)
    assert "$start" in entry["sql"] and entry["parameters"]["start"].startswith(DAY[:10])
    assert manifest["chain_head"]["stream"] == "audit" and len(manifest["chain_head"]["sha256"]) == 64
    assert manifest["coverage"]["status"] == "complete"
    assert {c["name"] for c in entry["columns"]} >= {"event_id", "event_time", "success"}


def test_sha256sum_and_verify_bundle_accept_a_clean_bundle(ledger: Settings, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert export(ledger, out, "--format", "csv")[0] == 0
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    code, text = verify_bundle(out)
    assert code == 0 and "OK" in text


def test_verify_bundle_names_a_changed_removed_or_added_file(ledger: Settings, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert export(ledger, out, "--format", "csv")[0] == 0
    sign_ins = out / "compliance_sign_ins.csv"
    sign_ins.write_text(sign_ins.read_text() + "forged,row\r\n")
    (out / "compliance_failed_actions.csv").unlink()
    (out / "notes.txt").write_text("added later")
    code, text = verify_bundle(out)
    assert code == 1
    assert "CHANGED: compliance_sign_ins.csv" in text
    assert "rows; manifest.json says" in text
    assert "DELETED: compliance_failed_actions.csv" in text
    assert "INSERTED: notes.txt" in text


def test_incomplete_period_is_flagged_and_can_be_refused(ledger: Settings, tmp_path: Path) -> None:
    """The day after the sealed one was never rechecked and ends past the watermark: not complete."""
    code, text = export(ledger, tmp_path / "b", start=NEXT_DAY, end=DAY_AFTER)
    assert code == 0, text
    assert "INCOMPLETE" in text
    manifest = orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())
    assert manifest["coverage"]["status"] == "incomplete"
    assert {i["status"] for i in manifest["coverage"]["issues"]} >= {"pending"}

    refused = tmp_path / "refused"
    cli = [sys.executable, "-m", "runai_extract.cli", "export", "compliance", "--home", str(ledger.home)]
    result = subprocess.run(
        [*cli, "--start", NEXT_DAY, "--end", DAY_AFTER, "--out", str(refused), "--refuse-incomplete"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "runai-ledger: error:" in result.stderr and "INCOMPLETE" in result.stderr
    assert not refused.exists() or not any(refused.iterdir())


def test_unknown_view_and_foreign_output_directory_are_refused(ledger: Settings, tmp_path: Path) -> None:
    code, text = export(ledger, tmp_path / "b", "--view", "audit_events")
    assert code != 0 and "unknown view" in text
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.docx").write_text("mine")
    code, text = export(ledger, busy)
    assert code != 0 and "already holds other files" in text


def test_a_damaged_lake_file_stops_the_export_before_anything_is_written(
    ledger: Settings, tmp_path: Path
) -> None:
    victim = live_files(ledger.lake_uri)[0]
    victim.write_bytes(victim.read_bytes()[:-20])
    code, text = export(ledger, tmp_path / "b")
    assert code == 1
    assert victim.name in text  # named by the view build or by the export query, whichever reads it first
    assert not (tmp_path / "b").exists()


def test_an_attachment_is_listed_and_checksummed_and_a_clashing_name_is_refused(
    ledger: Settings, tmp_path: Path
) -> None:
    from runai_extract.compliance.bundles import verify_bundle
    from runai_extract.compliance.export import ExportRequest, export_compliance
    from runai_extract.core.errors import ConfigError
    from transforms.storage import Lake

    request = ExportRequest(SEALED_DAY, SEALED_DAY + timedelta(days=1), "csv")
    page = b"<!DOCTYPE html><p>the day at a glance</p>\n"
    bundle = export_compliance(ledger, request, Lake(str(tmp_path / "b")), attachments={"report.html": page})
    assert bundle.manifest["attachments"] == [
        {"file": "report.html", "bytes": len(page), "sha256": hashlib.sha256(page).hexdigest()}
    ]
    assert (tmp_path / "b" / "report.html").read_bytes() == page
    assert "  report.html\n" in (tmp_path / "b" / "SHA256SUMS").read_text()
    assert verify_bundle(Lake(str(tmp_path / "b"))) == []
    for name in ("manifest.json", "compliance_sign_ins.csv", "../report.html", ".hidden"):
        with pytest.raises(ConfigError, match="must be a plain file name"):
            export_compliance(ledger, request, Lake(str(tmp_path / "c")), attachments={name: page})
    assert not (tmp_path / "c").exists()
