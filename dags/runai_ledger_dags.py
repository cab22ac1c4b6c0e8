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
from airflow.sdk import Asset, Connection, CronDataIntervalTimetable, dag, task
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
        ]
    )
)


def _settings_from_airflow() -> Any:
    """Build library settings from the Airflow Connection; runs inside a task, never at parse time."""
    from runai_extract.settings import settings_from_connection

    conn = Connection.get(CONNECTION_ID)
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
            from runai_extract.errors import AuthError, ConfigError, FatalApiError
            from runai_extract.pipeline import sync_audit

            until = data_interval_end  # None on a manual run: fall back to the watermark and now
            try:
                return sync_audit(_settings_from_airflow(), until=until).to_dict()
            except (AuthError, ConfigError, FatalApiError) as exc:
                # Retrying cannot fix credentials, configuration or a request the API rejects.
                raise AirflowFailException(str(exc)) from exc

        @task
        def refresh_views(summary: dict[str, Any]) -> dict[str, Any]:
            from transforms.storage import Lake
            from warehouse.build import ensure_views

            settings = _settings_from_airflow()
            ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
            return {"warehouse": str(settings.warehouse_path), "rows_new": summary["rows_new"]}

        # TaskFlow passes an XComArg that resolves to the dict at run time; mypy cannot see that.
        refresh_views(sync())  # type: ignore[arg-type]

    return stream_dag()


for _spec in REGISTRY:
    globals()[_spec.dag_id] = build_stream_dag(_spec)
