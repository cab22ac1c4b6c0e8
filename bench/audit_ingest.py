"""Audit ingest throughput: a full `runai-ledger backfill audit` against the fake on loopback.

The fake runs in its own process (so its CPU is not counted against ours, as with a real
tenant) preloaded with ROWS audit rows; the backfill runs as a real CLI process, timed whole,
with its peak RSS from wait4(). Usage: python bench/audit_ingest.py [ROWS ...] [--repeat N]

Ours only, kept for quick profiling; `make bench` (bench/run.py) runs the same measurement next
to the floor and dlt, and every other scenario of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

EVENTS_PER_DAY = 20_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake(rows: int, port: int) -> subprocess.Popen[bytes]:
    days = max(1, rows // EVENTS_PER_DAY)
    cmd = [
        sys.executable,
        "-m",
        "runai_extract.cli",
        "fake-server",
        "--port",
        str(port),
        "--days",
        str(days),
        "--events-per-day",
        str(rows // days),
    ]
    fake = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return fake
        time.sleep(0.2)
    fake.kill()
    raise RuntimeError("fake server did not start")


def backfill(port: int, home: Path, days: int) -> tuple[float, int]:
    end = datetime.now(UTC)
    start = end - timedelta(days=days + 1)
    env = {
        **os.environ,
        "RUNAI_BASE_URL": f"http://127.0.0.1:{port}",
        "RUNAI_CLIENT_ID": "ledger-demo",
        "RUNAI_CLIENT_SECRET": "ledger-demo-secret",
        "RUNAI_LEDGER_HOME": str(home),
    }
    cmd = [
        sys.executable,
        "-m",
        "runai_extract.cli",
        "backfill",
        "audit",
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
    ]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    if status != 0:
        raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "backfill failed")
    if proc.stdout:
        print("   ", proc.stdout.read().decode().strip().splitlines()[0], flush=True)
    return seconds, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="*", type=int, default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for rows in args.rows:
        port = free_port()
        fake = start_fake(rows, port)
        try:
            timings, peaks = [], []
            for _ in range(args.repeat):
                home = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
                seconds, peak = backfill(port, home, max(1, rows // EVENTS_PER_DAY))
                shutil.rmtree(home)
                timings.append(seconds)
                peaks.append(peak)
            med = statistics.median(timings)
            print(
                f"{rows:>9,} rows: median {med:.2f} s ({rows / med:,.0f} rows/s), "
                f"spread {min(timings):.2f}-{max(timings):.2f} s, peak RSS {max(peaks) / 2**20:.0f} MiB"
            )
        finally:
            fake.terminate()
            fake.wait()


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    main()
