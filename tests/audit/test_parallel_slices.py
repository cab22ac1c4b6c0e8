"""Slices paged in parallel: bounded concurrency, the same lake as a serial run, commits in order.

The fake adds latency to every data request so that slices really overlap; its request log
records when each request arrived and when its answer started, which gives the number of data
requests it was handling at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from runai_extract.api.endpoints import AUDIT_LOG
from runai_extract.audit.slice_pool import in_order
from runai_extract.audit.sync import sync_audit
from runai_extract.core.errors import ApiContractError
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.ledger.verify import verify_lake
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import FAKE_NOW, fake_config, settings_for
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables
from warehouse.build import ensure_views
from warehouse.query import run_query

NOW = FAKE_NOW + timedelta(minutes=5)
SLICES = {"slice_length": timedelta(hours=4), "initial_lookback": timedelta(days=2), "page_size": 250}


def lake_contents(home: Path) -> list[tuple[str, list[str]]]:
    """Each committed audit file as (day partition, its event ids in file order), in commit order.

    File names are random (a staged file is named before anyone knows whether it commits), so
    the comparison is by partition and content, in the order the table log committed them.
    """
    tables = Tables(Lake(str(home / "lake")))
    table = tables.load(AUDIT_EVENTS_TABLE)
    assert table is not None
    contents = []
    for version in range(1, table.version() + 1):
        for add in tables.commit_at(AUDIT_EVENTS_TABLE, version).adds:
            path = home / "lake" / AUDIT_EVENTS_TABLE.name / add.path
            ids = pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist()
            contents.append((add.path.split("/", 1)[0], ids))
    return contents


@pytest.mark.parametrize("concurrency", [3])
def test_parallel_sync_stays_within_concurrency_and_matches_serial(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path, concurrency: int
) -> None:
    fake = start_fake(fake_config(days=2, events_per_day=1500, faults=FaultConfig(latency_s=0.03)))

    serial = sync_audit(settings_for(fake, tmp_path / "serial", concurrency=1, **SLICES), now=NOW)
    assert fake.peak_in_flight(AUDIT_LOG.path) == 1
    fake.clear_request_log()
    parallel = sync_audit(
        settings_for(fake, tmp_path / "parallel", concurrency=concurrency, **SLICES), now=NOW
    )

    peak = fake.peak_in_flight(AUDIT_LOG.path)
    assert 2 <= peak <= concurrency, f"{peak} data requests in flight at once"
    assert lake_contents(tmp_path / "parallel") == lake_contents(tmp_path / "serial")
    assert [(s.window_start, s.window_end) for s in parallel.slices] == [
        (s.window_start, s.window_end) for s in serial.slices
    ], "slices are reported (and committed) in window order"
    assert parallel.totals() == serial.totals()  # per-slice request counts do not leak between threads
    assert parallel.watermark_after == serial.watermark_after
    watermarks = [StateStore(Lake(str(tmp_path / h / "lake"))).read("audit") for h in ("serial", "parallel")]
    assert watermarks[0] and watermarks[1] and watermarks[0].watermark == watermarks[1].watermark


def test_a_failing_window_stops_commits_while_slices_run_in_parallel(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Every window after a clean sync breaks the paging contract while three slices are in flight:
    the sync fails naming the problem, the watermark stays, nothing is committed (windows that
    finished after the failed one stay staged, invisible), and the first failed run record is the
    window right after the watermark (minus the overlap)."""
    fake = start_fake(fake_config(days=2, events_per_day=1500))
    # 100 rows a page: every 4-hour window needs several pages, so every window breaks.
    settings = settings_for(fake, tmp_path, concurrency=3, **{**SLICES, "page_size": 100})
    first = sync_audit(settings, until=NOW - timedelta(hours=20), now=NOW)
    files_before = lake_contents(tmp_path)

    fake.set_faults(FaultConfig(ignore_offset=True))
    with pytest.raises(ApiContractError, match="ignored offset"):
        sync_audit(settings, now=NOW)

    assert StateStore(Lake(settings.lake_uri)).read("audit").watermark == first.watermark_after  # type: ignore[union-attr]
    assert lake_contents(tmp_path) == files_before
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    failed = run_query(
        settings.warehouse_path,
        "select window_start, error from ingest_runs where status = 'failed' order by window_start",
    ).to_pylist()
    assert failed and all("ignored offset" in row["error"] for row in failed)
    assert failed[0]["window_start"] == first.watermark_after - settings.overlap  # type: ignore[operator]
    # Staged files of windows that never committed are in no table version: verify is clean.
    assert [r.problems for r in verify_lake(Lake(settings.lake_uri), ["audit"], None)] == [[]]


def test_in_order_yields_in_input_order_and_stops_at_a_failure() -> None:
    """A failure is raised at its own position: nothing after it is handed out for commit."""
    running = 0
    peak = 0
    lock = threading.Lock()
    started: list[int] = []

    def work(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            started.append(item)
        try:
            time.sleep(0.02 if item % 2 else 0.005)  # later items often finish first
            if item == 5:
                raise RuntimeError("slice 5 failed")
            return item * 10
        finally:
            with lock:
                running -= 1

    committed: list[int] = []
    with pytest.raises(RuntimeError, match="slice 5 failed"):
        for item, result in in_order(list(range(40)), work, 3):
            assert result == item * 10
            committed.append(item)
    assert committed == [0, 1, 2, 3, 4]
    assert peak <= 3
    assert len(started) < 40, "items far past the failure are never started"


def test_in_order_with_one_worker_is_a_plain_loop() -> None:
    threads: set[str] = set()

    def work(item: int) -> int:
        threads.add(threading.current_thread().name)
        return item

    assert [r for _, r in in_order([3, 1, 2], work, 1)] == [3, 1, 2]
    assert threads == {threading.current_thread().name}
