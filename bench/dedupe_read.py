"""How fast the dedupe set of a day is read: read_event_ids over 100 slice files, as a ratio.

Moved here from a wall-clock assertion in tests/transforms/test_writer.py: a timed bound in a
unit test fails on a busy machine and passes on a fast one whatever the code does. The baseline,
measured in the same run on the same files, is the floor: pyarrow reading the one column of each
file in a plain loop. Goal: read_event_ids takes at most 1.5x the floor (it scans the files as one
multi-threaded dataset, so it is usually faster).

Usage: python bench/dedupe_read.py [--files 100] [--rows 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from transforms.audit import normalise_audit
from transforms.storage import Lake
from transforms.writer import audit_file_path, read_event_ids, write_table

DAY = datetime(2025, 6, 2, tzinfo=UTC)
GOAL_RATIO = 1.5


def _files(lake: Lake, files: int, rows: int) -> list[str]:
    """``files`` slice files of one day partition, ``rows`` distinct ids each, typed as a sync types them."""
    step = timedelta(days=1) / files
    for k in range(files):
        records = [
            {
                "id": f"id-{k * rows + i:09d}",
                "timestamp": (DAY + step * k).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "tenant_id": "1001",
                "subject": "user@example.com",
                "subject_type": "User",
                "action": "create",
                "result": "Succeeded",
                "http_status_code": 201,
            }
            for i in range(rows)
        ]
        table = normalise_audit(records, run_id="bench", ingested_at=DAY + timedelta(days=1)).table
        write_table(lake, audit_file_path(DAY + step * k, DAY + step * (k + 1)), table)
    return lake.list_files("audit_events/event_date=2025-06-02")


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dedupe-") as tmp:
        lake = Lake(str(Path(tmp) / "lake"))
        files = _files(lake, args.files, args.rows)
        paths = [lake.location(f) for f in files]
        ours = _median_seconds(lambda: read_event_ids(lake, files), args.repeat)
        floor = _median_seconds(
            lambda: {i for p in paths for i in pq.read_table(p, columns=["event_id"]).column(0).to_pylist()},
            args.repeat,
        )
    ratio = ours / floor
    verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
    print(
        f"read_event_ids over {args.files} files x {args.rows} rows: {ours * 1000:.1f} ms, "
        f"floor {floor * 1000:.1f} ms, ratio {ratio:.2f} (goal <= {GOAL_RATIO}: {verdict})"
    )


if __name__ == "__main__":
    main()
