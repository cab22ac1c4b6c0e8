"""The demo: the whole pipeline against the embedded fake control plane, and what a newcomer wants to see.

Two drivers share this module: ``runai-ledger demo`` syncs through the library directly (no
Airflow), and ``make demo`` (dags/demo_airflow.py) runs the Airflow DAG. Both end with
:func:`print_demo_report`, which reads only the warehouse views, exactly as a user would, and
:func:`write_demo_report`, the HTML page of the simulated days.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from runai_extract.cli.status import wide_console
from runai_extract.core.errors import LedgerError
from runai_extract.core.settings import Settings, load_settings

DEMO_CLIENT_ID = "ledger-demo"
DEMO_CLIENT_SECRET = "ledger-demo-secret"  # the fake's own demo credential, not a real secret

REPORT_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "rows ingested per day (audit_events)",
        "SELECT event_date, events, subjects, failed_events, ingest_runs FROM ingest_daily ORDER BY event_date",
    ),
    (
        "runs, latest first (ingest_runs)",
        "SELECT run_id, mode, count(*) AS windows, sum(rows_received) AS received, sum(rows_new) AS new_rows, "
        "sum(duplicates_dropped) AS duplicates, sum(quarantined) AS quarantined, sum(requests) AS requests, "
        "string_agg(DISTINCT status, ',') AS status FROM ingest_runs GROUP BY run_id, mode "
        "ORDER BY max(finished_at) DESC LIMIT 10",
    ),
    (
        "compliance_sign_ins",
        "SELECT strftime(event_time, '%Y-%m-%d %H:%M:%S') AS event_time, subject, subject_type, action, result, source_ip FROM compliance_sign_ins "
        "ORDER BY 1, event_id LIMIT 5",
    ),
    (
        "compliance_failed_actions",
        "SELECT strftime(event_time, '%Y-%m-%d %H:%M:%S') AS event_time, subject, action, entity_type, entity_name, http_status_code AS status "
        "FROM compliance_failed_actions ORDER BY 1, event_id LIMIT 5",
    ),
    (
        "compliance_privileged_changes",
        "SELECT strftime(event_time, '%Y-%m-%d %H:%M:%S') AS event_time, subject, change_category, action, entity_name, result "
        "FROM compliance_privileged_changes ORDER BY 1, event_id LIMIT 5",
    ),
    (
        "compliance_entity_changes (the busiest entity's change log)",
        "SELECT change_seq, strftime(event_time, '%Y-%m-%d %H:%M:%S') AS event_time, entity_kind, entity_name, action, subject, result "
        "FROM compliance_entity_changes WHERE (entity_kind, entity_id) = "
        "(SELECT (entity_kind, entity_id) FROM compliance_entity_changes "
        "GROUP BY entity_kind, entity_id ORDER BY count(*) DESC, entity_id LIMIT 1) ORDER BY change_seq LIMIT 8",
    ),
    (
        "workloads by type and phase (workloads)",
        "SELECT type, phase, count(*) AS workloads, count(deleted_at) AS deleted, "
        "round(sum(requested_gpus), 2) AS gpus_requested FROM workloads GROUP BY ALL ORDER BY 1, 2",
    ),
    (
        "GPU-hours per day and department (usage_gpu_hours_daily)",
        "SELECT usage_date, department_name, round(sum(gpu_hours), 1) AS gpu_hours, "
        "round(sum(gpu_hours_requested), 1) AS from_requests, sum(workloads) AS workloads "
        "FROM usage_gpu_hours_daily GROUP BY ALL ORDER BY 1, 3 DESC",
    ),
    (
        "GPU-hours per project over the simulated days (names as they were at the time)",
        "SELECT department_name, project_name, round(sum(gpu_hours), 1) AS gpu_hours, "
        "count(DISTINCT submitted_by) AS submitters FROM usage_gpu_hours_daily GROUP BY ALL ORDER BY 3 DESC LIMIT 12",
    ),
    (
        "GPU efficiency per department: GPU-hours held vs worked (usage_gpu_efficiency_daily)",
        "SELECT department_name, round(sum(allocated_gpu_hours), 1) AS allocated_gpu_hours, "
        "round(sum(utilised_gpu_hours), 1) AS utilised_gpu_hours, round(sum(idle_gpu_hours), 1) AS idle_gpu_hours, "
        "round(100 * sum(utilised_gpu_hours) / nullif(sum(allocated_gpu_hours - gpu_hours_without_metrics), 0), 1) "
        "AS efficiency_pct FROM usage_gpu_efficiency_daily GROUP BY ALL ORDER BY 2 DESC",
    ),
    (
        "top idle workloads: GPUs held under 5% for over an hour (usage_idle_workloads)",
        "SELECT workload_name, workload_type, submitted_by, project_name, gpus, round(idle_hours, 1) AS idle_hours, "
        "round(idle_gpu_hours, 1) AS idle_gpu_hours, round(mean_utilisation, 2) AS mean_util_pct "
        "FROM usage_idle_workloads ORDER BY idle_gpu_hours DESC, workload_id LIMIT 10",
    ),
)


def demo_settings(home: Path, base_url: str) -> Settings:
    return load_settings(
        {},
        home=home,
        base_url=base_url,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        # A GPU metric sample every 5 minutes rather than every minute: the demo's first run reads
        # days of history for every workload, and the efficiency figures need no finer grain.
        metrics_resolution=timedelta(minutes=5),
    )


@contextmanager
def fake_control_plane(days: int, seed: int) -> Iterator[str]:
    """Start the fake on a free loopback port for the block; yields its base URL."""
    from runai_extract.fake import FakeConfig, FakeControlPlane

    config = FakeConfig(seed=seed, days=days, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)
    with FakeControlPlane(config, port=0) as fake:
        yield fake.base_url


def run_cli_demo(home: Path, *, days: int, seed: int) -> None:
    """Sync the fake's audit history, org units and workloads twice (the second adds nothing), then report."""
    from runai_extract.audit.sync import sync_audit
    from runai_extract.cli.progress import terminal_progress
    from runai_extract.cli.status import print_summary
    from runai_extract.cli.usage_summary import print_usage_summary
    from runai_extract.stream_runner import run_usage
    from transforms.storage import Lake
    from warehouse.build import ensure_views

    console = wide_console()
    with fake_control_plane(days, seed) as base_url:
        settings = demo_settings(home, base_url)
        console.print(f"fake Run:ai control plane at {base_url}; ledger home {settings.home}")
        for attempt in ("first sync", "second sync (must add nothing)"):
            console.rule(f"audit log: {attempt}")
            with terminal_progress() as progress:
                summary = sync_audit(settings, progress=progress)
            print_summary(summary, console)
            console.rule(f"org units and workloads: {attempt}")
            for usage in run_usage(settings, "usage"):
                print_usage_summary(usage, console)
        recheck_last_day(settings, console)
        from runai_extract.ledger.maintenance import maintain

        print_maintenance(maintain(Lake(settings.lake_uri)).to_dict(), console)
        ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    print_demo_report(settings, console)
    clean = export_and_verify(settings, console)
    write_demo_report(settings, days, console)
    if not clean:
        raise LedgerError("the demo's lake or export bundle did not verify; see above")


def recheck_last_day(settings: Settings, console: Console | None = None) -> None:
    """Re-check the last full UTC day against the API, so its hours are sealed before the export."""
    from runai_extract.audit.recheck import recheck_audit
    from runai_extract.cli.status import print_recheck

    out = console or wide_console()
    start, end = _last_full_day()
    out.rule(f"recheck audit --start {start:%Y-%m-%d} --end {end:%Y-%m-%d} (seals clean hours)")
    print_recheck(recheck_audit(settings, start=start, end=end), out)


def print_maintenance(report: dict[str, Any], console: Console | None = None) -> None:
    """What compaction did, table by table: live data files before and after."""
    out = console or wide_console()
    out.rule("compact (closed days -> one file per table, logs checkpointed, retired files kept 7 days)")
    tables: dict[str, dict[str, int]] = report["tables"]
    for name, done in sorted(tables.items()):
        if done["files_before"] != done["files_after"]:
            out.print(f"{name}: {done['files_before']} -> {done['files_after']} files", highlight=False)
    out.print(
        f"all tables: {report['files_before']} -> {report['files_after']} live data files", highlight=False
    )


def _last_full_day() -> tuple[datetime, datetime]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today


def export_and_verify(settings: Settings, console: Console | None = None) -> bool:
    """End of the demo: verify every hash chain, cut a compliance bundle of the last full day, check it.

    Returns whether both checks came out clean, so the demo fails loudly if they do not.
    """
    from runai_extract.compliance.bundles import verify_bundle
    from runai_extract.compliance.export import ExportRequest, export_compliance
    from runai_extract.ledger.verify import verify_lake
    from transforms.storage import Lake

    out = console or wide_console()
    out.rule("runai-ledger verify (hash chains of every stream)")
    clean = True
    for report in verify_lake(Lake(settings.lake_uri), None, None):
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s): {report.problems[0].detail}"
        clean = clean and report.ok
        out.print(
            f"{report.stream}: {report.manifests} manifest(s), {report.files_checked} file(s) re-hashed: {verdict}",
            highlight=False,
        )
    start, today = _last_full_day()
    target = Lake(str(settings.home / "exports" / f"compliance-{start:%Y-%m-%d}"))
    bundle = export_compliance(settings, ExportRequest(start, today, "csv"), target)
    problems = verify_bundle(target)
    clean = clean and not problems
    out.rule(f"export compliance --start {start:%Y-%m-%d} --end {today:%Y-%m-%d} --format csv")
    out.print(
        f"{bundle.location}: {sum(bundle.rows.values()):,} rows in {len(bundle.rows)} view file(s), "
        f"coverage {bundle.coverage.summary()}; verify --bundle: "
        + ("OK" if not problems else f"{len(problems)} problem(s): {problems[0].detail}"),
        highlight=False,
    )
    out.print(f"check it without the ledger: cd {bundle.location} && sha256sum -c SHA256SUMS")
    return clean


def write_demo_report(settings: Settings, days: int, console: Console | None = None) -> Path:
    """The last step: the HTML report of the simulated days (and today), written into the ledger home."""
    from runai_extract.cli.report import summary
    from runai_extract.report.render import render_report, write_page

    out = console or wide_console()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=days), today + timedelta(days=1)
    path = settings.home / "report.html"
    out.rule(f"runai-ledger report --start {start:%Y-%m-%d} --end {end:%Y-%m-%d} --out {path}")
    rendered = render_report(settings, start, end)
    write_page(path, rendered.html)
    out.print(
        f"{summary(rendered.data)}; {len(rendered.html) / 1024:,.0f} KiB in {rendered.seconds:.1f} s",
        highlight=False,
    )
    out.print(f"open it in a browser: file://{path}", highlight=False, soft_wrap=True)
    return path


def print_demo_report(settings: Settings, console: Console | None = None) -> None:
    """Print the views a newcomer wants to see, through the same read-only path as `runai-ledger query`."""
    from warehouse.query import render, run_query

    out = console or wide_console()
    for title, sql in REPORT_QUERIES:
        out.rule(title)
        table = run_query(settings.warehouse_path, sql)
        render(table, "table", sys.stdout)
    out.rule("try it yourself")
    example = '"select action, result, count(*) from audit_events group by all order by 3 desc"'
    out.print(f"RUNAI_LEDGER_HOME={os.path.relpath(settings.home)} runai-ledger query {example}")
    out.print(f"or open {settings.warehouse_path} in any DuckDB client.")
