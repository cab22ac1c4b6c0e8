"""Fan-out backfill onto a lake on S3: 1, 2 and 4 worker processes, as Airflow's mapped days run.

Set-up: the fake control plane in its own process (pages pre-encoded, +50 ms per page, as a
remote tenant), moto's S3 server in its own process (it logs one line per request, which is how
requests are counted), a fresh bucket per configuration. The days of the range are dealt to N
worker processes (``runai_extract.audit.fanout.backfill_day``, the function the DAG's mapped task
calls), each with its own home and working directory, as on Celery or Kubernetes workers.

Reported per configuration: wall seconds, rows/s, the speed-up against one worker measured in the
same run, and S3 requests per 1,000 rows. Usage:

    .venv/bin/python bench/s3_fanout.py --rows 200000 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import PY, ROOT, fake_server, free_port, ledger_env, scratch

LATENCY_S = 0.05
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench-key",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}
# One worker: take every Nth day of the list, backfill each (what an Airflow worker does with the
# mapped tasks it is handed), print the rows it stored.
WORKER = """
import json, sys
from runai_extract.audit.fanout import backfill_day
from runai_extract.core.settings import load_settings
settings = load_settings()
rows = 0
for day in json.loads(sys.argv[1]):
    rows += backfill_day(settings, day)["rows_new"]
print(rows)
"""


def moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = str(Path(PY).parent / "moto_server")
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(300):
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
            return proc, endpoint
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


def requests_logged(log: Path) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines() if " HTTP/1.1" in line)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_config(
    workers: int, days: list[str], fake_url: str, endpoint: str, log: Path, work: Path, moto_pid: int
) -> dict[str, Any]:
    import boto3

    from runai_extract.audit.fanout import anchor_watermark
    from runai_extract.core.settings import load_settings

    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    s3env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=s3env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    lake = f"s3://{bucket}/lake"
    os.environ.update(s3env)
    anchor_watermark(load_settings({}, home=work / "anchor", lake_uri=lake), days[0])
    before = requests_logged(log)
    moto_cpu = cpu_seconds(moto_pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    procs = []
    for n in range(workers):
        cwd = work / f"w{workers}-{n}"
        cwd.mkdir(parents=True)
        env = ledger_env(cwd / "home", fake_url, RUNAI_LEDGER_LAKE=lake, **s3env)
        mine = json.dumps(days[n::workers])
        procs.append(
            subprocess.Popen([PY, "-c", WORKER, mine], env=env, cwd=cwd, stdout=subprocess.PIPE, text=True)
        )
    rows = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"a worker failed (exit {proc.returncode})")
        rows += int(out.strip().splitlines()[-1])
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    requests = requests_logged(log) - before
    return {
        "workers": workers,
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "s3_requests": requests,
        "s3_requests_per_1000_rows": round(requests / rows * 1000, 1) if rows else None,
        # Where the time goes: CPU seconds of the workers and of the S3 server (the fake's is
        # small: pages are pre-encoded); against wall x CPUs, what the machine could give.
        "worker_cpu_s": round(worker_cpu, 1),
        "s3_server_cpu_s": round(cpu_seconds(moto_pid) - moto_cpu, 1),
        "machine_cpu_s": round(seconds * (os.cpu_count() or 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with scratch("s3fanout") as work, fake_server(args.rows, latency=LATENCY_S, pre_encode=True) as fake:
        log = work / "moto.log"
        server, endpoint = moto(log)
        try:
            first, last = fake.start.date(), fake.end.date()
            days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
            for workers in args.workers:
                result = run_config(workers, days, fake.base_url, endpoint, log, work, server.pid)
                results.append(result)
                print(json.dumps(result), flush=True)
        finally:
            server.terminate()
            server.wait(30)
    base = results[0]["rows_per_s"] if results else 0
    for result in results:
        result["speedup_vs_first"] = round(result["rows_per_s"] / base, 2) if base else None
    out = ROOT / "bench" / "results" / f"s3_fanout_{date.today():%Y%m%d}.json"
    out.write_text(
        json.dumps(
            {"rows": args.rows, "latency_s": LATENCY_S, "cpus": os.cpu_count(), "results": results}, indent=2
        )
    )
    print(json.dumps(results, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
