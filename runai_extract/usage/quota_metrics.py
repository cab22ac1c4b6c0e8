"""The org units' quota and allocation over time: GPU_QUOTA and GPU_ALLOCATION, a day at a time.

Quotas change rarely and allocation is already known per workload, so this series is read daily
(DAG ``runai_usage_daily`` or ``runai-ledger sync quotas``), whole closed UTC days only: from each
unit's cursor (first run: its creation, at most ``FIRST_FETCH_DAYS`` back) to the last
midnight of the server's clock, at a coarser default resolution than the workloads' (5 minutes).
Which units: the projects and departments the org stream stored and that are not removed. The
same fetch log, exactly-once commit and retention gaps as the workload metrics (metric_fetch.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from runai_extract.api.client import RunaiClient
from runai_extract.core.errors import FatalApiError
from runai_extract.core.settings import Settings, require_api
from runai_extract.core.times import format_utc
from runai_extract.ledger.manifests import manifest_pending, record_usage_run
from runai_extract.ledger.run_records import SliceResult, add_request_stats, new_run_id, record_run
from runai_extract.ledger.watermarks import StateStore
from runai_extract.usage.metric_fetch import (
    METRICS_STREAM,
    SeriesFetch,
    commit_new_rows,
    fetch_cursors,
    fetch_log_rows,
    fetch_series,
    sample_table,
)
from runai_extract.usage.metric_windows import check_resolution, plan_fetch
from transforms.catalog import METRIC_FETCHES_TABLE, ORG_TABLES, ORG_UNIT_METRIC_SAMPLES_TABLE
from transforms.records import to_table
from transforms.storage import Lake
from transforms.tables import Commit, Tables
from transforms.versions import latest_versions

log = logging.getLogger(__name__)

QUOTAS_STREAM = "quotas"
ORG_UNIT_METRIC_TYPES = ("GPU_QUOTA", "GPU_ALLOCATION")
DEFAULT_QUOTA_RESOLUTION = timedelta(minutes=5)
UNIT_KINDS = (("project", "projects", "project_id"), ("department", "departments", "department_id"))
DAY = timedelta(days=1)
# A unit's first fetch reaches back at most this far (and never past Settings.initial_lookback):
# older quota history is rarely asked for and would cost a first run 288 samples per unit and day.
FIRST_FETCH_DAYS = timedelta(days=7)


@dataclass
class QuotaSyncSummary:
    run_id: str
    stream: str = QUOTAS_STREAM
    status: str = "running"
    resolution_s: int = 300
    fetched_until: datetime | None = None
    units_fetched: int = 0
    samples_new: int = 0
    requests: int = 0
    gaps: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    commits: list[Commit] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("commits")
        for key in ("fetched_until", "watermark_before", "watermark_after"):
            value = getattr(self, key)
            out[key] = format_utc(value) if value else None
        return out


def sync_quota_metrics(
    settings: Settings,
    *,
    resolution: timedelta = DEFAULT_QUOTA_RESOLUTION,
    transport: httpx.BaseTransport | None = None,
) -> QuotaSyncSummary:
    """Store every closed day of GPU_QUOTA and GPU_ALLOCATION of each project and department."""
    resolution = check_resolution(resolution)
    if DAY % resolution:
        raise ValueError(f"the quota resolution must divide a day, got {resolution}")
    lake = Lake(settings.lake_uri)
    started, started_at = time.monotonic(), datetime.now(UTC)
    summary = QuotaSyncSummary(new_run_id(), resolution_s=int(resolution.total_seconds()))
    before_state = StateStore(lake).read(QUOTAS_STREAM)
    summary.watermark_before = before_state.watermark if before_state else None
    record = SliceResult(started_at, started_at)
    with RunaiClient(require_api(settings), transport=transport) as client:
        before = client.stats.snapshot()
        try:
            client.connect()
            _run(settings, lake, client, summary, resolution)
        except Exception as exc:
            summary.status, summary.error = "failed", str(exc)
            raise
        finally:
            add_request_stats(record, before, client.stats.snapshot())
            summary.seconds = time.monotonic() - started
            _record(lake, summary, record, started_at)
    manifest_pending(lake, summary.run_id)
    if summary.status == "committed" and summary.fetched_until is not None:
        state = StateStore(lake).commit(QUOTAS_STREAM, summary.fetched_until, summary.run_id)
        summary.watermark_after = state.watermark
    log.info("quota sync %s finished: %s", summary.run_id, summary.to_dict())
    return summary


def _run(
    settings: Settings, lake: Lake, client: RunaiClient, summary: QuotaSyncSummary, resolution: timedelta
) -> None:
    client.get_json("/api/v1/workloads/count", {})  # the server's clock, from its Date header
    server_now = client.server_time or datetime.now(UTC)
    midnight = server_now.replace(hour=0, minute=0, second=0, microsecond=0)
    summary.fetched_until = midnight
    oldest = server_now - settings.retention["metrics"] + resolution
    tables = Tables(lake)
    ingested_at = datetime.now(UTC)
    lineage = {"ingest_run_id": summary.run_id, "ingested_at": ingested_at}
    log_rows: list[dict[str, Any]] = []
    for unit_kind, table_kind, id_column in UNIT_KINDS:
        fetches = _fetch_kind(settings, lake, tables, client, summary, unit_kind, table_kind, id_column,
                              (midnight, oldest), resolution)  # fmt: skip
        constants = {"unit_kind": f"={unit_kind}", "unit_id": "id"}
        rows = sample_table(ORG_UNIT_METRIC_SAMPLES_TABLE, constants, fetches, resolution, lineage)
        keys = ("unit_kind", "unit_id", "metric", "sample_time")
        new, commit = commit_new_rows(tables, ORG_UNIT_METRIC_SAMPLES_TABLE, rows, keys, summary.run_id)
        summary.samples_new += new
        summary.commits.extend([commit] if commit else [])
        log_rows.extend(fetch_log_rows(unit_kind, fetches, resolution, lineage))
        summary.units_fetched += sum(not f.plan.empty for f in fetches.values())
        summary.requests += sum(f.requests for f in fetches.values())
        summary.gaps.extend(
            f"{unit_kind} {unit_id}: {format_utc(f.plan.gap[0])} .. {format_utc(f.plan.gap[1])} "
            "(past the metrics retention)"
            for unit_id, f in sorted(fetches.items())
            if f.plan.gap is not None
        )
    table = to_table(log_rows, METRIC_FETCHES_TABLE.schema)
    _, commit = commit_new_rows(tables, METRIC_FETCHES_TABLE, table, ("row_hash",), summary.run_id)
    summary.commits.extend([commit] if commit else [])
    for gap in summary.gaps[:10]:
        log.warning("quota series gap: %s", gap)
    summary.status = "partial" if summary.failed else "committed"


def _fetch_kind(
    settings: Settings,
    lake: Lake,
    tables: Tables,
    client: RunaiClient,
    summary: QuotaSyncSummary,
    unit_kind: str,
    table_kind: str,
    id_column: str,
    bounds: tuple[datetime, datetime],
    resolution: timedelta,
) -> dict[str, SeriesFetch]:
    midnight, oldest = bounds
    units = latest_versions(lake, ORG_TABLES[table_kind], id_column, ["created_at", "is_deleted"])
    cursors = fetch_cursors(tables, unit_kind)
    fetches: dict[str, SeriesFetch] = {}
    for unit_id, row in sorted(units.items()):
        if row.get("is_deleted"):
            continue
        lookback = min(settings.initial_lookback, FIRST_FETCH_DAYS)
        first = max(row.get("created_at") or midnight, midnight - lookback)
        plan = plan_fetch(cursors.get(unit_id) or first, midnight, oldest, resolution)
        if plan.empty and plan.gap is None:
            continue
        path = f"/api/v1/org-unit/{table_kind}/{unit_id}/metrics"
        try:
            fetch = SeriesFetch(plan)
            if not plan.empty:
                fetch = fetch_series(client, path, ORG_UNIT_METRIC_TYPES, plan, resolution)
        except FatalApiError as exc:
            summary.failed.append(f"{unit_kind} {unit_id}: {exc}")
            continue
        fetches[unit_id] = fetch
    return fetches


def _record(lake: Lake, summary: QuotaSyncSummary, record: SliceResult, started_at: datetime) -> None:
    end = summary.fetched_until or started_at
    start = summary.watermark_before or end - FIRST_FETCH_DAYS  # joins the previous run's window
    record.window_start, record.window_end = min(start, end), end
    record.status = {"committed": "committed", "partial": "partial"}.get(summary.status, "failed")
    record.rows_written = record.rows_new = summary.samples_new
    record.files = [f"{c.table}/{a.path}" for c in summary.commits for a in c.adds]
    problems = [*summary.failed[:5], *summary.gaps[:5]]
    record.error = summary.error or ("; ".join(problems) if problems else None)
    record_run(lake, summary.run_id, "sync", record, started_at, stream=QUOTAS_STREAM)
    if record.files or record.status != "failed":
        params = {"resolution_s": summary.resolution_s, "metricType": list(ORG_UNIT_METRIC_TYPES)}
        record_usage_run(lake, METRICS_STREAM, record, summary.run_id, summary.commits, params)
