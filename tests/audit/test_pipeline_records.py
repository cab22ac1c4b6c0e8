"""What happens to individual records on the way in: quarantine, drift, and secrets kept out.

The server is faked at the HTTP level (httpx.MockTransport) where a test needs exact payloads,
and is the project's fake control plane over loopback where it needs a whole tenant.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from runai_extract.audit.sync import sync_audit
from runai_extract.core.settings import load_settings
from runai_extract.core.times import parse_api_time
from runai_extract.fake import FakeControlPlane
from tests.conftest import CLIENT_SECRET, FAKE_NOW, settings_for
from tests.lake_reading import audit_rows, table_rows
from transforms.catalog import QUARANTINE_TABLE
from transforms.storage import Lake
from warehouse.build import ensure_views
from warehouse.query import run_query

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN = "opaque-access-token-0123456789"


def row(n: int, **overrides: Any) -> dict[str, Any]:
    base = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "timestamp": f"2026-11-20T10:{n:02d}:00.000Z",
        "tenant_id": "1001",
        "subject": "jane.doe@example.com",
        "subject_type": "User",
        "source_ip": "10.0.0.1",
        "action": "update",
        "http_method": "PUT",
        "url": "/api/v1/org-unit/projects/5",
        "entity_type": "project",
        "entity_name": "team-nlp",
        "entity_id": "5",
        "result": "Succeeded",
        "http_status_code": 200,
    }
    base.update(overrides)
    return base


def tenant(rows: list[dict[str, Any]]) -> httpx.MockTransport:
    """A control plane that serves ``rows`` (inclusive window, ascending) behind a token."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/token":
            return httpx.Response(200, json={"accessToken": TOKEN, "expiresIn": 3600})
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        start, end = (parse_api_time(request.url.params[k]) for k in ("start", "end"))
        offset, size = int(request.url.params.get("offset", 0)), int(request.url.params["numberOfSamples"])
        inside = [r for r in rows if not r.get("timestamp") or start <= parse_api_time(r["timestamp"]) <= end]
        page = inside[offset : offset + size]
        body: dict[str, Any] = {"total": len(inside), "audit_logs": page}
        if offset + len(page) < len(inside):
            body["next"] = offset + len(page)
        return httpx.Response(200, content=orjson.dumps(body), headers={"content-type": "application/json"})

    return httpx.MockTransport(handle)


def test_a_bad_record_is_quarantined_and_its_neighbours_kept(tmp_path: Path) -> None:
    rows = [
        row(1),
        row(2, timestamp=None),
        row(3, http_status_code="200"),
        row(4, brand_new_field="x", action="impersonate"),
        row(5, tenant_id=1001),
    ]
    settings = load_settings(
        {},
        home=tmp_path,
        base_url="https://acme.run.ai",
        client_id="svc",
        client_secret="pw",
        initial_lookback=timedelta(hours=6),
    )
    summary = sync_audit(settings, now=NOW, transport=tenant(rows))

    stored = sorted(audit_rows(tmp_path / "lake"), key=lambda r: r["event_time"])
    assert [r["event_id"][-1] for r in stored] == ["1", "4", "5"]
    assert stored[2]["tenant_id"] == "1001"
    assert stored[1]["action"] == "impersonate"  # a newer control plane's action is kept, not lost

    quarantined = table_rows(tmp_path / "lake", QUARANTINE_TABLE).to_pylist()
    reasons = {orjson.loads(q["raw"])["id"][-1]: q["reason"] for q in quarantined}
    assert set(reasons) == {"2", "3"}
    assert "timestamp" in reasons["2"] and "http_status_code" in reasons["3"]

    totals = summary.totals()
    assert (totals["rows_received"], totals["rows_new"], totals["quarantined"]) == (5, 3, 2)
    drift = summary.to_dict()["drift"]
    assert drift["field:brand_new_field"] == 1 and drift["enum:action=impersonate"] == 1

    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    runs = run_query(settings.warehouse_path, "select quarantined, rows_new from ingest_runs").to_pylist()
    assert runs == [{"quarantined": 2, "rows_new": 3}]
    assert run_query(settings.warehouse_path, "select count(*) as n from quarantine").to_pylist() == [
        {"n": 2}
    ]


def test_secret_and_tokens_never_reach_logs_or_the_lake(
    fake: FakeControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(fake, tmp_path)
    with caplog.at_level(logging.DEBUG):
        sync_audit(settings, now=FAKE_NOW + timedelta(minutes=5))
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))

    produced = [caplog.text]
    for file in sorted(tmp_path.rglob("*")):
        if file.suffix == ".parquet":
            produced.append(orjson.dumps(pq.read_table(file).to_pylist(), default=str).decode())
        elif file.is_file():
            produced.append(file.read_bytes().decode("utf-8", errors="replace"))
    everything = "\n".join(produced)
    assert CLIENT_SECRET not in everything
    assert "Bearer " not in everything
    assert "eyJ" not in everything  # no JWT (header segment of every token the fake issues)
