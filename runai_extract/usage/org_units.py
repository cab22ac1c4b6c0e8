"""Sync of the org units (clusters, departments, projects, node pools, users) as versioned dimensions.

Each list is small, so every run reads it whole (README §6: clusters and users are bare arrays,
node pools never send ``next``) and stores a new version of a unit only when its row_hash changed;
a unit that was stored and is no longer listed gets a tombstone version (``is_deleted``). The
views turn versions into valid_from/valid_to ranges, so a renamed project still reports under
the name it had at the time.

Kinds are independent: one that fails (a 403 on users for a token without that permission, say)
is recorded and reported, the others are still stored, and the run ends as failed so a scheduler
notices. The watermark (``_state/org.json``) is the server time of the last complete run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from runai_extract.api.client import RunaiClient
from runai_extract.api.endpoints import CLUSTERS, DEPARTMENTS, NODE_POOLS, PROJECTS, USERS, Endpoint
from runai_extract.api.features import fetch_org_list
from runai_extract.core.errors import AuthError, LedgerError
from runai_extract.core.settings import Settings, require_api
from runai_extract.core.times import format_utc
from runai_extract.ledger.manifests import manifest_pending, record_usage_run
from runai_extract.ledger.run_records import SliceResult, add_request_stats, new_run_id, record_run
from runai_extract.ledger.watermarks import StateStore, commit_app
from transforms.audit import QuarantinedRecord
from transforms.catalog import ORG_TABLES, QUARANTINE_TABLE
from transforms.orgunits import ORG_KINDS, OrgKind, normalise_org
from transforms.records import row_hash, to_table
from transforms.storage import Lake
from transforms.tables import Commit, Tables
from transforms.versions import latest_versions
from transforms.writer import quarantine_table

log = logging.getLogger(__name__)

ORG_STREAM = "org"
ORG_ENDPOINTS: dict[str, Endpoint] = {
    "clusters": CLUSTERS,
    "departments": DEPARTMENTS,
    "node_pools": NODE_POOLS,
    "projects": PROJECTS,
    "users": USERS,
}


@dataclass
class KindResult:
    """What one kind's list gave: units listed, versions stored, tombstones, rejects, or the error."""

    listed: int = 0
    new_versions: int = 0
    tombstones: int = 0
    quarantined: int = 0
    error: str | None = None
    files: list[str] = field(default_factory=list)
    commit: Commit | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "commit"}


@dataclass
class OrgSyncSummary:
    """A JSON-able account of one org-units run."""

    run_id: str
    stream: str = ORG_STREAM
    status: str = "running"
    since: datetime | None = None  # the previous complete run's server time, minus the overlap
    observed_at: datetime | None = None
    kinds: dict[str, KindResult] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "stream": self.stream,
            "status": self.status,
            "since": format_utc(self.since) if self.since else None,
            "observed_at": format_utc(self.observed_at) if self.observed_at else None,
            "kinds": {name: result.to_dict() for name, result in sorted(self.kinds.items())},
            "requests": self.requests,
            "seconds": self.seconds,
        }


def sync_org(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> OrgSyncSummary:
    """Store a new version of every org unit that changed (or disappeared) since the last run."""
    lake = Lake(settings.lake_uri)
    store = StateStore(lake)
    started, started_at = time.monotonic(), datetime.now(UTC)
    summary = OrgSyncSummary(new_run_id())
    # No lock: a concurrent run of the stream conflicts on its commit app id and fails cleanly.
    state = store.read(ORG_STREAM)
    summary.since = state.watermark - settings.overlap if state else None
    with RunaiClient(require_api(settings), transport=transport) as client:
        before = client.stats.snapshot()
        client.connect()  # a wrong URL or credentials fail here once, not once per kind
        for name, kind in sorted(ORG_KINDS.items()):
            summary.kinds[name] = _sync_kind(lake, client, kind, summary, settings.page_size)
        record = SliceResult(started_at, started_at)
        add_request_stats(record, before, client.stats.snapshot())
    summary.requests = record.requests
    summary.status = "failed" if any(k.error for k in summary.kinds.values()) else "committed"
    summary.seconds = time.monotonic() - started
    _record(lake, summary, record, started_at, settings)
    manifest_pending(lake, summary.run_id)
    if summary.status == "committed" and summary.observed_at is not None:
        store.commit(ORG_STREAM, summary.observed_at, summary.run_id)
    log.info("org sync %s finished: %s", summary.run_id, summary.to_dict())
    return summary


def _sync_kind(
    lake: Lake, client: RunaiClient, kind: OrgKind, summary: OrgSyncSummary, page_size: int
) -> KindResult:
    result = KindResult()
    try:
        items = fetch_org_list(client, ORG_ENDPOINTS[kind.name], page_size)  # 2.18 node-pool fallback
    except AuthError:
        raise
    except LedgerError as exc:
        result.error = str(exc)
        log.error("org units %s not synced: %s", kind.name, exc)
        return result
    observed_at = client.server_time or datetime.now(UTC)
    summary.observed_at = max(summary.observed_at or observed_at, observed_at)
    result.listed = len(items)
    lineage: dict[str, Any] = {
        "observed_at": observed_at,
        "run_id": summary.run_id,
        "ingested_at": datetime.now(UTC),
    }
    normalised = normalise_org(kind, items, **lineage)
    tables = Tables(lake)
    spec = ORG_TABLES[kind.name]
    snapshot = tables.load(spec)
    stored = latest_versions(lake, spec, kind.id_column, snapshot=snapshot)
    fresh = [
        row
        for row in normalised.rows
        if stored.get(row[kind.id_column], {}).get("row_hash") != row["row_hash"]
    ]
    listed_ids = {row[kind.id_column] for row in normalised.rows}
    rejected_any = bool(normalised.rejected)
    tombstones = [] if rejected_any else _tombstones(stored, listed_ids, kind, lineage)
    result.new_versions, result.tombstones = len(fresh), len(tombstones)
    if fresh or tombstones:
        base = snapshot if snapshot is not None else tables.ensure(spec)
        counter = tables.app_version(spec, commit_app(ORG_STREAM), snapshot=base) or 0
        staged = tables.stage(spec, to_table([*fresh, *tombstones], kind.schema))
        result.commit = tables.commit(
            spec,
            [staged],
            snapshot=base,
            app_txns={commit_app(ORG_STREAM): counter + 1},
            metadata={"stream": ORG_STREAM, "run_id": summary.run_id, "kind": kind.name},
        )
        result.files.extend(f"{spec.name}/{add.path}" for add in result.commit.adds)
    if normalised.rejected:
        result.quarantined = len(normalised.rejected)
        _quarantine(lake, kind, normalised.rejected, summary.run_id, observed_at)
    return result


def _quarantine(
    lake: Lake, kind: OrgKind, records: list[QuarantinedRecord], run_id: str, at: datetime
) -> None:
    """Rejected units of one kind, kept with their reasons; the window is the moment of the listing."""
    stream, start, end = f"org_{kind.name}", at - timedelta(seconds=1), at
    table = quarantine_table(
        records,
        stream=stream,
        run_id=run_id,
        window_start=start,
        window_end=end,
        page_offset=None,
        quarantined_at=datetime.now(UTC),
    )
    Tables(lake).append(QUARANTINE_TABLE, table, metadata={"stream": stream, "run_id": run_id})
    for rec in records[:20]:
        log.warning("quarantined %s record %d: %s", kind.name, rec.record_index, rec.reason)


def _tombstones(
    stored: dict[str, dict[str, Any]], listed: set[str], kind: OrgKind, lineage: dict[str, Any]
) -> list[dict[str, Any]]:
    """A deleted version for every stored, not yet deleted unit the API no longer lists.

    Skipped when any record of the list was rejected: a unit we could not read is not a unit
    that was deleted.
    """
    rows = []
    for unit_id, latest in sorted(stored.items()):
        if unit_id in listed or latest["is_deleted"]:
            continue
        row = {**latest, "is_deleted": True, "observed_at": lineage["observed_at"]}
        row.update(ingest_run_id=lineage["run_id"], ingested_at=lineage["ingested_at"])
        row["row_hash"] = row_hash({"deleted_from": latest["row_hash"]}, ["deleted_from"])
        rows.append(row)
    return rows


def _record(
    lake: Lake, summary: OrgSyncSummary, record: SliceResult, started_at: datetime, settings: Settings
) -> None:
    # The run vouches for the versions between the last complete run and now: contiguous windows,
    # so ingest_gaps shows a stretch no org run covered (the first run: the initial lookback).
    end = summary.observed_at or datetime.now(UTC)
    start = summary.since or end - settings.initial_lookback
    record.window_start, record.window_end = (start, end) if start < end else (end - settings.overlap, end)
    record.status = summary.status
    record.rows_received = sum(k.listed for k in summary.kinds.values())
    record.rows_written = record.rows_new = sum(k.new_versions + k.tombstones for k in summary.kinds.values())
    record.quarantined = sum(k.quarantined for k in summary.kinds.values())
    errors = [f"{name}: {k.error}" for name, k in sorted(summary.kinds.items()) if k.error]
    record.error = "; ".join(errors) or None
    record.files = [path for kind in summary.kinds.values() for path in kind.files]
    record_run(lake, summary.run_id, "sync", record, started_at, stream=ORG_STREAM)
    # Manifested whatever the status: the kinds that worked stored complete files.
    params = {
        "endpoints": [ORG_ENDPOINTS[name].path for name in sorted(summary.kinds)],
        "limit": settings.page_size,
    }
    commits = [kind.commit for _, kind in sorted(summary.kinds.items()) if kind.commit is not None]
    record_usage_run(lake, ORG_STREAM, record, summary.run_id, commits, params)
