"""Running a stream by name (audit, workloads, org, usage, all): one entry point for the CLI, the
DAGs and the demo, so each does not grow its own dispatch.

Order matters for ``usage``: org units first, so a workload's project already has a version with
the name it had when the workload ran, then workloads. Sits above audit/ and usage/ and below
cli/ and dags/.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runai_extract.core.errors import LedgerError
from runai_extract.core.settings import Settings
from runai_extract.usage.org_units import OrgSyncSummary, sync_org
from runai_extract.usage.workloads import WorkloadSyncSummary, sync_workloads

USAGE_STREAMS = ("org", "workloads")


def run_usage(
    settings: Settings, stream: str, *, created_between: tuple[datetime, datetime] | None = None
) -> list[WorkloadSyncSummary | OrgSyncSummary]:
    """Sync ``org``, ``workloads`` or both (``usage``), org first."""
    summaries: list[WorkloadSyncSummary | OrgSyncSummary] = []
    if stream in ("org", "usage"):
        summaries.append(sync_org(settings))
    if stream in ("workloads", "usage"):
        summaries.append(sync_workloads(settings, created_between=created_between))
    return summaries


def sync_stream(settings: Settings, stream: str, *, until: datetime | None = None) -> dict[str, Any]:
    """Sync one stream for a scheduler; a small JSON-able summary with ``rows_new`` for every stream.

    Raises LedgerError when a usage run failed (an org kind that could not be read, say) so the
    scheduler marks the task failed; the kinds that worked are stored all the same.
    """
    if stream == "audit":
        from runai_extract.audit.sync import sync_audit

        return sync_audit(settings, until=until).to_dict()
    summaries = run_usage(settings, stream)
    runs = [summary.to_dict() for summary in summaries]
    failed = [summary.run_id for summary in summaries if summary.status == "failed"]
    if failed:
        raise LedgerError(f"{stream} sync did not complete (runs {', '.join(failed)}); see the task log")
    return {"stream": stream, "rows_new": sum(_rows_new(s) for s in summaries), "runs": runs}


def _rows_new(summary: WorkloadSyncSummary | OrgSyncSummary) -> int:
    if isinstance(summary, OrgSyncSummary):
        return sum(kind.new_versions + kind.tombstones for kind in summary.kinds.values())
    return summary.snapshots_written
