"""Reliability against a hostile control plane, over real loopback HTTP, checked against ground truth.

Each test turns on fault knobs of the fake (runai_extract/fake/faults.py), runs a real sync or
backfill, and compares the lake with the simulator's ground truth
(``fake.simulator.audit_ids(start, end)``):

* transient trouble (429/503 with Retry-After, 500/502/504, connection resets, stalls longer
  than the read timeout, expiring and revoked tokens, spoiled 200 bodies) must be retried until
  every event id is stored exactly once;
* a server that breaks the paging contract (ignores offset, sends ``next`` backwards, or a
  ``total`` far from the rows it serves) must stop the run with a clear error, and nothing from
  the bad window may be committed: no Parquet file for it, the watermark not past it, and an
  ``ingest_runs`` row with status ``failed`` and the error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from runai_extract.audit.sync import SyncSummary, backfill_audit, sync_audit
from runai_extract.core.errors import ApiContractError, LedgerError
from runai_extract.core.settings import Settings
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import FAKE_NOW, fake_config, settings_for
from tests.lake_reading import live_files, stored_audit_ids
from transforms.storage import Lake
from warehouse.build import ensure_views
from warehouse.query import run_query

NOW = FAKE_NOW + timedelta(minutes=5)
AUDIT = "/api/v1/audit/log"
TOKEN = "/api/v1/token"
US = timedelta(microseconds=1)


def audit_files(home: Path) -> set[Path]:
    """The audit table's committed files (staged files of a refused window are in no version)."""
    return set(live_files(home / "lake"))


def stored_ids(home: Path) -> list[str]:
    """Every event_id the audit table holds, duplicates included."""
    return stored_audit_ids(home / "lake")


def assert_exactly_once(fake: FakeControlPlane, home: Path, start: datetime, end: datetime) -> int:
    """The lake holds every id of [start, end) exactly once; returns how many were checked."""
    ids = stored_ids(home)
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} event ids stored twice"
    expected = fake.simulator.audit_ids(start, end - US)
    missing, extra = expected - set(ids), set(ids) - expected
    assert not missing and not extra, f"missing {len(missing)}, unexpected {len(extra)}"
    return len(ids)


def watermark(settings: Settings) -> datetime | None:
    state = StateStore(Lake(settings.lake_uri)).read("audit")
    return state.watermark if state else None


def failed_runs(settings: Settings) -> list[dict[str, object]]:
    ensure_views(settings.warehouse_path, Lake(settings.lake_uri))
    table = run_query(
        settings.warehouse_path,
        "select window_start, window_end, status, error from ingest_runs where status = 'failed'",
    )
    return table.to_pylist()


def stats_line(summary: SyncSummary, fake: FakeControlPlane, checked: int) -> str:
    totals = summary.totals()
    return (
        f"requests={totals['requests']} retries={totals['retries']} 429s={totals['throttled_429']} "
        f"token_requests={fake.requests_to(TOKEN)} injected={dict(sorted(fake.injected.items()))} "
        f"events_checked={checked} seconds={summary.seconds:.1f}"
    )


# -- transient trouble: retried until everything is stored exactly once ---------------------------
@pytest.mark.parametrize("retry_after", ["seconds", "http-date"])
def test_storm_of_errors_resets_and_stalls_loses_and_doubles_nothing(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path, retry_after: str
) -> None:
    """Injected: 30% of data requests answered 429/503 (with Retry-After as seconds or an HTTP-date)
    or 500/502/504, 8% connections cut mid-body, 8% stalled past a 0.5 s read timeout.
    Checked: the sync completes, every id of the window is stored exactly once, retries happened
    for each kind of fault, and the request/retry numbers are printed for the record."""
    faults = FaultConfig(
        error_rate=0.3,
        retry_after=retry_after,
        reset_rate=0.08,
        slow_rate=0.08,
        slow_s=1.0,
    )
    fake = start_fake(fake_config(days=3, events_per_day=4000, faults=faults))
    settings = settings_for(fake, tmp_path, page_size=100, max_attempts=15, read_timeout=0.5)
    summary = sync_audit(settings, now=NOW)

    checked = assert_exactly_once(fake, tmp_path, NOW - settings.initial_lookback, NOW - settings.settle_lag)
    line = stats_line(summary, fake, checked)
    print(f"storm ({retry_after}): {line}")
    injected = fake.injected
    assert injected["reset"] and injected["slow"] and injected["429"] and injected["503"], line
    totals = summary.totals()
    assert totals["retries"] >= sum(injected.values()), line  # every injected fault cost one retry
    assert totals["throttled_429"] == injected["429"], line
    assert summary.watermark_after == NOW - settings.settle_lag


def test_tokens_expiring_every_two_seconds_are_refreshed_not_fetched_per_request(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Injected: tokens that live 2 s, across a backfill of several seconds (latency per request),
    plus every issued token revoked twice mid-run (the next data request gets a 401).
    Checked: token requests track the token lifetime (the client refreshes at half-life), not the
    number of data requests; each 401 is recovered by one refresh; every id stored exactly once."""
    faults = FaultConfig(token_lifetime_s=2, latency_s=0.03)
    fake = start_fake(fake_config(days=2, events_per_day=1500, faults=faults))
    # One slice at a time: the run must last several token lifetimes (parallel slices finish sooner).
    settings = settings_for(fake, tmp_path, page_size=25, concurrency=1)
    revokers = [threading.Timer(delay, fake.revoke_tokens) for delay in (1.3, 3.7)]
    for timer in revokers:
        timer.start()
    started = time.monotonic()
    try:
        summary = backfill_audit(settings, start=NOW - timedelta(days=3), end=NOW, now=NOW)
    finally:
        for timer in revokers:
            timer.cancel()
    elapsed = time.monotonic() - started

    checked = assert_exactly_once(fake, tmp_path, NOW - timedelta(days=3), NOW - settings.settle_lag)
    data_requests, token_requests = fake.requests_to(AUDIT), fake.requests_to(TOKEN)
    unauthorised = sum(1 for r in fake.request_log if r.path == AUDIT and r.status == 401)
    line = f"{stats_line(summary, fake, checked)} elapsed={elapsed:.1f}s 401s={unauthorised}"
    print(f"tokens: {line}")
    assert elapsed > 4, f"the backfill must outlive a few tokens: {line}"
    # One token per half-life (1 s), plus one per revocation, plus slack for second-granular exp.
    assert token_requests <= elapsed / 1.0 * 1.5 + len(revokers) + 2, line
    assert token_requests >= elapsed / 2.0 - 1, f"expired tokens were not refreshed: {line}"
    assert token_requests * 5 < data_requests, line
    assert 1 <= unauthorised <= len(revokers), line


def test_spoiled_bodies_at_a_survivable_rate_are_retried(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Injected: 30% of 200 answers carry an HTML proxy page or JSON cut in half.
    Checked: each is retried; every id stored exactly once."""
    fake = start_fake(fake_config(faults=FaultConfig(bad_body_rate=0.3)))
    settings = settings_for(fake, tmp_path, page_size=200, max_attempts=12)
    summary = sync_audit(settings, now=NOW)
    checked = assert_exactly_once(fake, tmp_path, NOW - settings.initial_lookback, NOW - settings.settle_lag)
    line = stats_line(summary, fake, checked)
    print(f"bad bodies 30%: {line}")
    assert fake.injected["html"] and fake.injected["truncated"], line
    assert summary.totals()["retries"] >= fake.injected["html"] + fake.injected["truncated"], line


def test_bodies_always_spoiled_fail_clearly_and_leave_the_watermark(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    """Injected: a first clean sync, then every 200 answer spoiled (HTML page or truncated JSON).
    Checked: the second sync fails with ApiContractError saying the body is not JSON; the watermark
    stays where the clean sync left it; no new file; the failed window is in ingest_runs."""
    fake = start_fake(fake_config())
    # One slice at a time, so exactly one window runs (and fails); tests/test_parallel_slices.py
    # covers a failure while several slices are in flight.
    settings = settings_for(fake, tmp_path, max_attempts=3, concurrency=1)
    first = sync_audit(settings, until=NOW - timedelta(hours=12), now=NOW)
    files_before = audit_files(tmp_path)

    fake.set_faults(FaultConfig(bad_body_rate=1.0))
    with pytest.raises(ApiContractError, match="not JSON") as caught:
        sync_audit(settings, now=NOW)
    assert "in all 3 attempts" in str(caught.value)
    assert watermark(settings) == first.watermark_after
    assert audit_files(tmp_path) == files_before
    failed = failed_runs(settings)
    assert len(failed) == 1 and "not JSON" in str(failed[0]["error"])


# -- broken paging contract: stop, and commit nothing from the bad window -------------------------
CONTRACT_BREAKS = {
    "ignore_offset": (FaultConfig(ignore_offset=True), "ignored offset"),
    "next_backwards": (FaultConfig(next_backwards=True), "must move forward"),
    "total_far_too_low": (FaultConfig(lying_total=-1000), "kept sending pages"),
    "total_too_high": (FaultConfig(lying_total=50), "on every page of two passes"),
}


@pytest.mark.parametrize("name", sorted(CONTRACT_BREAKS))
def test_broken_paging_contract_stops_and_commits_nothing(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path, name: str
) -> None:
    """Injected: after a clean sync up to NOW - 30 h, the server ignores offset / sends ``next``
    backwards / reports a ``total`` 1000 below or 50 above the rows it serves (constant across
    pages; a total that stays wrong on a second pass means a server that cannot count or stops
    paging early, so committing the window could lose events).
    Checked: the next sync raises ApiContractError naming the problem; the files in the lake are
    exactly those of the clean sync; the watermark has not moved; ingest_runs has one failed row
    for the bad window, carrying the error."""
    faults, message = CONTRACT_BREAKS[name]
    fake = start_fake(fake_config())
    settings = settings_for(fake, tmp_path, page_size=100, concurrency=1)  # exactly one window fails
    first = sync_audit(settings, until=NOW - timedelta(hours=30), now=NOW)
    files_before, ids_before = audit_files(tmp_path), sorted(stored_ids(tmp_path))

    fake.set_faults(faults)
    with pytest.raises(ApiContractError, match=message) as caught:
        sync_audit(settings, now=NOW)
    print(f"{name}: {caught.value}")

    assert watermark(settings) == first.watermark_after
    assert audit_files(tmp_path) == files_before, "a file from the bad window was left behind"
    assert sorted(stored_ids(tmp_path)) == ids_before
    failed = failed_runs(settings)
    assert len(failed) == 1, failed
    assert failed[0]["window_start"] == first.watermark_after - settings.overlap  # type: ignore[operator]
    assert message in str(failed[0]["error"])
    assert isinstance(caught.value, LedgerError)
