"""What every scenario shares: the fake in its own process, timed child processes, medians.

The fake runs in a separate process (as a real tenant would) so its CPU is not charged to the
tool under test; every tool runs as a whole process, timed from spawn to exit, with its peak
RSS read from wait4().
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
EVENTS_PER_DAY = 20_000
CLIENT = {"RUNAI_CLIENT_ID": "ledger-demo", "RUNAI_CLIENT_SECRET": "ledger-demo-secret"}


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss: int  # bytes
    stdout: str
    cpu_seconds: float = 0.0  # user + system time of the child: steadier than wall on a shared machine


def summarise(values: list[float]) -> dict[str, float]:
    """Median and spread (min, max) of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Run:
    """Run ``cmd`` to completion; wall seconds from spawn to exit and peak RSS of the child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:5])} failed:\n{err.read().decode()[-2000:]}")
        cpu = usage.ru_utime + usage.ru_stime
        return Run(seconds, usage.ru_maxrss * 1024, out.read().decode(), cpu)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Fake:
    base_url: str
    start: datetime  # the window every tool reads: [start, end)
    end: datetime


@contextmanager
def fake_server(rows: int, latency: float = 0.0, *, pre_encode: bool = False) -> Iterator[Fake]:
    """`runai-ledger fake-server` preloaded with ``rows`` audit rows, stopped on exit.

    ``pre_encode``: each page is encoded once and served from memory after, so a warmed-up
    fake costs (almost) no CPU per page, like a control plane on its own machines.
    """
    days = max(1, rows // EVENTS_PER_DAY)
    port = free_port()
    cmd = [PY, "-m", "runai_extract.cli", "fake-server", "--port", str(port), "--days", str(days)]
    cmd += ["--events-per-day", str(rows // days), "--latency", str(latency)]
    cmd += ["--pre-encode"] if pre_encode else []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if "listening" not in line:
            raise RuntimeError(f"fake server did not start: {line!r}")
        now = datetime.now(UTC).replace(microsecond=0)
        # Ends 5 minutes back (past our settle lag) so all tools read exactly the same rows.
        yield Fake(f"http://127.0.0.1:{port}", now - timedelta(days=days + 1), now - timedelta(minutes=5))
    finally:
        proc.terminate()
        proc.wait(30)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ledger_env(home: Path, base_url: str = "", **extra: str) -> dict[str, str]:
    """Our CLI's environment: this shell's RUNAI_* left out, so a developer's tenant is never hit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNAI_")}
    env.update(CLIENT, RUNAI_LEDGER_HOME=str(home), **extra)
    if base_url:
        env["RUNAI_BASE_URL"] = base_url
    return env
