"""Running a stream by name (audit, workloads, org, usage, all): one entry point for the CLI, the
DAGs and the demo, so each does not grow its own dispatch.

Order matters for ``usage``: org units first, so a workload's project already has a version with
the name it had when the workload ran, then workloads. Sits above audit/ and usage/ and below
cli/ and dags/.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from runai_extract.core.errors import LedgerError
from runai_extract.core.settings import Settings
from runai_extract.ledger.stall import find_stall
from runai_extract.usage.org_units import OrgSyncSummary, sync_org
from runai_extract.usage.quota_metrics import QuotaSyncSummary, sync_quota_metrics
from runai_extract.usage.workload_metrics import MetricSyncSummary, sync_workload_metrics
from runai_extract.usage.workloads import WorkloadSyncSummary, sync_workloads
from transforms.storage import Lake

USAGE_STREAMS = ("org", "workloads", "metrics", "quotas")
# What one usage run returns: org, workloads, then GPU metrics and the quota series (issue 15).
UsageSummary = WorkloadSyncSummary | OrgSyncSummary | MetricSyncSummary | QuotaSyncSummary
# Statuses that fail the CLI command and the Airflow task.
FAILED = ("failed", "stalled")
# The runs that can be partial (some workloads not read) and so hold their stream's watermark back.
Partial = TypeVar("Partial", WorkloadSyncSummary, MetricSyncSummary, QuotaSyncSummary)


def run_usage(
    settings: Settings,
    stream: str,
    *,
    created_between: tuple[datetime, datetime] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[UsageSummary]:
    """Sync ``org``, ``workloads``, ``metrics``, ``quotas`` or all four (``usage``), in that order.

    Metrics come after workloads: they are fetched for the workloads the lake knows, so a run of
    ``usage`` reads the GPU metrics of every workload the same run just stored. A stalled
    workloads, metrics or quotas run says so.
    """
    summaries: list[UsageSummary] = []
    if stream in ("org", "usage"):
        summaries.append(sync_org(settings, transport=transport))
    if stream in ("workloads", "usage"):
        workloads = sync_workloads(settings, created_between=created_between, transport=transport)
        summaries.append(_flag_stall(settings, workloads))
    if stream in ("metrics", "usage") and created_between is None:
        summaries.append(_flag_stall(settings, sync_workload_metrics(settings, transport=transport)))
    if stream in ("quotas", "usage") and created_between is None:
        summaries.append(_flag_stall(settings, sync_quota_metrics(settings, transport=transport)))
    return summaries


def _flag_stall(settings: Settings, summary: Partial) -> Partial:
    """Turn a partial sync into ``stalled`` once partial runs have held the watermark too long.

    The metric streams too: their samples expire on the control plane, so a workload whose
    metrics fail run after run loses them for good unless the command and the task fail loudly.
    A backfill of workloads (``created_between``) never moves the watermark, so it cannot stall it.
    """
    if summary.status != "partial":
        return summary
    if isinstance(summary, WorkloadSyncSummary) and summary.created_between is not None:
        return summary
    stall = find_stall(
        Lake(settings.lake_uri),
        summary.stream,
        stall_runs=settings.stall_runs,
        stall_after=settings.stall_after,
        now=datetime.now(UTC),
    )
    if stall is not None:
        summary.status = "stalled"
        summary.error = f"the watermark is stuck: {stall}"
    return summary


def raise_for_failures(summaries: Sequence[UsageSummary]) -> None:
    """One LedgerError naming every run that failed or stalled, and why; the CLI and the DAGs share it."""
    failed = [summary for summary in summaries if summary.status in FAILED]
    if failed:
        raise LedgerError(
            f"{len(failed)} run(s) did not complete: "
            + "; ".join(f"{s.stream} {s.run_id}: {_why(s)}" for s in failed)
        )


def _why(summary: UsageSummary) -> str:
    if isinstance(summary, (WorkloadSyncSummary, MetricSyncSummary, QuotaSyncSummary)):
        return summary.error or summary.status
    broken = sorted(name for name, kind in summary.kinds.items() if kind.error)
    return f"could not read {', '.join(broken)}" if broken else summary.status


def sync_stream(settings: Settings, stream: str, *, until: datetime | None = None) -> dict[str, Any]:
    """Sync one stream for a scheduler; a small JSON-able summary with ``rows_new`` for every stream.

    Raises LedgerError when a usage run failed (an org kind that could not be read, say) or
    stalled (partial run after partial run) so the scheduler marks the task failed; what worked
    is stored all the same.
    """
    if stream == "audit":
        from runai_extract.audit.sync import sync_audit

        return sync_audit(settings, until=until).to_dict()
    summaries = run_usage(settings, stream)
    runs = [summary.to_dict() for summary in summaries]
    raise_for_failures(summaries)
    return {"stream": stream, "rows_new": sum(_rows_new(s) for s in summaries), "runs": runs}


def _rows_new(summary: UsageSummary) -> int:
    if isinstance(summary, (MetricSyncSummary, QuotaSyncSummary)):
        return summary.samples_new
    if isinstance(summary, OrgSyncSummary):
        return sum(kind.new_versions + kind.tombstones for kind in summary.kinds.values())
    return summary.snapshots_written
