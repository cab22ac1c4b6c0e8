"""GPU metrics of workloads: what each workload's GPUs did since the last fetch, stored once.

Runs after every workloads run (stream_runner), from what the lake knows about workloads (the
latest snapshot of each), so it needs no listing of its own:

* a workload not finished yet is read from its cursor (or its creation) up to the server's time,
  cut to the resolution: GPU_UTILIZATION, GPU_MEMORY_USAGE_BYTES and GPU_ALLOCATION;
* a finished one is read once more, up to the sample at its completion (its tail), and then never
  again (its cursor is past its end);
* what lies before the control plane's metrics retention (``Settings.retention['metrics']``) is
  logged as a gap and reported, and a workload the API no longer knows (404) is one gap whole.

The stream's watermark (committed after the samples and the fetch log) is the server time the run
fetched up to; ``status`` and the retention alert read it like any other stream's.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
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
from runai_extract.usage.metric_windows import FetchPlan, align_down, check_resolution, plan_fetch
from transforms.catalog import METRIC_FETCHES_TABLE, WORKLOAD_METRIC_SAMPLES_TABLE, WORKLOAD_SNAPSHOTS_TABLE
from transforms.records import to_table
from transforms.storage import Lake
from transforms.tables import Commit, Tables
from transforms.versions import latest_versions

log = logging.getLogger(__name__)

WORKLOAD_METRIC_TYPES = ("GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "GPU_ALLOCATION")
TERMINAL = ("Completed", "Failed", "Stopped")
CLOCK_PATH = "/api/v1/workloads/count"  # a cheap request whose Date header is the server's time


@dataclass
class MetricSyncSummary:
    """A JSON-able account of one metrics run."""

    run_id: str
    stream: str = METRICS_STREAM
    status: str = "running"
    resolution_s: int = 60
    fetched_until: datetime | None = None
    workloads_fetched: int = 0
    workloads_done: int = 0  # finished workloads whose tail was read this run
    samples_new: int = 0
    requests: int = 0
    rejected_samples: int = 0
    gaps: list[str] = field(default_factory=list)  # "workload <id>: <start> .. <end> (why)"
    failed: list[str] = field(default_factory=list)
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    fetched_from: datetime | None = None  # the earliest instant this run asked for
    commits: list[Commit] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("commits")
        for key in ("fetched_until", "watermark_before", "watermark_after", "fetched_from"):
            value = getattr(self, key)
            out[key] = format_utc(value) if value else None
        return out


def sync_workload_metrics(
    settings: Settings,
    *,
    resolution: timedelta | None = None,
    transport: httpx.BaseTransport | None = None,
) -> MetricSyncSummary:
    """Fetch and store the GPU metrics of every workload with samples not stored yet.

    ``resolution``: the spacing of samples (default ``Settings.metrics_resolution``, one a minute).
    """
    resolution = check_resolution(resolution or settings.metrics_resolution)
    lake = Lake(settings.lake_uri)
    started, started_at = time.monotonic(), datetime.now(UTC)
    summary = MetricSyncSummary(new_run_id(), resolution_s=int(resolution.total_seconds()))
    before_state = StateStore(lake).read(METRICS_STREAM)
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
        state = StateStore(lake).commit(METRICS_STREAM, summary.fetched_until, summary.run_id)
        summary.watermark_after = state.watermark
    log.info("metrics sync %s finished: %s", summary.run_id, summary.to_dict())
    return summary


def _run(
    settings: Settings, lake: Lake, client: RunaiClient, summary: MetricSyncSummary, resolution: timedelta
) -> None:
    client.get_json(CLOCK_PATH, {})
    server_now = client.server_time or datetime.now(UTC)
    until = align_down(server_now, resolution)
    summary.fetched_until = until
    oldest = server_now - settings.retention["metrics"] + resolution  # a sample's margin for clock skew
    tables = Tables(lake)
    plans = _plans(lake, tables, until, oldest, resolution)
    starts = [plan.gap[0] if plan.gap else plan.start for plan in plans.values()]
    summary.fetched_from = min(starts, default=None)
    fetches: dict[str, SeriesFetch] = {}
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency), thread_name_prefix="metrics") as pool:
        futures = {
            workload_id: pool.submit(_fetch_one, client, workload_id, plan, resolution)
            for workload_id, plan in plans.items()
        }
        for workload_id, future in futures.items():
            try:
                fetches[workload_id] = future.result()
            except FatalApiError as exc:
                if exc.status != 404:
                    summary.failed.append(f"{workload_id}: {exc}")
                    continue
                plan = plans[workload_id]  # gone from the API: its samples are lost, say so
                whole = (plan.gap[0] if plan.gap else plan.start, plan.end)
                fetches[workload_id] = SeriesFetch(FetchPlan(whole[1], whole[1], whole))
    ingested_at = datetime.now(UTC)
    lineage = {"ingest_run_id": summary.run_id, "ingested_at": ingested_at}
    rows = sample_table(
        WORKLOAD_METRIC_SAMPLES_TABLE,
        {"workload_id": "id"},
        fetches,
        resolution,
        lineage,
    )
    keys = ("workload_id", "metric", "labels", "sample_time")
    summary.samples_new, commit = commit_new_rows(
        tables, WORKLOAD_METRIC_SAMPLES_TABLE, rows, keys, summary.run_id
    )
    summary.commits.extend([commit] if commit else [])
    log_rows = to_table(fetch_log_rows("workload", fetches, resolution, lineage), METRIC_FETCHES_TABLE.schema)
    _, commit = commit_new_rows(tables, METRIC_FETCHES_TABLE, log_rows, ("row_hash",), summary.run_id)
    summary.commits.extend([commit] if commit else [])
    summary.workloads_fetched = sum(not f.plan.empty for f in fetches.values())
    summary.requests = sum(f.requests for f in fetches.values()) + 1
    summary.rejected_samples = sum(f.rejected for f in fetches.values())
    summary.gaps = [
        f"workload {workload_id}: {format_utc(f.plan.gap[0])} .. {format_utc(f.plan.gap[1])} "
        f"(past the metrics retention or gone from the API)"
        for workload_id, f in sorted(fetches.items())
        if f.plan.gap is not None
    ]
    for gap in summary.gaps[:10]:
        log.warning("metrics gap: %s", gap)
    summary.workloads_done = sum(1 for p in plans.values() if p.end < until)
    summary.status = "partial" if summary.failed else "committed"


def _fetch_one(client: RunaiClient, workload_id: str, plan: FetchPlan, resolution: timedelta) -> SeriesFetch:
    if plan.empty:
        return SeriesFetch(plan)
    path = f"/api/v1/workloads/{workload_id}/metrics"
    return fetch_series(client, path, WORKLOAD_METRIC_TYPES, plan, resolution)


def _plans(
    lake: Lake, tables: Tables, until: datetime, oldest: datetime, resolution: timedelta
) -> dict[str, FetchPlan]:
    """Per workload with samples not fetched yet: the span to read (and the part already expired)."""
    columns = ["created_at", "phase", "completed_at", "deleted_at", "phase_updated_at"]
    latest = latest_versions(lake, WORKLOAD_SNAPSHOTS_TABLE, "workload_id", columns)
    cursors = fetch_cursors(tables, "workload")
    plans = {}
    for workload_id, row in latest.items():
        created = row.get("created_at")
        if created is None:
            continue
        end = until
        if row.get("phase") in TERMINAL or row.get("deleted_at") is not None:
            finished = (
                row.get("completed_at") or row.get("deleted_at") or row.get("phase_updated_at") or until
            )
            end = min(until, align_down(finished, resolution) + resolution)  # the sample at its end, too
        start = cursors.get(workload_id) or created
        plan = plan_fetch(start, end, oldest, resolution)
        if not plan.empty or plan.gap is not None:
            plans[workload_id] = plan
    return plans


def _record(lake: Lake, summary: MetricSyncSummary, record: SliceResult, started_at: datetime) -> None:
    """One ingest_runs row per metrics run, and its manifest.

    The run's window joins the previous run's (from the stream's watermark), so hourly runs cover
    the time line without holes in covered_spans; the first run's starts at its earliest fetch.
    """
    end = summary.fetched_until or started_at
    start = summary.watermark_before or summary.fetched_from or end
    record.window_start, record.window_end = min(start, end), end
    record.status = {"committed": "committed", "partial": "partial"}.get(summary.status, "failed")
    record.rows_written = record.rows_new = summary.samples_new
    record.files = [f"{c.table}/{a.path}" for c in summary.commits for a in c.adds]
    problems = [*summary.failed[:5], *summary.gaps[:5]]
    record.error = summary.error or ("; ".join(problems) if problems else None)
    record_run(lake, summary.run_id, "sync", record, started_at, stream=METRICS_STREAM)
    if record.files or record.status != "failed":
        params = {"resolution_s": summary.resolution_s, "metricType": list(WORKLOAD_METRIC_TYPES)}
        record_usage_run(lake, METRICS_STREAM, record, summary.run_id, summary.commits, params)
