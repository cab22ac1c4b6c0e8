"""`make airflow` on a port other than 8080: a scheduled task must run to success.

Why a real standalone: the task supervisor talks to the execution API over HTTP, and only the
real scheduler + LocalExecutor + api-server exercise that URL (dag.test runs tasks in-process).
It starts scripts/airflow-standalone.sh exactly as `make airflow` does, unpauses the org-units
DAG, whose latest interval the scheduler then runs, and waits for the sync's watermark.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(720)
def test_a_scheduled_task_succeeds_with_airflow_on_a_non_default_port(tmp_path: Path) -> None:
    home = tmp_path / "ledger"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNAI_", "AIRFLOW"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
        RUNAI_LEDGER_HOME=str(home),
        AIRFLOW_PORT=str(_free_port()),
        FAKE_PORT=str(_free_port()),
    )
    log = (tmp_path / "standalone.log").open("w")
    standalone = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "airflow-standalone.sh")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: SIGTERM to the group stops every component
    )
    cli_env = {**env, "AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags")}
    watermark = home / "lake" / "_state" / "org.json"
    try:
        deadline = time.monotonic() + 600  # start-up alone takes 15 s idle, minutes on a busy machine
        unpaused = False
        while time.monotonic() < deadline and not watermark.exists():
            assert standalone.poll() is None, (tmp_path / "standalone.log").read_text()[-3000:]
            if not unpaused:  # "No paused DAGs were found" (exit 0) until the dag-processor parsed it
                unpaused = (
                    "runai_org_units"
                    in subprocess.run(
                        ["airflow", "dags", "unpause", "runai_org_units"],
                        env=cli_env,
                        capture_output=True,
                        text=True,
                        timeout=60,
                    ).stdout
                )
            time.sleep(2)
        assert watermark.exists(), (tmp_path / "standalone.log").read_text()[-3000:]
    finally:
        os.killpg(standalone.pid, signal.SIGTERM)
        standalone.wait(timeout=60)
        log.close()
