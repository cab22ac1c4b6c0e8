"""`make demo`: run the audit, org-unit and workload DAGs against the embedded fake control plane.

Not a DAG file (listed in .airflowignore). It sets the Airflow environment before Airflow is
imported (the config is read at import time), migrates a throwaway SQLite metadata DB, starts the
fake on a free loopback port, points the ``runai_default`` Connection at it, and runs the DAG with
``dag.test()``: the audit DAG three times (the first run catches up the simulated history, the
second and the rerun of the same interval add nothing), then the org-unit DAG and the workload
DAG twice (the rerun adds nothing), shows compliance and GPU-usage views side by side, and ends
by verifying every hash chain and a compliance export bundle of the last full day, and writing
the HTML report of the simulated days (report.html in the ledger home). ``dag.test`` does not raise when a task fails, so the
run state is checked explicitly.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("RUNAI_LEDGER_HOME", ROOT / ".ledger" / "demo-airflow")).resolve()
AIRFLOW_HOME = HOME / "airflow"


def _airflow_env() -> None:
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )


def _quiet_warnings() -> None:
    """Third-party warnings are noise in a demo (docs/airflow3.md).

    Silenced before importing Airflow (the import itself warns about starlette's test client) and
    again after it (the import puts its own filter in front of ours; see silence_known_noise).
    """
    from runai_extract.core.third_party_warnings import silence_known_noise

    silence_known_noise()
    import airflow  # noqa: F401

    silence_known_noise()


def _describe(label: str, state: str, summary: dict[str, object] | None) -> str:
    if not summary:
        return f"{label}: {state}"
    return (
        f"{label}: {state}, window {summary['window_start']} .. {summary['window_end']}, "
        f"{summary['rows_new']:,} new rows of {summary['rows_received']:,} received "
        f"({summary['duplicates_dropped']:,} duplicates dropped) in {summary['slices']} window(s), "
        f"{summary['requests']} requests"
    )


def main() -> int:
    _airflow_env()
    _quiet_warnings()
    from runai_extract.cli.demo import (
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        demo_settings,
        export_and_verify,
        fake_control_plane,
        print_demo_report,
        print_maintenance,
        recheck_last_day,
        write_demo_report,
    )

    days = int(os.environ.get("DEMO_DAYS", "3"))
    with fake_control_plane(days=days, seed=7) as base_url:
        os.environ["AIRFLOW_CONN_RUNAI_DEFAULT"] = json.dumps(
            {
                "conn_type": "http",
                "host": base_url,
                "login": DEMO_CLIENT_ID,
                "password": DEMO_CLIENT_SECRET,
                "extra": {"ledger_home": str(HOME)},
            }
        )
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        db.resetdb()
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag = bag.dags["runai_audit_log"]
        now = datetime.now(UTC)
        for label in ("catch-up run", "next run (nothing new yet)", "rerun of the same interval"):
            run = dag.test(logical_date=now)
            summary = run.get_task_instance("sync").xcom_pull(task_ids="sync")
            print(_describe(label, str(run.state), summary))
            if run.state != "success":
                return 1
        # Org units first (names valid at the time), then workloads; the rerun must add nothing;
        # then the GPU metrics of those workloads, which the efficiency and idle sections read.
        for dag_id, label in (
            ("runai_org_units", "org units"),
            ("runai_workloads", "workloads: first run"),
            ("runai_workloads", "workloads: rerun"),
            ("runai_gpu_metrics", "GPU metrics of the stored workloads"),
        ):
            run = bag.dags[dag_id].test(logical_date=now)
            summary = run.get_task_instance("sync").xcom_pull(task_ids="sync")
            rows_new = summary["rows_new"] if summary else "?"
            print(f"{label}: {run.state}, {rows_new} new rows (snapshots / versions)")
            if run.state != "success":
                return 1
        recheck_last_day(demo_settings(HOME, base_url))  # seal the day the export hands over
        run = bag.dags["runai_maintenance"].test(logical_date=now)
        if run.state != "success":
            return 1
        print_maintenance(run.get_task_instance("maintain_lake").xcom_pull(task_ids="maintain_lake"))
    settings = demo_settings(HOME, "http://127.0.0.1")
    print_demo_report(settings)
    clean = export_and_verify(settings)
    write_demo_report(settings, days)
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
