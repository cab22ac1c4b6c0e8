"""Workload sync cost: a full first sync and an incremental one on a ~5,000-workload tenant.

Issue 3 asks for the requests one incremental run makes on a tenant of ~5,000 workloads with
~100 changes, and the ingest rate. The fake control plane runs in this process (loopback HTTP, its
own thread), seeded, so every repeat sees the same tenant. Reported per repeat: workloads stored
by the first sync and its rate, then for an incremental run after the simulated clock moved on:
changes the simulator made, workloads the run found changed, data requests (token requests
excluded) split into list pages and per-workload history/events, and seconds.

Usage: python bench/workloads.py [--events-per-day 8000] [--advance-minutes 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runai_extract.core.settings import load_settings  # noqa: E402
from runai_extract.fake import FakeConfig, FakeControlPlane  # noqa: E402
from runai_extract.usage.workloads import sync_workloads  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def one_repeat(events_per_day: int, advance: timedelta, home: Path) -> dict[str, Any]:
    config = FakeConfig(seed=41, days=3, events_per_day=events_per_day, now=NOW)
    with FakeControlPlane(config, port=0) as fake:
        settings = load_settings(
            {},
            home=home,
            base_url=fake.base_url,
            client_id=config.client_id,
            client_secret=config.client_secret,
        )
        started = time.perf_counter()
        first = sync_workloads(settings)
        first_s = time.perf_counter() - started
        before = fake.simulator.sim_now
        fake.simulator.advance(advance)
        started = time.perf_counter()
        later = sync_workloads(settings)
        later_s = time.perf_counter() - started
        pages = sum(q["pages"] for q in later.queries.values())
        data_requests = later.requests - later.token_requests
        return {
            "workloads": len(fake.simulator.workload_truth()),
            "first_sync_s": round(first_s, 2),
            "first_sync_workloads_per_s": round(first.snapshots_written / first_s, 1),
            "first_sync_requests": first.requests - first.token_requests,
            "simulated_changes": fake.simulator.workload_changes_since(before),
            "incremental_changed": later.changed,
            "incremental_active": later.queries["active"]["distinct"],
            "incremental_requests": data_requests,
            "incremental_list_pages": pages,
            "incremental_detail_requests": data_requests - pages,
            "incremental_s": round(later_s, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--events-per-day", type=int, default=8000, help="audit events/day (~0.21 workloads each)"
    )
    parser.add_argument(
        "--advance-minutes", type=int, default=40, help="simulated time between the two syncs"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as home:
            runs.append(one_repeat(args.events_per_day, timedelta(minutes=args.advance_minutes), Path(home)))
            print(json.dumps(runs[-1]), flush=True)
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    spread = {key: [min(run[key] for run in runs), max(run[key] for run in runs)] for key in runs[0]}
    print(json.dumps({"median": medians, "spread": spread}, indent=2))


if __name__ == "__main__":
    main()
