"""Scenarios 1-4: audit ingest throughput, latency-bound ingest, incremental no-op, memory.

Every tool reads the same window of the same fake (its own process, no faults unless stated)
with 1000 rows per page, and runs as a whole process: start-up and imports are part of what a
user waits for. Repeats are interleaved (ours, floor, dlt, ours, ...) so drift in the machine's
state hits every tool alike.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import PY, ROOT, Fake, Run, fake_server, iso, ledger_env, scratch, summarise, timed

DLT_VERSION = "1.31.0"
DLT_VENV = ROOT / "bench" / ".venv-dlt"
DLT_PY = DLT_VENV / "bin" / "python"
LATENCY_S = 0.05


def ensure_dlt() -> Path:
    """dlt in its own venv under bench/ (gitignored), pinned, created on first use."""
    stamp = DLT_VENV / f".dlt-{DLT_VERSION}"
    if stamp.exists():
        return DLT_PY
    print(f"   creating {DLT_VENV.relative_to(ROOT)} with dlt[parquet]=={DLT_VERSION} ...", flush=True)
    subprocess.run([PY, "-m", "venv", str(DLT_VENV)], check=True)
    uv = Path(PY).parent / "uv"
    spec = f"dlt[parquet]=={DLT_VERSION}"
    if uv.exists():
        subprocess.run([str(uv), "pip", "install", "-q", "-p", str(DLT_PY), spec], check=True)
    else:
        subprocess.run([str(DLT_PY), "-m", "pip", "install", "-q", spec], check=True)
    stamp.touch()
    return DLT_PY


def ours(fake: Fake, home: Path, **env: str) -> tuple[Run, int]:
    cmd = [
        PY,
        "-m",
        "runai_extract.cli",
        "backfill",
        "audit",
        "--start",
        iso(fake.start),
        "--end",
        iso(fake.end),
    ]
    run = timed(cmd, ledger_env(home, fake.base_url, **env))
    return run, _rows(r"([\d,]+) new rows", run.stdout)


def floor(fake: Fake, home: Path) -> tuple[Run, int]:
    cmd = [PY, "bench/floor.py", fake.base_url, iso(fake.start), iso(fake.end), str(home / "floor.parquet")]
    run = timed(cmd)
    return run, _rows(r"floor: (\d+) rows", run.stdout)


def dlt(fake: Fake, home: Path) -> tuple[Run, int]:
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    run = timed(
        [str(DLT_PY), "bench/dlt_audit.py", fake.base_url, iso(fake.start), iso(fake.end), str(home)], env
    )
    return run, _rows(r"dlt: (\d+) rows", run.stdout)


def _rows(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1).replace(",", "")) if match else -1


def _measure(
    tools: dict[str, Any], fake: Fake, repeat: int, *, warm_up: bool = False
) -> dict[str, dict[str, Any]]:
    """Run each tool ``repeat`` times, interleaved; seconds, rows/s and peak RSS per tool.

    ``warm_up``: one untimed run of each tool first (a pre-encoding fake then has every page
    each tool asks for in memory).
    """
    for tool in tools.values() if warm_up else ():
        with scratch("warm-up") as home:
            tool(fake, home)
    raw: dict[str, list[tuple[Run, int]]] = {name: [] for name in tools}
    for _ in range(repeat):
        for name, tool in tools.items():
            with scratch(name) as home:
                raw[name].append(tool(fake, home))
    out: dict[str, dict[str, Any]] = {}
    for name, runs in raw.items():
        seconds = [r.seconds for r, _ in runs]
        rows = runs[0][1]
        out[name] = {
            "rows": rows,
            "seconds": summarise(seconds),
            "rows_per_s": rows / summarise(seconds)["median"],
            "peak_rss_mib": max(r.peak_rss for r, _ in runs) / 2**20,
        }
        print(
            f"   {name:<14} {rows:>9,} rows  median {out[name]['seconds']['median']:6.2f} s "
            f"({min(seconds):.2f}-{max(seconds):.2f})  {out[name]['rows_per_s']:>9,.0f} rows/s  "
            f"peak {out[name]['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    return out


def throughput(sizes: list[int], repeat: int, dlt_max_rows: int) -> dict[str, Any]:
    """Scenario 1 (and 4, from the same runs): ours vs the floor vs dlt, no faults."""
    if dlt_max_rows:
        ensure_dlt()
    results: dict[str, Any] = {}
    for rows in sizes:
        tools: dict[str, Any] = {"ours": ours, "floor": floor}
        if rows <= dlt_max_rows:
            tools["dlt"] = dlt
        print(f"-- scenario 1: {rows:,} audit rows, 1000 per page", flush=True)
        with fake_server(rows) as fake:
            results[str(rows)] = _measure(tools, fake, repeat)
    return results


def latency_bound(rows: int, repeat: int) -> dict[str, Any]:
    """Scenario 2: every page costs 50 ms more; parallel slices and paging ahead vs the serial floor.

    Measured twice: against the fake as it is (it spends ~50 ms of the same 2 CPUs encoding each
    page), and against a pre-encoding fake after a warm-up, so the ratio shows our client.
    """

    def serial(fake: Fake, home: Path) -> tuple[Run, int]:
        return ours(fake, home, RUNAI_CONCURRENCY="1")

    def default(fake: Fake, home: Path) -> tuple[Run, int]:
        return ours(fake, home)  # concurrency 4, day slices, pages fetched ahead within a day

    def parallel(fake: Fake, home: Path) -> tuple[Run, int]:
        return ours(fake, home, RUNAI_CONCURRENCY="4", RUNAI_SLICE_MINUTES="360")

    def parallel8(fake: Fake, home: Path) -> tuple[Run, int]:
        return ours(fake, home, RUNAI_CONCURRENCY="8", RUNAI_SLICE_MINUTES="360")

    tools = {
        "floor": floor,
        "ours_serial": serial,
        "ours_c4": default,
        "ours_c4_6h": parallel,
        "ours_c8_6h": parallel8,
    }
    results: dict[str, Any] = {}
    print(f"-- scenario 2: {rows:,} rows, +{LATENCY_S * 1000:.0f} ms per page", flush=True)
    with fake_server(rows, latency=LATENCY_S) as fake:
        results.update(_measure(tools, fake, repeat))
    print("-- scenario 2b: the same, pages pre-encoded by the fake (warmed up)", flush=True)
    with fake_server(rows, latency=LATENCY_S, pre_encode=True) as fake:
        results["pre_encoded"] = _measure(tools, fake, repeat, warm_up=True)
    return results


def incremental_noop(repeat: int) -> dict[str, Any]:
    """Scenario 3: a second sync with nothing new; requests counted on the fake's own log.

    The fake runs inside this process here (its request log is an object we can read); the
    syncs are still separate `runai-ledger` processes.
    """
    from runai_extract.fake import FakeConfig, FakeControlPlane

    print("-- scenario 3: incremental no-op sync", flush=True)
    config = FakeConfig(days=3, events_per_day=5000, now=datetime.now(UTC) - timedelta(minutes=30))
    requests, walls, pipeline_s = [], [], []
    with FakeControlPlane(config) as fake, scratch("noop") as home:
        env = ledger_env(home, fake.base_url)
        sync = [PY, "-m", "runai_extract.cli", "sync", "audit"]
        timed(sync, env)  # the full first sync
        for _ in range(repeat):
            time.sleep(1.1)  # a later "now", so the second window is a fresh one
            fake.clear_request_log()
            run = timed(sync, env)
            requests.append(len(fake.request_log))
            walls.append(run.seconds)
            match = re.search(r"([\d.]+) s\s*$", run.stdout.splitlines()[0]) if run.stdout else None
            pipeline_s.append(float(match.group(1)) if match else float("nan"))
        imports = [timed([PY, "-c", _IMPORTS]).seconds for _ in range(repeat)]
    result = {
        "requests": summarise([float(r) for r in requests]),
        "wall_seconds": summarise(walls),
        "import_seconds": summarise(imports),
        "past_startup_seconds": summarise([w - i for w, i in zip(walls, imports, strict=True)]),
    }
    print(
        f"   requests {max(requests)}  wall {result['wall_seconds']['median']:.2f} s  "
        f"imports {result['import_seconds']['median']:.2f} s  "
        f"past start-up {result['past_startup_seconds']['median']:.2f} s",
        flush=True,
    )
    return result


# What a sync process imports before it does any work: the start-up a no-op sync cannot avoid.
_IMPORTS = (
    "import runai_extract.cli.main, runai_extract.audit.sync, runai_extract.cli.status, runai_extract.cli.progress, "
    "warehouse.build, duckdb, rich.console"
)
