"""Long-life benchmark: does a sync, a view build, status, verify or a query cost more as the ledger ages?

Simulates what the `runai_audit_log` DAG does: a sync every 15 minutes of simulated time against
the project's fake (its own process, 5,000 audit events a day), plus the `runai_maintenance` DAG
once a simulated day. Syncs run in this process (as an Airflow worker would run the task); the
commands people run (`build-views`, `status`, `verify`, `query`) run as whole CLI processes,
timed from spawn to exit, with the start-up cost (`query "select 1"`) reported beside them.

Run: `.venv/bin/python bench/long_life.py --days 6` (about 10 minutes on a quiet 2-CPU machine).
The growth of per-sync time is fitted over the run and extrapolated to day 365.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from harness import PY, ROOT, ledger_env, scratch, timed

EVENTS_PER_DAY = 5_000
COMPLIANCE_QUERIES = {
    "sign_ins": "select count(*) from compliance_sign_ins",
    "failed_actions": "select count(*) from compliance_failed_actions",
    "privileged_changes": "select count(*) from compliance_privileged_changes",
    "entity_changes": "select count(*) from compliance_entity_changes",
    "coverage_daily": "select count(*) from coverage_daily",
}


def simulate(
    days: int, home: Path, step_minutes: int = 15, events_per_day: int = EVENTS_PER_DAY, cpu: bool = False
) -> dict[str, object]:
    """Sync every ``step_minutes`` simulated minutes for ``days`` days, maintaining daily; per-sync seconds."""
    from runai_extract.audit.sync import backfill_audit, sync_audit
    from runai_extract.core.settings import load_settings
    from runai_extract.fake import FakeConfig, FakeControlPlane
    from runai_extract.ledger.maintenance import maintain
    from transforms.storage import Lake
    from warehouse.build import ensure_views

    config = FakeConfig(
        seed=3, days=days + 1, events_per_day=events_per_day, client_id="bench", client_secret="bench-secret"
    )
    seconds: list[float] = []
    views: list[float] = []
    first_seen: dict[Path, datetime] = {}
    # CPU seconds of this process (syncs and the in-process fake) when the machine is shared:
    # less sensitive to other load than wall time, though not immune to it.
    clock = time.process_time if cpu else time.perf_counter
    with FakeControlPlane(config, port=0) as fake:
        sim = fake.simulator
        env = {
            "RUNAI_BASE_URL": fake.base_url,
            "RUNAI_CLIENT_ID": "bench",
            "RUNAI_CLIENT_SECRET": "bench-secret",
        }
        settings = load_settings(env, home=str(home))
        backfill_audit(
            settings, start=sim.start - timedelta(hours=1), end=sim.start
        )  # watermark = stream start
        moment = sim.start
        step = timedelta(minutes=step_minutes)
        last_day = moment.date()
        while moment + step <= sim.now:
            moment += step
            began = clock()
            sync_audit(settings, now=moment)
            seconds.append(clock() - began)
            began = clock()
            ensure_views(settings.warehouse_path, Lake(settings.lake_uri))  # the DAG's refresh_views task
            views.append(clock() - began)
            if moment.date() != last_day:
                age_logs(home / "lake", first_seen, moment)
                maintain(Lake(settings.lake_uri), now=moment)
                last_day = moment.date()
    return {"sync_seconds": seconds, "refresh_views_seconds": views}


def age_logs(lake: Path, first_seen: dict[Path, datetime], moment: datetime) -> None:
    """Give every Delta log entry the age it would have in simulated time.

    delta-rs expires log entries by their files' modification time; a simulation that packs a
    day into seconds would otherwise never expire one, and the log, and the cost of listing it
    at every table open, would grow past what a real ledger keeps (the vacuum retention).
    """
    now = time.time()
    alive = {path: first_seen.get(path, moment) for path in lake.glob("**/_delta_log/*") if path.is_file()}
    first_seen.clear()
    first_seen.update(alive)
    for path, seen in alive.items():
        stamp = now - (moment - seen).total_seconds()
        os.utime(path, (stamp, stamp))


def files_per_table(home: Path) -> dict[str, object]:
    from transforms.catalog import ALL_TABLES
    from transforms.storage import Lake
    from transforms.tables import Tables

    tables = Tables(Lake(str(home / "lake")))
    out: dict[str, object] = {}
    for spec in ALL_TABLES:
        files = tables.live_files(spec)
        log_entries = len(list((home / "lake" / spec.name / "_delta_log").glob("*")))
        if spec.partition_by:
            per_day = Counter(f.path.split("/", 1)[0] for f in files)
            out[spec.name] = {
                "files": len(files),
                "max_per_closed_day": max(sorted(per_day.values())[:-1] or [0]),
                "log_entries": log_entries,
            }
        else:
            out[spec.name] = {"files": len(files), "log_entries": log_entries}
    return out


def cli_times(home: Path, repeat: int) -> dict[str, dict[str, float]]:
    env = ledger_env(home)
    cli = [PY, "-m", "runai_extract.cli"]
    runs = {
        "startup (query select 1)": [*cli, "query", "select 1"],
        "build-views": [*cli, "build-views"],
        "status": [*cli, "status"],
        "verify --full": [*cli, "verify", "--full"],
        "verify (incremental, after a clean one)": [*cli, "verify"],
        **{f"query {name}": [*cli, "query", sql] for name, sql in COMPLIANCE_QUERIES.items()},
    }
    out = {}
    for name, cmd in runs.items():
        values = [timed(cmd, env, ROOT).seconds for _ in range(repeat)]
        out[name] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def growth(seconds: list[float], window: int = 100, per_day: int = 96) -> dict[str, float]:
    """First vs last ``window`` syncs, and per-day means extrapolated to day 365.

    Within a day a sync's cost rises a little (the day's partition gains a file per sync until the
    night's compaction), so growth with age is judged on whole days: the mean sync of each day,
    fitted by least squares and extrapolated to the 365th.
    """
    n = len(seconds)
    first, last = statistics.mean(seconds[:window]), statistics.mean(seconds[-window:])
    days = [statistics.mean(seconds[i : i + per_day]) for i in range(0, n - per_day + 1, per_day)]
    out = {
        "syncs": n,
        "first_100_mean_s": first,
        "last_100_mean_s": last,
        "ratio_last_to_first": last / first,
        "daily_means_s": days,
    }
    if len(days) >= 2:
        xs = list(range(len(days)))
        mean_x, mean_y = statistics.mean(xs), statistics.mean(days)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, days, strict=True)) / sum(
            (x - mean_x) ** 2 for x in xs
        )
        out["slope_s_per_day"] = slope
        out["extrapolated_daily_mean_s_at_day_365"] = mean_y + slope * (364 - mean_x)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--step-minutes",
        type=int,
        default=15,
        help="simulated minutes between syncs (the DAG's 15 by default)",
    )
    parser.add_argument(
        "--keep", type=Path, help="build the ledger here and keep it (for profiling commands at age)"
    )
    parser.add_argument("--events-per-day", type=int, default=EVENTS_PER_DAY)
    parser.add_argument("--cpu", action="store_true", help="time syncs in CPU seconds (a shared machine)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "long_life.json")
    args = parser.parse_args()
    with scratch("long-life") as tmp:
        home = args.keep or tmp
        began = time.perf_counter()
        timeline = simulate(args.days, home, args.step_minutes, args.events_per_day, cpu=args.cpu)
        per_day = 24 * 60 // args.step_minutes
        result = {
            "days": args.days,
            "step_minutes": args.step_minutes,
            "clock": "cpu" if args.cpu else "wall",
            "events_per_day": args.events_per_day,
            "simulation_seconds": time.perf_counter() - began,
            "sync": growth(timeline["sync_seconds"], per_day=per_day),  # type: ignore[arg-type]
            "refresh_views": growth(timeline["refresh_views_seconds"], per_day=per_day),  # type: ignore[arg-type]
            "files_after_maintenance": files_per_table(home),
            "commands_at_end": cli_times(home, args.repeat),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
