"""How the CLI prints what a usage run (workloads, org units) did; the audit stream's is in status.py."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from runai_extract.usage.org_units import OrgSyncSummary
from runai_extract.usage.quota_metrics import QuotaSyncSummary
from runai_extract.usage.workload_metrics import MetricSyncSummary
from runai_extract.usage.workloads import WorkloadSyncSummary


def print_usage_summary(
    summary: WorkloadSyncSummary | OrgSyncSummary | MetricSyncSummary | QuotaSyncSummary, console: Console
) -> None:
    if isinstance(summary, (MetricSyncSummary, QuotaSyncSummary)):
        _print_metrics(summary, console)
    elif isinstance(summary, OrgSyncSummary):
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


def _print_metrics(summary: MetricSyncSummary | QuotaSyncSummary, out: Console) -> None:
    if isinstance(summary, MetricSyncSummary):
        what, owners = "GPU metrics", f"{summary.workloads_fetched:,} workloads"
    else:
        what, owners = "quota series", f"{summary.units_fetched:,} projects and departments"
    data = summary.to_dict()
    out.print(
        f"{what} sync {summary.run_id}: {owners} read up to {data['fetched_until']} "
        f"every {summary.resolution_s} s; {summary.samples_new:,} new samples; {summary.requests:,} requests, "
        f"{summary.seconds:.1f} s",
        highlight=False,
    )
    for gap in summary.gaps[:10]:
        out.print(f"[yellow]gap: {escape(gap)}[/]")
    if len(summary.gaps) > 10:
        out.print(f"[yellow]... and {len(summary.gaps) - 10} more gaps (view metric_gaps)[/]")
    for failure in summary.failed[:5]:
        out.print(f"[red]not read: {escape(failure)}[/]")
