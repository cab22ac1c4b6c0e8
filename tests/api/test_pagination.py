"""Offset paging against fake servers that behave, and against ones that do not."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from runai_extract.api.client import RunaiClient
from runai_extract.api.endpoints import AUDIT_LOG, ENDPOINTS, Endpoint
from runai_extract.api.pagination import OffsetPaginator, Page, audit_pages
from runai_extract.core.errors import ApiContractError, ConfigError, FatalApiError
from tests.httpfakes import AUDIT_PATH, FakeClock, FakeControlPlane, audit_record, make_settings, paged_route

START = datetime(2025, 6, 2, 8, tzinfo=UTC)
END = datetime(2025, 6, 2, 9, tzinfo=UTC)


@pytest.fixture
def fake() -> FakeControlPlane:
    return FakeControlPlane(FakeClock())


@pytest.fixture
def client(fake: FakeControlPlane) -> Iterator[RunaiClient]:
    with fake.client() as runai:
        yield runai


def _records(n: int) -> list[dict[str, Any]]:
    return [audit_record(i) for i in range(n)]


def _audit(client: RunaiClient, page_size: int = 1000) -> list[Page]:
    return list(audit_pages(client, START, END, page_size))


def _sent(fake: FakeControlPlane, name: str) -> list[str]:
    return [r.url.params[name] for r in fake.data_requests()]


def test_audit_pages_sends_the_window_sort_and_paging_params(
    fake: FakeControlPlane, client: RunaiClient
) -> None:
    fake.routes[AUDIT_PATH] = paged_route(_records(5))
    local = timezone(timedelta(hours=2))
    list(audit_pages(client, START.astimezone(local), END.astimezone(local), 1000))
    (request,) = fake.data_requests()
    assert dict(request.url.params) == {
        "start": "2025-06-02T08:00:00.000Z",
        "end": "2025-06-02T09:00:00.000Z",
        "sortBy": "timestamp",
        "sortOrder": "asc",
        "offset": "0",
        "numberOfSamples": "1000",
    }


def test_pages_until_next_is_missing(fake: FakeControlPlane, client: RunaiClient) -> None:
    records = _records(2500)
    fake.routes[AUDIT_PATH] = paged_route(records)
    pages = _audit(client)
    assert [(p.offset, len(p.items), p.total, p.next) for p in pages] == [
        (0, 1000, 2500, 1000),
        (1000, 1000, 2500, 2000),
        (2000, 500, 2500, None),
    ]
    assert [item for page in pages for item in page.items] == records
    assert _sent(fake, "offset") == ["0", "1000", "2000"]


def test_exact_multiple_of_the_page_size_needs_no_extra_request(
    fake: FakeControlPlane, client: RunaiClient
) -> None:
    fake.routes[AUDIT_PATH] = paged_route(_records(2000))
    assert [len(p.items) for p in _audit(client)] == [1000, 1000]
    assert len(fake.data_requests()) == 2


def test_stops_on_an_empty_page_when_next_was_sent_for_a_full_last_page(
    fake: FakeControlPlane, client: RunaiClient
) -> None:
    rows = _records(4)

    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])
        page = rows[offset : offset + 2]
        return {"audit_logs": page, "next": offset + 2} if page else {"audit_logs": []}

    fake.routes[AUDIT_PATH] = route
    assert [len(p.items) for p in _audit(client, page_size=2)] == [2, 2, 0]


def test_short_page_ends_paging(fake: FakeControlPlane, client: RunaiClient) -> None:
    fake.routes[AUDIT_PATH] = paged_route(_records(7))
    assert [len(p.items) for p in _audit(client, page_size=3)] == [3, 3, 1]
    assert len(fake.data_requests()) == 3  # no probe for an empty page after the short one


def test_full_page_without_next_ends_an_endpoint_that_sends_next(
    fake: FakeControlPlane, client: RunaiClient
) -> None:
    fake.routes[AUDIT_PATH] = paged_route(_records(10), with_next=False)
    assert [len(p.items) for p in _audit(client, page_size=5)] == [5]


def test_empty_first_page(fake: FakeControlPlane, client: RunaiClient) -> None:
    fake.routes[AUDIT_PATH] = paged_route([])
    pages = _audit(client)
    assert [(p.offset, p.items, p.total, p.next) for p in pages] == [(0, [], 0, None)]


def test_next_as_a_page_number_still_pages_by_offset(fake: FakeControlPlane, client: RunaiClient) -> None:
    rows = _records(5)

    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])
        body: dict[str, Any] = {"audit_logs": rows[offset : offset + 2], "total": 5}
        if offset + 2 < 5:
            body["next"] = offset // 2 + 1  # the other reading of `next`: a page number
        return body

    fake.routes[AUDIT_PATH] = route
    pages = _audit(client, page_size=2)
    assert [item for page in pages for item in page.items] == rows
    assert _sent(fake, "offset") == ["0", "2", "4"]


def test_server_capping_page_size_is_followed_not_truncated(
    fake: FakeControlPlane, client: RunaiClient
) -> None:
    records = _records(1200)
    fake.routes[AUDIT_PATH] = paged_route(records, server_cap=500)
    pages = _audit(client, page_size=1000)
    assert [len(p.items) for p in pages] == [500, 500, 200]
    assert [item for page in pages for item in page.items] == records


def test_page_size_is_clamped_to_the_endpoint_maximum(fake: FakeControlPlane, client: RunaiClient) -> None:
    fake.routes[AUDIT_PATH] = paged_route(_records(3))
    _audit(client, page_size=5000)
    assert _sent(fake, "numberOfSamples") == ["1000"]
    with pytest.raises(ConfigError):
        _audit(client, page_size=0)


def test_loop_guard_server_ignores_offset(fake: FakeControlPlane, client: RunaiClient) -> None:
    rows = _records(1000)
    fake.routes[AUDIT_PATH] = lambda params: {"total": 5000, "next": 1000, "audit_logs": rows}
    with pytest.raises(ApiContractError, match="server ignored offset: page at offset 1000 repeats offset 0"):
        _audit(client)
    # Some of pages 3-5 may have been requested ahead (total 5000) before page 2 was seen to
    # repeat page 1; none twice, none past the total, and not one more after the guard tripped.
    sent = sorted(map(int, _sent(fake, "offset")))
    assert sent[:2] == [0, 1000] and set(sent) <= {0, 1000, 2000, 3000, 4000} and len(set(sent)) == len(sent)


def test_loop_guard_server_ignores_offset_serial(fake: FakeControlPlane) -> None:
    rows = _records(1000)
    fake.routes[AUDIT_PATH] = lambda params: {"total": 5000, "next": 1000, "audit_logs": rows}
    with (
        fake.client(make_settings(concurrency=1)) as serial,
        pytest.raises(ApiContractError, match="repeats"),
    ):
        _audit(serial)
    assert _sent(fake, "offset") == ["0", "1000"]


def test_loop_guard_repeats_without_next_or_ids(fake: FakeControlPlane) -> None:
    users = Endpoint("users", "/api/v1/users", None, "limit", 500, False, has_next=False)
    fake.routes[users.path] = lambda params: [{"name": "same"}, {"name": "rows"}]
    with fake.client() as client, pytest.raises(ApiContractError, match="repeats offset 0"):
        list(OffsetPaginator(client, users, {}, 2))


def test_loop_guard_next_does_not_advance(fake: FakeControlPlane, client: RunaiClient) -> None:
    rows = _records(20)

    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])
        return {"audit_logs": rows[offset : offset + 5], "next": 5}

    fake.routes[AUDIT_PATH] = route
    with pytest.raises(ApiContractError, match="next=5 at offset 5 after next=5"):
        _audit(client, page_size=5)


def test_loop_guard_next_goes_backwards(fake: FakeControlPlane, client: RunaiClient) -> None:
    rows = _records(20)
    pointers = iter([10, 3])

    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])
        return {"audit_logs": rows[offset : offset + 5], "next": next(pointers)}

    fake.routes[AUDIT_PATH] = route
    with pytest.raises(ApiContractError, match="must move forward"):
        _audit(client, page_size=5)


def test_loop_guard_first_next_must_be_ahead_of_the_start(
    fake: FakeControlPlane, client: RunaiClient
) -> None:
    fake.routes[AUDIT_PATH] = lambda params: {"audit_logs": _records(5), "next": 0}
    with pytest.raises(ApiContractError, match="next=0 at offset 0 after the start"):
        _audit(client, page_size=5)


def test_page_cap_from_total(fake: FakeControlPlane, client: RunaiClient) -> None:
    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])  # fresh rows forever, while claiming only 10 exist
        return {"total": 10, "next": offset + 5, "audit_logs": [audit_record(offset + i) for i in range(5)]}

    fake.routes[AUDIT_PATH] = route
    with pytest.raises(ApiContractError, match="passes the cap of 4"):
        _audit(client, page_size=5)
    assert len(fake.data_requests()) == 5


def test_hard_page_cap_without_total(fake: FakeControlPlane) -> None:
    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])
        return {"next": offset + 2, "audit_logs": [audit_record(offset), audit_record(offset + 1)]}

    fake.routes[AUDIT_PATH] = route
    with fake.client() as client, pytest.raises(ApiContractError, match="kept sending pages"):
        list(OffsetPaginator(client, AUDIT_LOG, {"start": "s", "end": "e"}, 2, max_pages=7))
    assert len(fake.data_requests()) == 8


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "answered a JSON array where an object was expected"),
        ("oops", "answered a JSON string where an object was expected"),
        ({"total": 3, "logs": []}, "without 'audit_logs'"),
        ({"audit_logs": {"id": "x"}}, "'audit_logs' as a JSON object, not an array"),
        ({"audit_logs": [], "next": "soon"}, "next='soon'"),
        ({"audit_logs": [], "next": True}, "next=True"),
    ],
)
def test_broken_envelopes_are_contract_errors(
    fake: FakeControlPlane, client: RunaiClient, body: Any, message: str
) -> None:
    fake.routes[AUDIT_PATH] = lambda params: body
    with pytest.raises(ApiContractError, match=message):
        _audit(client)


@pytest.mark.parametrize("body", [{"audit_logs": None, "total": 0}, {"total": 0}, {"audit_logs": None}])
def test_empty_results_in_go_shapes_are_empty_pages(
    fake: FakeControlPlane, client: RunaiClient, body: Any
) -> None:
    fake.routes[AUDIT_PATH] = lambda params: body
    assert [p.items for p in _audit(client)] == [[]]


@pytest.mark.parametrize("total", ["57", 5.5, True, -1, None])
def test_total_that_is_not_an_int_is_none(fake: FakeControlPlane, client: RunaiClient, total: Any) -> None:
    fake.routes[AUDIT_PATH] = lambda params: {"total": total, "audit_logs": _records(2)}
    assert [p.total for p in _audit(client)] == [None]


def test_next_as_a_digit_string_is_read(fake: FakeControlPlane, client: RunaiClient) -> None:
    rows = _records(3)

    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])
        body: dict[str, Any] = {"audit_logs": rows[offset : offset + 2]}
        if offset == 0:
            body["next"] = "2"
        return body

    fake.routes[AUDIT_PATH] = route
    assert [p.next for p in _audit(client, page_size=2)] == [2, None]


def test_bare_array_unpaged_endpoint_is_one_request(fake: FakeControlPlane, client: RunaiClient) -> None:
    clusters = Endpoint("clusters", "/api/v1/clusters", None, None, 1, False, has_next=False, id_field="uuid")
    fake.routes[clusters.path] = lambda params: [{"uuid": "a"}, {"uuid": "b"}]
    pages = list(OffsetPaginator(client, clusters, {}, 100))
    assert [(p.offset, len(p.items), p.total, p.next) for p in pages] == [(0, 2, None, None)]
    assert dict(fake.data_requests()[0].url.params) == {}


def test_bare_array_with_limit_pages_until_short(fake: FakeControlPlane, client: RunaiClient) -> None:
    users = Endpoint("users", "/api/v1/users", None, "limit", 500, False, has_next=False)
    fake.routes[users.path] = paged_route(_records(7), items_key=None, size_param="limit")
    pages = list(OffsetPaginator(client, users, {}, 3))
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert _sent(fake, "limit") == ["3", "3", "3"]


def test_endpoint_without_next_pages_full_pages_until_short(
    fake: FakeControlPlane, client: RunaiClient
) -> None:
    pools = Endpoint("node_pools", "/api/v1/node-pools", "nodePools", "limit", 500, False, has_next=False)
    fake.routes[pools.path] = paged_route(
        _records(4), items_key="nodePools", size_param="limit", with_next=False
    )
    assert [len(p.items) for p in OffsetPaginator(client, pools, {}, 2)] == [2, 2, 0]


def test_a_paginator_pages_once(fake: FakeControlPlane, client: RunaiClient) -> None:
    fake.routes[AUDIT_PATH] = paged_route(_records(1))
    paginator = OffsetPaginator(client, AUDIT_LOG, {"start": "s", "end": "e"}, 10)
    list(paginator)
    with pytest.raises(RuntimeError, match="once"):
        iter(paginator)


def test_audit_pages_is_lazy_and_checks_its_window(fake: FakeControlPlane, client: RunaiClient) -> None:
    audit_pages(client, START, END, 10)
    assert fake.requests == []
    with pytest.raises(ConfigError, match="timezone-aware"):
        audit_pages(client, START.replace(tzinfo=None), END, 10)
    with pytest.raises(ConfigError, match="empty"):
        audit_pages(client, END, START, 10)


def test_endpoint_registry() -> None:
    assert ENDPOINTS["audit_log"] is AUDIT_LOG
    assert (
        Endpoint(
            "audit_log",
            "/api/v1/audit/log",
            "audit_logs",
            "numberOfSamples",
            1000,
            True,
            fixed_params=(("sortBy", "timestamp"), ("sortOrder", "asc")),
        )
        == AUDIT_LOG
    )
    assert list(ENDPOINTS) == sorted(ENDPOINTS)


# -- paging ahead ---------------------------------------------------------------------------------
class _InFlight:
    """Wraps a route: answers after ``delay`` seconds and records the most requests at once."""

    def __init__(self, route: Any, delay: float = 0.05) -> None:
        self._route, self._delay = route, delay
        self._lock = threading.Lock()
        self.now = self.peak = 0

    def __call__(self, params: dict[str, str]) -> Any:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(self._delay)
            return self._route(params)
        finally:
            with self._lock:
                self.now -= 1


def test_pages_are_fetched_ahead_and_yielded_in_offset_order(fake: FakeControlPlane) -> None:
    rows = _records(8500)
    route = _InFlight(paged_route(rows))
    fake.routes[AUDIT_PATH] = route
    with fake.client(make_settings(concurrency=4)) as client:
        pages = _audit(client)
    assert [p.offset for p in pages] == [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000]
    assert [item["id"] for p in pages for item in p.items] == [r["id"] for r in rows]
    assert 2 <= route.peak <= 4  # ahead, within the client's concurrency
    assert sorted(map(int, _sent(fake, "offset"))) == [p.offset for p in pages]  # each page once


def test_page_ahead_and_parallel_callers_share_one_limit(fake: FakeControlPlane) -> None:
    route = _InFlight(paged_route(_records(6000)))
    fake.routes[AUDIT_PATH] = route
    with fake.client(make_settings(concurrency=3)) as client, ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: len(_audit(client)), range(3)))
    assert results == [6, 6, 6]
    assert route.peak == 3  # three paginators, each paging ahead: never more than 3 requests at once


def test_serial_client_pages_one_request_at_a_time(fake: FakeControlPlane) -> None:
    route = _InFlight(paged_route(_records(3500)), delay=0.01)
    fake.routes[AUDIT_PATH] = route
    with fake.client(make_settings(concurrency=1)) as client:
        assert [p.offset for p in _audit(client)] == [0, 1000, 2000, 3000]
    assert route.peak == 1 and _sent(fake, "offset") == ["0", "1000", "2000", "3000"]


def test_a_server_capping_pages_drops_the_plan_and_loses_nothing(fake: FakeControlPlane) -> None:
    rows = _records(2600)
    fake.routes[AUDIT_PATH] = paged_route(rows, server_cap=400)
    with fake.client(make_settings(concurrency=4)) as client:
        pages = _audit(client)
    assert [item["id"] for p in pages for item in p.items] == [r["id"] for r in rows]
    assert [p.offset for p in pages] == [0, 400, 800, 1200, 1600, 2000, 2400]


def test_a_failure_ahead_surfaces_at_its_own_page(fake: FakeControlPlane) -> None:
    rows = _records(4000)
    good = paged_route(rows)

    def route(params: dict[str, str]) -> Any:
        if params["offset"] == "2000":
            return httpx.Response(400, json={"code": 400, "message": "bad offset"})
        return good(params)

    fake.routes[AUDIT_PATH] = route
    seen: list[int] = []
    with (
        fake.client(make_settings(concurrency=4)) as client,
        pytest.raises(FatalApiError, match="bad offset"),
    ):
        for page in audit_pages(client, START, END, 1000):
            seen.append(page.offset)
    assert seen == [0, 1000]  # the pages before the failure, in order; nothing after it


def test_a_total_that_grows_while_paging_is_followed(fake: FakeControlPlane) -> None:
    rows = _records(2000)

    def route(params: dict[str, str]) -> Any:
        offset = int(params["offset"])
        if offset == 1000 and len(rows) == 2000:
            rows.extend(_records(3000)[2000:])  # 1000 rows land while we page
        page = rows[offset : offset + 1000]
        more = {"next": offset + len(page)} if offset + len(page) < len(rows) else {}
        return {"total": len(rows), "audit_logs": page, **more}

    fake.routes[AUDIT_PATH] = route
    with fake.client(make_settings(concurrency=4)) as client:
        pages = _audit(client)
    assert sum(len(p.items) for p in pages) == 3000
    assert [p.total for p in pages] == [2000, 3000, 3000]
