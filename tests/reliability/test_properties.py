"""Properties (hypothesis): window planning never leaves a gap; any mix of reruns stores each id once.

Window planning, injected: arbitrary sequences of runs with arbitrary ``now`` (also going
backwards, as a skewed clock would), ``until``, overlap, settle lag and slice length, each
run's watermark becoming the end of its window. Checked: every window starts at or before the
watermark (exactly ``overlap`` before it), so consecutive runs never leave a gap; windows end at
or before ``now - settle_lag`` and ``until``; the slices tile the window exactly, in order, each
within one UTC day and no longer than the slice length.

Dedupe through the real pipeline, injected: an ``httpx.MockTransport`` control plane serving a
fixed, hypothesis-chosen set of rows (timestamps bunched on shared milliseconds, on midnight and
on slice bounds), hypothesis-chosen page sizes, rows inserted inside a window while it is paged
(which shifts offsets so a row repeats across consecutive pages and makes the total move, so the
slice is paged again), 503 answers that make the client retry a page, and a hypothesis-chosen
sequence of ``sync_audit``/``backfill_audit`` calls with different ``now`` values and ranges
(reruns and overlaps of windows). Checked: after a final sync the lake holds exactly the ids the
server holds, each once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from runai_extract.audit.sync import backfill_audit, sync_audit
from runai_extract.audit.windows import plan_window, split_window
from runai_extract.core.settings import load_settings
from runai_extract.core.times import parse_api_time
from tests.lake_reading import stored_audit_ids

BASE = datetime(2026, 11, 18, tzinfo=UTC)  # a midnight: rows straddle two of them
TOKEN = "opaque-access-token-properties"
MINUTE = timedelta(minutes=1)


# -- window planning -------------------------------------------------------------------------------
run_steps = st.lists(
    st.tuples(
        st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60),  # now, minutes from BASE
        st.none() | st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60),  # until
        st.integers(min_value=0, max_value=180),  # overlap, minutes
        st.integers(min_value=0, max_value=60),  # settle lag, minutes
        st.integers(min_value=1, max_value=2 * 24 * 60),  # slice length, minutes
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(steps=run_steps, lookback_h=st.integers(min_value=1, max_value=24 * 10))
def test_consecutive_windows_never_leave_a_gap_and_slices_tile_them(
    steps: list[tuple[int, int | None, int, int, int]], lookback_h: int
) -> None:
    watermark: datetime | None = None
    for now_m, until_m, overlap_m, lag_m, slice_m in steps:
        now = BASE + now_m * MINUTE
        until = None if until_m is None else BASE + until_m * MINUTE
        overlap, lag = overlap_m * MINUTE, lag_m * MINUTE
        window = plan_window(
            watermark,
            now=now,
            until=until,
            overlap=overlap,
            settle_lag=lag,
            initial_lookback=timedelta(hours=lookback_h),
        )
        expected_start = watermark - overlap if watermark else now - timedelta(hours=lookback_h)
        expected_end = min(now - lag, until) if until else now - lag
        if window is None:
            assert expected_end <= expected_start
            continue
        assert window.start == expected_start and window.end == expected_end
        if watermark is not None:
            assert window.start <= watermark, "a gap between the watermark and the next window"
        slices = split_window(window, slice_m * MINUTE)
        assert slices[0].start == window.start and slices[-1].end == window.end
        for piece, following in pairwise(slices):
            assert piece.end == following.start
        for piece in slices:
            next_midnight = datetime.combine(piece.start.date(), time(0), tzinfo=UTC) + timedelta(days=1)
            assert piece.end <= next_midnight and piece.length <= slice_m * MINUTE
        # The store never moves a watermark backwards (StateStore.commit).
        watermark = window.end if watermark is None else max(watermark, window.end)


# -- dedupe through the pipeline -------------------------------------------------------------------
def api_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def audit_row(n: int, at: datetime) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "timestamp": api_time(at),
        "tenant_id": "1001",
        "subject": "jane.doe@example.com",
        "subject_type": "User",
        "action": "update",
        "entity_type": "project",
        "entity_id": "5",
        "result": "Succeeded",
        "http_status_code": 200,
    }


@dataclass
class Tenant:
    """The served rows, sorted by (timestamp, id) as the API sorts; inserts and 503s on cue."""

    rows: list[dict[str, Any]]
    inserts: list[float]  # fractions of a window where rows get inserted while it is paged
    fail_requests: set[int]  # data request numbers answered 503 (the client retries them)
    requests: int = 0
    drifted: set[tuple[str, str]] = field(default_factory=set)

    def ids(self) -> set[str]:
        return {row["id"] for row in self.rows}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/token":
            return httpx.Response(200, json={"accessToken": TOKEN, "expiresIn": 3600})
        self.requests += 1
        if self.requests in self.fail_requests:
            return httpx.Response(503, json={"code": 503, "message": "Please try again in few minutes."})
        params = request.url.params
        start, end = parse_api_time(params["start"]), parse_api_time(params["end"])
        offset, size = int(params.get("offset", 0)), int(params["numberOfSamples"])
        if offset > 0 and self.inserts and (params["start"], params["end"]) not in self.drifted:
            # Once per window, like new writes landing while we page: offsets shift by one.
            self.drifted.add((params["start"], params["end"]))
            at = start + (end - start) * self.inserts.pop()
            self.rows.append(
                audit_row(10_000 + len(self.rows), at.replace(microsecond=at.microsecond // 1000 * 1000))
            )
            self.rows.sort(key=lambda r: (r["timestamp"], r["id"]))
        inside = [r for r in self.rows if start <= parse_api_time(r["timestamp"]) <= end]
        page = inside[offset : offset + size]
        body: dict[str, Any] = {"total": len(inside), "audit_logs": page}
        if offset + len(page) < len(inside):
            body["next"] = offset + len(page)
        return httpx.Response(200, content=orjson.dumps(body), headers={"content-type": "application/json"})


# Row times in minutes from BASE: a span across two midnights, bunched so many share one instant.
row_minutes = st.lists(
    st.one_of(
        st.integers(min_value=-120, max_value=26 * 60),
        st.sampled_from([0, 24 * 60, 60, 70, 24 * 60 - 1]),  # midnights and likely slice bounds
    ),
    min_size=1,
    max_size=40,
)
now_minutes = st.integers(min_value=60, max_value=28 * 60)
operation = st.one_of(
    st.tuples(st.just("sync"), now_minutes, st.just(0)),
    st.tuples(st.just("backfill"), st.integers(min_value=-180, max_value=27 * 60), st.integers(1, 24 * 60)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    minutes=row_minutes,
    page_size=st.integers(min_value=2, max_value=7),
    inserts=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=3),
    fail_requests=st.sets(st.integers(min_value=1, max_value=30), max_size=4),
    first_now=now_minutes,
    operations=st.lists(operation, max_size=3),
)
def test_any_mix_of_syncs_backfills_retries_and_shifted_pages_stores_each_id_once(
    minutes: list[int],
    page_size: int,
    inserts: list[float],
    fail_requests: set[int],
    first_now: int,
    operations: list[tuple[str, int, int]],
) -> None:
    rows = sorted(
        (audit_row(n, BASE + m * MINUTE) for n, m in enumerate(minutes)),
        key=lambda r: (r["timestamp"], r["id"]),
    )
    tenant = Tenant(rows, list(inserts), set(fail_requests))
    transport = httpx.MockTransport(tenant.handle)
    final_now = BASE + 28 * 60 * MINUTE
    with tempfile.TemporaryDirectory() as home:
        config = load_settings(
            {},
            home=home,
            base_url="https://acme.run.ai",
            client_id="svc",
            client_secret="pw",
            page_size=page_size,
            # The mock tenant numbers requests and inserts rows by request order (order-dependent
            # by design, and not thread-safe), so slices run one at a time here.
            concurrency=1,
            initial_lookback=timedelta(hours=32),  # the first sync always reaches back before the rows
            backoff_base=0.001,
            backoff_cap=0.002,
            retry_after_cap=0.01,
        )
        summaries = [sync_audit(config, now=BASE + first_now * MINUTE, transport=transport)]
        for kind, at, length in operations:
            if kind == "sync":
                summaries.append(sync_audit(config, now=BASE + at * MINUTE, transport=transport))
            else:
                start = BASE + at * MINUTE
                summaries.append(
                    backfill_audit(
                        config, start=start, end=start + length * MINUTE, now=final_now, transport=transport
                    )
                )
        summaries.append(sync_audit(config, now=final_now, transport=transport))

        stored = stored_audit_ids(Path(home) / "lake")
    for summary in summaries:  # how often each disturbance happened: --hypothesis-show-statistics
        totals = summary.totals()
        event(f"retried: {totals['retries'] > 0}")
        event(f"re-paged: {any(s.repaged for s in summary.slices)}")
        event(f"duplicates dropped: {totals['duplicates_dropped'] > 0}")
    assert len(stored) == len(set(stored)), "an id is stored twice"
    assert set(stored) == tenant.ids()
