"""Concurrency: two writers of one stream, and readers querying while a sync writes.

Injected: two ``runai-ledger sync audit`` processes started at the same instant against one
ledger home; and, while a CLI sync pages three days from a fake control plane with added
latency, a tight loop of read-only queries (``warehouse.query.run_query``, the code behind
``runai-ledger query``) plus ``runai-ledger query`` processes on a second thread.

Checked: exactly one of the two syncs succeeds and the other exits 1 with the one-line
"another sync of stream 'audit' is running" message; afterwards every ground-truth event is
stored exactly once. Every query during the write either succeeds or fails with a one-line
LedgerError message (never a traceback, never a half-read file); every successful count has no
duplicate ids, never exceeds the ground truth, and counts never go down.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from runai_extract.audit.sync import backfill_audit
from runai_extract.core.errors import LedgerError
from runai_extract.core.times import format_utc
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import cli_env, fake_config, settings_for
from tests.lake_reading import stored_audit_ids
from transforms.storage import Lake
from warehouse.build import ensure_views
from warehouse.query import run_query

CLI = [sys.executable, "-m", "runai_extract.cli"]
ONE_US = timedelta(microseconds=1)
COUNT_SQL = "select count(*) as n, count(distinct event_id) as d from audit_events"


def stored_ids(home: Path) -> list[str]:
    return stored_audit_ids(home / "lake")


def slow_fake(start_fake: Callable[..., FakeControlPlane]) -> FakeControlPlane:
    """Three days, 3,000 events a day, 50 ms per request: a CLI sync lasts a few seconds."""
    return start_fake(fake_config(days=3, events_per_day=3000, faults=FaultConfig(latency_s=0.05), seed=9))


def test_two_syncs_at_once_from_different_directories_both_finish_and_store_each_id_once(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path, lake_uri: str
) -> None:
    """On local disk and on S3 (no machine-local state at all: optimistic commits, conflict retries)."""
    fake = slow_fake(start_fake)
    sim = fake.simulator
    settings = settings_for(fake, tmp_path, lake_uri=lake_uri)
    backfill_audit(settings, start=sim.start - timedelta(hours=1), end=sim.start)  # watermark = stream start

    command = [*CLI, "sync", "audit", "--until", format_utc(sim.now)]
    env = {**cli_env(fake, tmp_path), "RUNAI_LEDGER_LAKE": lake_uri}
    children = []
    for name in (
        "worker-a",
        "worker-b",
    ):  # no shared directory or lock file, each its own home: only the lake
        (tmp_path / name).mkdir()
        children.append(
            subprocess.Popen(
                command,
                env={**env, "RUNAI_LEDGER_HOME": str(tmp_path / name / "home")},
                cwd=tmp_path / name,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [(child, *child.communicate(timeout=280)) for child in children]

    assert [c.returncode for c, _, _ in results] == [0, 0], [err for _, _, err in results]
    assert StateStore(Lake(lake_uri)).read("audit").watermark == sim.now  # type: ignore[union-attr]
    ids = stored_audit_ids(lake_uri)
    assert len(ids) == len(set(ids)), "an event id was stored twice"
    assert set(ids) == sim.audit_ids(sim.start, sim.now - ONE_US)


def test_queries_during_a_sync_succeed_or_fail_clearly_and_never_go_down(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = slow_fake(start_fake)
    sim = fake.simulator
    settings = settings_for(fake, tmp_path)
    everything = sim.audit_ids(sim.start, sim.now - ONE_US)
    # The first day is in the lake and the views exist before the sync starts.
    backfill_audit(settings, start=sim.start, end=sim.start + timedelta(days=1))
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    first_day = len(stored_ids(tmp_path))
    assert first_day > 0

    # One slice at a time keeps the sync long enough for many queries to overlap it.
    env = {**cli_env(fake, tmp_path), "RUNAI_CONCURRENCY": "1"}
    sync = subprocess.Popen(
        [*CLI, "sync", "audit", "--until", format_utc(sim.now)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    cli_results: list[subprocess.CompletedProcess[str]] = []

    def cli_queries() -> None:
        while sync.poll() is None:
            cli_results.append(
                subprocess.run(
                    [*CLI, "query", COUNT_SQL, "-f", "csv"], env=env, capture_output=True, text=True
                )
            )

    side = threading.Thread(target=cli_queries)
    side.start()
    counts: list[int] = []
    failures: list[str] = []
    while sync.poll() is None:
        try:
            row = run_query(settings.warehouse_path, COUNT_SQL).to_pylist()[0]
        except LedgerError as exc:
            failures.append(str(exc))
            continue
        assert row["n"] == row["d"], f"a reader saw duplicate ids: {row}"
        assert not counts or row["n"] >= counts[-1], f"count went down: {counts[-1]} -> {row['n']}"
        assert row["n"] <= len(everything)
        counts.append(row["n"])
        time.sleep(0.01)
    side.join(timeout=60)
    _, sync_err = sync.communicate(timeout=60)
    assert sync.returncode == 0, sync_err

    for message in failures:
        assert message and "\n" not in message and "Traceback" not in message
    cli_counts = []
    for result in cli_results:
        if result.returncode == 0:
            n, d = result.stdout.split()[-1].split(",")
            assert n == d
            cli_counts.append(int(n))
        else:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("runai-ledger: error: "), result.stderr
    # all() of nothing is true: at least one CLI query must have answered while the sync ran.
    assert cli_counts, [r.stderr for r in cli_results]
    assert all(first_day <= n <= len(everything) for n in cli_counts)

    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids)) and set(ids) == everything
    final = run_query(settings.warehouse_path, COUNT_SQL).to_pylist()[0]
    assert final == {"n": len(everything), "d": len(everything)}
    assert len(counts) >= 20, "too few queries overlapped the sync to mean anything"
    assert counts[0] >= first_day
    print(
        f"\nin-process queries during the sync: {len(counts)} ok, {len(failures)} failed clearly; "
        f"CLI queries: {len(cli_results)}; counts {counts[0]} -> {counts[-1]} of {len(everything)}"
    )
