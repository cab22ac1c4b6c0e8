"""``runai-ledger crosscheck usage``: our GPU-hours for a period against Run:ai's own report.

Requests the period's consumption report (consumption_reports.py), stores it, refreshes the views
and reads ``usage_crosscheck_runai_report`` for that report: per project and per department, ours,
Run:ai's and the difference. The check fails when any relative difference exceeds the tolerance
(default 1%), naming each unit that does. The period must be whole UTC days (GPU-hours are kept per
day) and should be closed and synced: a day still running differs because Run:ai counts to its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from runai_extract.api.client import RunaiClient
from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import Settings, require_api
from runai_extract.core.times import format_utc
from runai_extract.ledger.manifests import manifest_pending, record_usage_run
from runai_extract.ledger.run_records import SliceResult, add_request_stats, new_run_id, record_run
from runai_extract.usage.consumption_reports import REPORTS_STREAM, fetch_report
from transforms.storage import Lake
from warehouse.analytics import Ledger, analytics_sql, whole_days
from warehouse.build import ensure_views

DEFAULT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Difference:
    level: str  # project | department
    unit_id: str
    unit_name: str
    our_gpu_hours: float
    runai_gpu_hours: float
    difference: float
    relative_difference: float

    def describe(self) -> str:
        return (
            f"{self.level} {self.unit_name} ({self.unit_id}) differs by {self.relative_difference:.2%}: "
            f"ours {self.our_gpu_hours:,.2f} GPU-hours, Run:ai {self.runai_gpu_hours:,.2f}"
        )


@dataclass
class CrosscheckResult:
    report_id: str
    start: datetime
    end: datetime
    tolerance: float
    rows: list[Difference] = field(default_factory=list)

    @property
    def failures(self) -> list[Difference]:
        return [row for row in self.rows if row.relative_difference > self.tolerance]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(start=format_utc(self.start), end=format_utc(self.end))
        out["failures"] = [row.describe() for row in self.failures]
        return out


def crosscheck_usage(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CrosscheckResult:
    """Fetch and store Run:ai's report for [start, end) and compare it with the ledger's GPU-hours."""
    if not 0 <= tolerance < 1:
        raise ConfigError(f"the tolerance is a fraction between 0 and 1 (0.01 = 1%), got {tolerance}")
    start, end = whole_days(start, end)
    lake = Lake(settings.lake_uri)
    run_id, started_at = new_run_id(), datetime.now(UTC)
    record = SliceResult(start, end)
    with RunaiClient(require_api(settings), transport=transport) as client:
        before = client.stats.snapshot()
        try:
            stored = fetch_report(client, lake, start, end, run_id=run_id, sleep=sleep)
            record.status, record.rows_written = "committed", stored.rows
            record.rows_new = stored.rows
            record.files = [f"{stored.commit.table}/{a.path}" for a in stored.commit.adds]
        except Exception as exc:
            record.status, record.error = "failed", str(exc)
            raise
        finally:
            add_request_stats(record, before, client.stats.snapshot())
            record_run(lake, run_id, "crosscheck", record, started_at, stream=REPORTS_STREAM)
    params = {"groupBy": "Project", "start": format_utc(start), "end": format_utc(end)}
    record_usage_run(lake, REPORTS_STREAM, record, run_id, [stored.commit], params)
    manifest_pending(lake, run_id)
    ensure_views(settings.warehouse_path, lake, pseudonym_key=settings.pseudonym_key)
    frame = Ledger(settings.warehouse_path).sql(
        analytics_sql("crosscheck_report"), {"report_id": stored.report_id}
    )
    rows = [
        Difference(
            level=str(r["level"]),
            unit_id=str(r["unit_id"]),
            unit_name=str(r["unit_name"]),
            our_gpu_hours=float(r["our_gpu_hours"]),
            runai_gpu_hours=float(r["runai_gpu_hours"]),
            difference=float(r["difference"]),
            relative_difference=float(r["relative_difference"]),
        )
        for r in frame.to_dict("records")
    ]
    return CrosscheckResult(stored.report_id, start, end, tolerance, rows)
