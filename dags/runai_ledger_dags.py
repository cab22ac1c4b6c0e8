"""runai-ledger DAGs: one per stream, built by one factory from a sorted registry.

Thin on purpose: each task reads its data interval, resolves the ``runai_default`` Connection
inside the task (never at import time), calls the library and returns a small summary (counts,
watermarks) for XCom - never data. Windows come from the watermark stored with the data, capped
at the run's data_interval_end, so a manual run (which has no interval) still does the right
thing and a rerun of any run adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Connection, CronDataIntervalTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

API_POOL = "runai_api"
CONNECTION_ID = "runai_default"


@dataclass(frozen=True, order=True)
class StreamDag:
    dag_id: str
    stream: str
    cron: str
    asset: str
    description: str


REGISTRY: tuple[StreamDag, ...] = tuple(
    sorted(
        [
            StreamDag(
                dag_id="runai_audit_log",
                stream="audit",
                cron="*/15 * * * *",
                asset="runai_ledger_audit_events",
                description="Run:ai audit log -> lake/audit_events (Parquet) -> DuckDB compliance views",
            ),
            StreamDag(
                dag_id="runai_workloads",
                stream="workloads",
                cron="5 * * * *",
                asset="runai_ledger_workloads",
                description="Run:ai workloads (changes, phase history, events) -> lake -> DuckDB usage views",
            ),
            # GPU efficiency (issue 15): metrics of the workloads the hourly workloads run stored,
            # and the org units' quota series a closed day at a time.
            StreamDag(
                dag_id="runai_gpu_metrics",
                stream="metrics",
                cron="20 * * * *",
                asset="runai_ledger_gpu_metrics",
                description="Run:ai workload GPU metrics (utilisation, memory, allocation) -> lake -> efficiency views",
            ),
            StreamDag(
                dag_id="runai_quota_series",
                stream="quotas",
                cron="30 1 * * *",
                asset="runai_ledger_quota_series",
                description="Run:ai project/department GPU quota and allocation series, per closed day -> lake",
            ),
            StreamDag(
                dag_id="runai_org_units",
                stream="org",
                cron="0 1 * * *",
                asset="runai_ledger_org_units",
                description="Run:ai clusters, departments, projects, node pools, users -> versioned dimensions",
            ),
        ]
    )
)


def _settings_from_airflow() -> Any:
    """Build library settings from the Airflow Connection; runs inside a task, never at parse time."""
    from runai_extract.core.settings import settings_from_connection

    conn = Connection.get(CONNECTION_ID)
    aws_conn_id = (conn.extra_dejson or {}).get("aws_conn_id")
    if aws_conn_id:  # the lake's S3 credentials from an Airflow AWS connection
        import os

        from transforms.object_store import aws_environment

        aws = Connection.get(aws_conn_id)
        os.environ.update(aws_environment(aws.login, aws.password, aws.extra_dejson))
    return settings_from_connection(
        host=conn.host,
        port=conn.port,
        schema=conn.schema,
        login=conn.login,
        password=conn.password,
        extra=conn.extra_dejson,
    )


def build_stream_dag(spec: StreamDag) -> Any:
    """One DAG for one stream: sync (in the API pool, updating the stream's Asset), then views."""
    asset = Asset(name=spec.asset)

    @dag(
        dag_id=spec.dag_id,
        description=spec.description,
        schedule=CronDataIntervalTimetable(spec.cron, timezone="UTC"),
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
        tags=["runai-ledger", spec.stream],
        doc_md=__doc__,
    )
    def stream_dag() -> None:
        @task(pool=API_POOL, outlets=[asset])
        def sync(data_interval_end: pendulum.DateTime | None = None) -> dict[str, Any]:
            from runai_extract.core.errors import AuthError, ConfigError, FatalApiError
            from runai_extract.stream_runner import sync_stream

            until = data_interval_end  # None on a manual run: fall back to the watermark and now
            try:
                return sync_stream(_settings_from_airflow(), spec.stream, until=until)
            except (AuthError, ConfigError, FatalApiError) as exc:
                # Retrying cannot fix credentials, configuration or a request the API rejects.
                raise AirflowFailException(str(exc)) from exc

        @task
        def refresh_views(summary: dict[str, Any]) -> dict[str, Any]:
            from transforms.storage import Lake
            from warehouse.build import ensure_views

            settings = _settings_from_airflow()
            ensure_views(
                settings.warehouse_path, Lake(settings.lake_uri), pseudonym_key=settings.pseudonym_key
            )
            return {"warehouse": str(settings.warehouse_path), "rows_new": summary["rows_new"]}

        # TaskFlow passes an XComArg that resolves to the dict at run time; mypy cannot see that.
        refresh_views(sync())  # type: ignore[arg-type]

    return stream_dag()


for _spec in REGISTRY:
    globals()[_spec.dag_id] = build_stream_dag(_spec)


# -- recheck: seal closed windows --------------------------------------------------------------------
RECHECK_DAG_ID = "runai_audit_recheck"
RECHECK_LOCK_WAIT_S = 600.0


@dag(
    dag_id=RECHECK_DAG_ID,
    description="Re-page closed audit windows after the settle period; late rows stored, clean hours sealed",
    # :40 sits between the sync's quarter-hour runs; both take the stream's writer lock.
    schedule=CronDataIntervalTimetable("40 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "retry_exponential_backoff": True},
    tags=["runai-ledger", "audit", "recheck"],
    doc_md="Hourly: recheck [data_interval_start - 2h, data_interval_end - 1h), so a window is checked "
    "once it ended at least the settle period (Settings.seal_after) ago and is sealed when clean.",
)
def runai_audit_recheck() -> None:
    @task(pool=API_POOL)
    def recheck(
        data_interval_start: pendulum.DateTime | None = None,
        data_interval_end: pendulum.DateTime | None = None,
    ) -> dict[str, Any]:
        from datetime import UTC, datetime

        from runai_extract.audit.recheck import recheck_audit
        from runai_extract.core.errors import AuthError, ConfigError, FatalApiError

        end = data_interval_end or datetime.now(UTC)  # a manual run rechecks the last closed hours
        start = (data_interval_start or end - timedelta(hours=1)) - timedelta(hours=2)
        try:
            # Wait for a running sync rather than fail: the two share the stream's writer lock.
            settings = _settings_from_airflow().with_overrides(lock_wait=RECHECK_LOCK_WAIT_S)
            return recheck_audit(settings, start=start, end=end - timedelta(hours=1)).to_dict()
        except (AuthError, ConfigError, FatalApiError) as exc:
            raise AirflowFailException(str(exc)) from exc

    recheck()


globals()[RECHECK_DAG_ID] = runai_audit_recheck()


# -- maintenance: compaction, checkpoints, vacuum (runai_extract/ledger/maintenance.py) -------------
MAINTENANCE_DAG_ID = "runai_maintenance"


@dag(
    dag_id=MAINTENANCE_DAG_ID,
    description="Daily: compact closed days to one file per table, checkpoint the logs, vacuum retired files",
    # 00:50 UTC: the previous day is closed and rechecked; syncs run alongside (no conflict).
    schedule=CronDataIntervalTimetable("50 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["runai-ledger", "maintenance"],
    doc_md="Keeps per-run and per-query costs flat as the ledger ages (docs/storage.md).",
)
def runai_maintenance() -> None:
    @task
    def maintain_lake(data_interval_end: pendulum.DateTime | None = None) -> dict[str, Any]:
        from runai_extract.ledger.maintenance import maintain
        from transforms.storage import Lake
        from warehouse.build import ensure_views

        settings = _settings_from_airflow()
        report = maintain(Lake(settings.lake_uri), now=data_interval_end).to_dict()
        # The views list each table's files: point them at the compacted ones.
        ensure_views(settings.warehouse_path, Lake(settings.lake_uri), pseudonym_key=settings.pseudonym_key)
        return report

    maintain_lake()


globals()[MAINTENANCE_DAG_ID] = runai_maintenance()


# -- compliance export bundles (runai_extract/export.py; docs/compliance.md) ----------------------
# Daily: on every update of the audit Asset, (re)cut the bundle of the previous UTC day until its
# coverage is complete. Monthly: a separate cron DAG whose data interval is the previous month.
EXPORT_DAG_ID = "runai_compliance_export"
EXPORT_MONTHLY_DAG_ID = "runai_compliance_export_monthly"


@dag(
    dag_id=EXPORT_DAG_ID,
    description="Daily compliance bundle of the previous UTC day -> lake/exports/compliance/daily/<day>/",
    schedule=[Asset(name="runai_ledger_audit_events")],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["runai-ledger", "audit", "compliance"],
)
def runai_compliance_export() -> None:
    @task
    def export_previous_day(logical_date: pendulum.DateTime | None = None) -> dict[str, Any]:
        from datetime import UTC, datetime

        from runai_extract.compliance.export import scheduled_bundle

        now = logical_date or datetime.now(UTC)  # asset-triggered runs may carry no logical date
        end = datetime(now.year, now.month, now.day, tzinfo=UTC)
        start = end - timedelta(days=1)
        return scheduled_bundle(_settings_from_airflow(), start, end, f"daily/{start:%Y-%m-%d}")

    export_previous_day()


@dag(
    dag_id=EXPORT_MONTHLY_DAG_ID,
    description="Monthly compliance bundle + report.html of the previous month -> lake/exports/compliance/monthly/<YYYY-MM>/",
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=30)},
    tags=["runai-ledger", "audit", "compliance"],
)
def runai_compliance_export_monthly() -> None:
    @task
    def export_month(
        data_interval_start: pendulum.DateTime | None = None,
        data_interval_end: pendulum.DateTime | None = None,
    ) -> dict[str, Any]:
        from datetime import UTC, datetime

        from runai_extract.compliance.export import scheduled_bundle
        from runai_extract.ledger.manifests import SIGNING_KEY_ENV, signing_key
        from runai_extract.report.render import render_report

        if data_interval_start is None or data_interval_end is None:  # manual run: the last full month
            now = datetime.now(UTC)
            data_interval_end = pendulum.datetime(now.year, now.month, 1, tz="UTC")
            data_interval_start = data_interval_end.subtract(months=1)
        # Whole calendar months: the cron fires at 06:00 on the 1st, the period starts at midnight.
        first, after = data_interval_start.in_timezone("UTC"), data_interval_end.in_timezone("UTC")
        start = pendulum.datetime(first.year, first.month, 1, tz="UTC")
        end = pendulum.datetime(after.year, after.month, 1, tz="UTC")
        settings = _settings_from_airflow()
        page = render_report(
            settings, start, end, key=signing_key(SIGNING_KEY_ENV)
        ).html  # the month at a glance
        attachments = {"report.html": page}
        return scheduled_bundle(settings, start, end, f"monthly/{start:%Y-%m}", attachments=attachments)

    export_month()


globals()[EXPORT_DAG_ID] = runai_compliance_export()
globals()[EXPORT_MONTHLY_DAG_ID] = runai_compliance_export_monthly()


# -- fan-out backfill: one mapped task per day (runai_extract/audit/fanout.py; docs/deploy.md) -----
BACKFILL_DAG_ID = "runai_backfill"


@dag(
    dag_id=BACKFILL_DAG_ID,
    description="Backfill the audit log over [start, end): one task per UTC day, run on any worker",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "start": Param("2026-01-01", type="string", format="date", description="First day (inclusive)"),
        "end": Param("2026-01-02", type="string", format="date", description="Last day (exclusive)"),
    },
    default_args={"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    tags=["runai-ledger", "audit", "backfill"],
    doc_md="Days commit independently and in any order; a failed day retries alone. The watermark "
    "moves over the contiguous prefix of stored days, never over a missing one.",
)
def runai_backfill() -> None:
    @task
    def plan(params: dict[str, Any] | None = None) -> list[str]:
        from runai_extract.audit.fanout import anchor_watermark, plan_days
        from runai_extract.core.errors import ConfigError

        try:
            days = plan_days(params["start"], params["end"])  # type: ignore[index]
            anchor_watermark(_settings_from_airflow(), days[0])
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from exc
        return days

    @task(pool=API_POOL)
    def backfill_day(day: str) -> dict[str, Any]:
        from runai_extract.audit.fanout import backfill_day as run_day
        from runai_extract.core.errors import AuthError, ConfigError, FatalApiError

        try:
            return run_day(_settings_from_airflow(), day)
        except (AuthError, ConfigError, FatalApiError) as exc:
            raise AirflowFailException(str(exc)) from exc

    @task(trigger_rule="all_done")
    def advance(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """After every day, failed ones too: the watermark over what is contiguous; fail on a gap."""
        from runai_extract.audit.fanout import advance_watermark, first_gap
        from runai_extract.core.times import format_utc

        settings = _settings_from_airflow()
        watermark = advance_watermark(settings)
        gap = first_gap(settings, params["start"], params["end"])  # type: ignore[index]
        if gap is not None:
            raise AirflowFailException(
                f"days from {format_utc(gap)} are not stored; clear their failed tasks"
            )
        return {"watermark": format_utc(watermark) if watermark else None}

    backfill_day.expand(day=plan()) >> advance()


globals()[BACKFILL_DAG_ID] = runai_backfill()


CROSSCHECK_DAG_ID = "runai_usage_crosscheck_monthly"


@dag(
    dag_id=CROSSCHECK_DAG_ID,
    description="Monthly: our GPU-hours of the closed month beside Run:ai's own consumption report",
    schedule=CronDataIntervalTimetable("0 7 2 * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=30)},
    tags=["runai-ledger", "usage", "crosscheck"],
    doc_md="On the 2nd (the month closed and a day of syncs since): `runai-ledger crosscheck usage` for "
    "the previous month; the task fails naming each project or department beyond 1%.",
)
def runai_usage_crosscheck_monthly() -> None:
    @task(pool=API_POOL)
    def crosscheck_month(data_interval_end: pendulum.DateTime | None = None) -> dict[str, Any]:
        from datetime import UTC, datetime

        from runai_extract.core.errors import AuthError, ConfigError, FatalApiError
        from runai_extract.usage.crosscheck import crosscheck_usage

        now = (data_interval_end or pendulum.now("UTC")).in_timezone("UTC")
        end = datetime(now.year, now.month, 1, tzinfo=UTC)  # the month before the run's
        start = datetime(end.year - (end.month == 1), (end.month - 2) % 12 + 1, 1, tzinfo=UTC)
        try:
            result = crosscheck_usage(_settings_from_airflow(), start, end)
        except (AuthError, ConfigError, FatalApiError) as exc:
            raise AirflowFailException(str(exc)) from exc
        if result.failures:
            raise AirflowFailException("; ".join(row.describe() for row in result.failures))
        return {
            "report_id": result.report_id,
            "units": len(result.rows),
            "start": str(start),
            "end": str(end),
        }

    crosscheck_month()


globals()[CROSSCHECK_DAG_ID] = runai_usage_crosscheck_monthly()
