"""Running a stream by name (audit, workloads, org, usage, all) and saying what the usage runs did.

One entry point for the CLI, the DAGs and the demo, so each does not grow its own dispatch.
Order matters for ``usage``: org units first, so a workload's project already has a version with
the name it had when the workload ran, then workloads. The usage runs' printing lives here too,
because their summaries differ from the audit stream's windowed ones (report.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape

from runai_extract.errors import LedgerError
from runai_extract.org_sync import OrgSyncSummary, sync_org
from runai_extract.settings import Settings
from runai_extract.workload_sync import WorkloadSyncSummary, sync_workloads

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
        from runai_extract.pipeline import sync_audit

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


def print_usage_summary(summary: WorkloadSyncSummary | OrgSyncSummary, console: Console) -> None:
    if isinstance(summary, OrgSyncSummary):
        _print_org(summary, console)
    else:
        _print_workloads(summary, console)


def _print_workloads(summary: WorkloadSyncSummary, out: Console) -> None:
    data = summary.to_dict()
    queries = ", ".join(f"{name} {q['distinct']}" for name, q in data["queries"].items())
    out.print(
        f"workloads sync {summary.run_id}: {summary.changed:,} changed of {summary.workloads_seen:,} "
        f"seen ({queries}); stored {summary.snapshots_written:,} snapshots, {summary.history_rows:,} "
        f"history records, {summary.event_rows:,} events; {summary.requests:,} requests "
        f"({summary.retries} retries), {summary.seconds:.1f} s",
        highlight=False,
    )
    out.print(f"watermark: {data['watermark_before']} -> {data['watermark_after']} (server time)")
    if summary.details_failed:
        out.print(
            f"[yellow]{summary.details_failed} workload(s) without history/events this run; "
            "they are fetched again next run and the watermark stayed[/]"
        )
    if summary.quarantined:
        out.print(f"[yellow]{summary.quarantined} record(s) quarantined; see the quarantine view[/]")


def _print_org(summary: OrgSyncSummary, out: Console) -> None:
    parts = []
    for name, kind in sorted(summary.kinds.items()):
        if kind.error:
            parts.append(f"[red]{name}: failed ({escape(kind.error)})[/]")
        else:
            parts.append(
                f"{name} {kind.listed} ({kind.new_versions} new versions, {kind.tombstones} removed)"
            )
    out.print(
        f"org sync {summary.run_id}: " + "; ".join(parts) + f"; {summary.requests} requests", highlight=False
    )
