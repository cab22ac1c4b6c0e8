"""`make bench`: every scenario of docs/performance.md, its goals, a JSON record and the table.

Usage: python bench/run.py [--quick] [--repeat N] [--no-dlt] [--only 1,2,3,5,6] [--no-docs]
Results go to bench/results/<UTC timestamp>.json; the table is printed and rendered into
docs/performance.md between its markers. --quick shrinks every data size for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from typing import Any

from harness import ROOT
from ingest import incremental_noop, latency_bound, throughput
from paging import paging
from queries import warehouse_queries
from report import goal_rows, render_markdown, update_doc
from startup import startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in ~2 minutes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median + spread)")
    parser.add_argument("--no-dlt", action="store_true", help="skip the dlt baseline (no venv needed)")
    parser.add_argument("--only", default="1,2,3,5,6", help="scenarios to run (4 comes with 1)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument(
        "--dlt-max-rows", type=int, default=100_000, help="largest size dlt runs at (1M takes ~15 min x3)"
    )
    parser.add_argument(
        "--render", metavar="JSON", help="only re-render docs/performance.md from a results file"
    )
    args = parser.parse_args()
    if args.render:
        results = json.loads((ROOT / args.render).read_text())
        results["goals"] = goal_rows(results)
        update_doc(ROOT / "docs" / "performance.md", render_markdown(results), args.render)
        print(render_markdown(results))
        return
    only = {s.strip() for s in args.only.split(",")}
    sizes = [20_000, 100_000] if args.quick else [100_000, 1_000_000]
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "repeat": args.repeat,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "sizes": sizes,
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}.json"
    steps = {
        "throughput": ("1", lambda: throughput(sizes, args.repeat, 0 if args.no_dlt else args.dlt_max_rows)),
        "latency": ("2", lambda: latency_bound(20_000 if args.quick else 100_000, args.repeat)),
        "paging": ("2", lambda: paging(20_000 if args.quick else 100_000, args.repeat)),
        "noop": ("3", lambda: incremental_noop(args.repeat)),
        "warehouse": ("5", lambda: warehouse_queries(1_000_000 if args.quick else 10_000_000, args.repeat)),
        "startup": ("6", lambda: startup(max(args.repeat, 5))),
    }
    for key, (number, step) in steps.items():
        if number in only:
            results[key] = step()
            # Saved after every scenario, so an interrupted run keeps what it measured.
            results["goals"] = goal_rows(results)
            results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    table = render_markdown(results)
    print()
    print(table)
    print(f"\nresults: {out.relative_to(ROOT)}")
    if not args.no_docs:
        update_doc(ROOT / "docs" / "performance.md", table, out.relative_to(ROOT).as_posix())
        print("table rendered into docs/performance.md")
    missed = sum(1 for g in results["goals"] if g["met"] is False)
    print(f"{missed} goal(s) missed; a missed goal is a finding, not a failed run (exit 0)")


if __name__ == "__main__":
    main()
