"""Run:ai's own consumption report for a period, requested, downloaded and stored: the number a
customer holds our GPU-hours against (``runai-ledger crosscheck usage``).

``POST /api/v1/org-unit/reports`` (groupBy Project) answers 202 with a Pending report; it is polled
(``GET .../reports/{id}``, backing off from half a second to ten) until Ready or Failed, its CSV is
downloaded (``GET .../file``), parsed and stored in ``usage/runai_consumption_reports`` (one row
per project, the CSV row kept whole), and the report is deleted on the control plane. The CSV's
columns are not in the spec: the ones read here are named in ``COLUMNS``; a file without a project
id or a GPU-hours column is refused with the columns it did have.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runai_extract.api.client import RunaiClient
from runai_extract.core.errors import ApiContractError, LedgerError
from runai_extract.core.times import format_api_time
from runai_extract.ledger.watermarks import commit_app
from runai_extract.usage.metric_fetch import key_hash
from transforms.catalog import RUNAI_REPORTS_TABLE
from transforms.records import to_table
from transforms.storage import Lake
from transforms.tables import Commit, Tables

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/org-unit/reports"
REPORTS_STREAM = "reports"
# Our column -> the CSV headers it may come under (first found wins).
COLUMNS: dict[str, tuple[str, ...]] = {
    "project_id": ("projectId", "Project ID", "project_id"),
    "project_name": ("projectName", "Project", "project_name"),
    "department_id": ("departmentId", "Department ID", "department_id"),
    "department_name": ("departmentName", "Department", "department_name"),
    "cluster_id": ("clusterId", "Cluster ID", "cluster_id"),
    "gpu_allocation_hours": ("gpuAllocationHours", "GPU allocation hours", "gpu_allocation_hours"),
    "gpu_utilization_hours": ("gpuUtilizationHours", "GPU utilization hours", "gpu_utilization_hours"),
}
REQUIRED = ("project_id", "gpu_allocation_hours")


@dataclass(frozen=True)
class StoredReport:
    report_id: str
    rows: int
    status_polls: int
    commit: Commit


def fetch_report(
    client: RunaiClient,
    lake: Lake,
    start: datetime,
    end: datetime,
    *,
    run_id: str,
    max_wait_s: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> StoredReport:
    """Request the period's report grouped by project, wait for it, store its rows, delete it."""
    request = {
        "name": f"runai-ledger crosscheck {start:%Y-%m-%d}..{end:%Y-%m-%d} ({run_id})",
        "description": "GPU-hours per project, requested by runai-ledger to cross-check its ledger",
        "start": format_api_time(start),
        "end": format_api_time(end),
        "groupBy": "Project",
    }
    created = client.post_json(REPORTS_PATH, request)
    report_id = str(created.get("id") or "") if isinstance(created, dict) else ""
    if not report_id:
        raise ApiContractError(f"POST {REPORTS_PATH}: the answer has no report id")
    try:
        polls = _wait_ready(client, report_id, max_wait_s, sleep)
        text = client.get_text(f"{REPORTS_PATH}/{report_id}/file")
        rows = parse_report(text, report_id, start, end, run_id)
        commit = _store(lake, rows, report_id, run_id)
    finally:
        try:
            client.delete(f"{REPORTS_PATH}/{report_id}")
        except LedgerError as exc:  # the report is kept on the control plane: say so, carry on
            log.warning("report %s was not deleted on the control plane: %s", report_id, exc)
    return StoredReport(report_id, len(rows), polls, commit)


def _wait_ready(
    client: RunaiClient, report_id: str, max_wait_s: float, sleep: Callable[[float], None]
) -> int:
    waited, pause, polls = 0.0, 0.5, 0
    while True:
        report = client.get_json(f"{REPORTS_PATH}/{report_id}", {})
        polls += 1
        status = report.get("status") if isinstance(report, dict) else None
        if status == "Ready":
            return polls
        if status == "Failed":
            raise LedgerError(
                f"Run:ai could not build report {report_id}: {report.get('statusMessage') or 'Failed'}"
            )
        if waited >= max_wait_s:
            raise LedgerError(
                f"report {report_id} was still {status} after {max_wait_s:.0f} s; try again later"
            )
        sleep(pause)
        waited += pause
        pause = min(pause * 2, 10.0)


def parse_report(
    text: str, report_id: str, start: datetime, end: datetime, run_id: str
) -> list[dict[str, Any]]:
    """The CSV's rows as rows of ``usage/runai_consumption_reports``."""
    reader = csv.DictReader(io.StringIO(text))
    headers = reader.fieldnames or []
    found = {ours: next((h for h in names if h in headers), None) for ours, names in COLUMNS.items()}
    missing = [ours for ours in REQUIRED if found[ours] is None]
    if missing:
        raise ApiContractError(
            f"report {report_id}: no column for {', '.join(missing)} in its CSV (columns: {', '.join(headers)})"
        )
    ingested_at = datetime.now(UTC)
    rows = []
    for record in reader:
        row: dict[str, Any] = {ours: record.get(header) if header else None for ours, header in found.items()}
        for number in ("gpu_allocation_hours", "gpu_utilization_hours"):
            row[number] = _hours(row[number], report_id)
        row.update(
            report_id=report_id,
            period_start=start,
            period_end=end,
            group_by="Project",
            columns={key: value for key, value in record.items() if key is not None},
            row_hash=key_hash(report_id, row["project_id"]),
            ingest_run_id=run_id,
            ingested_at=ingested_at,
        )
        rows.append(row)
    return rows


def _hours(raw: object, report_id: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(str(raw))
    except ValueError:
        raise ApiContractError(f"report {report_id}: {raw!r} is not a number of GPU-hours") from None


def _store(lake: Lake, rows: list[dict[str, Any]], report_id: str, run_id: str) -> Commit:
    tables = Tables(lake)
    snapshot = tables.ensure(RUNAI_REPORTS_TABLE)
    app = commit_app(REPORTS_STREAM)
    counter = tables.app_version(RUNAI_REPORTS_TABLE, app, snapshot=snapshot) or 0
    files = [tables.stage(RUNAI_REPORTS_TABLE, to_table(rows, RUNAI_REPORTS_TABLE.schema))] if rows else []
    return tables.commit(
        RUNAI_REPORTS_TABLE,
        files,
        snapshot=snapshot,
        app_txns={app: counter + 1},
        metadata={"stream": REPORTS_STREAM, "run_id": run_id, "report_id": report_id},
    )
