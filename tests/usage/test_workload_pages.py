"""Keyset paging of the live workload list: nothing skipped while the list changes under us."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runai_extract.core.errors import ApiContractError
from runai_extract.usage.workload_pages import WorkloadQuery, run_query
from tests.httpfakes import FakeClock, FakeControlPlane

LIST = "/api/v1/workloads"
COUNT = "/api/v1/workloads/count"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _workload(n: int, created: datetime) -> dict[str, Any]:
    return {"id": f"00000000-0000-4000-8000-{n:012d}", "name": f"job-{n}", "createdAt": _stamp(created)}


class LiveList:
    """The server side of GET /api/v1/workloads: createdAt asc (ties by id), createdAt>= filters, offset/limit."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.pages_served = 0
        self.after_page: dict[int, Any] = {}  # page number -> change to apply once it is served
        self.count_extra = 0

    def _selected(self, params: dict[str, str]) -> list[dict[str, Any]]:
        rows = sorted(self.items, key=lambda w: (w["createdAt"], w["id"]))
        for expression in filter(None, params.get("filterBy", "").split(",")):
            field, value = expression.split(">=")
            assert field == "createdAt", expression
            rows = [w for w in rows if w["createdAt"] >= value]
        return rows

    def page(self, params: dict[str, str]) -> dict[str, Any]:
        assert params["sortBy"] == "createdAt" and params["sortOrder"] == "asc"
        rows = self._selected(params)
        offset, limit = int(params.get("offset", 0)), int(params["limit"])
        chunk = rows[offset : offset + limit]
        self.pages_served += 1
        change = self.after_page.pop(self.pages_served, None)
        if change is not None:
            change(self.items)
        body: dict[str, Any] = {"workloads": chunk}
        if offset + len(chunk) < len(rows):
            body["next"] = offset + len(chunk)
        return body

    def count(self, params: dict[str, str]) -> dict[str, Any]:
        return {"count": len(self._selected(params)) + self.count_extra}


def _server(live: LiveList) -> FakeControlPlane:
    server = FakeControlPlane(FakeClock())
    server.routes[LIST] = live.page
    server.routes[COUNT] = live.count
    return server


def _ids(result: Any) -> set[str]:
    return set(result.items)


def test_a_deletion_behind_the_cursor_skips_nothing() -> None:
    items = [_workload(n, T0 + timedelta(minutes=n)) for n in range(12)]
    live = LiveList(list(items))
    # After page one (rows 0-4) row 2 is deleted: with plain offsets row 5 would slide to offset 4
    # and never be served.
    live.after_page[1] = lambda rows: rows.remove(items[2])
    server = _server(live)
    with server.client() as client:
        result = run_query(client, WorkloadQuery("all"), page_size=5)
    assert _ids(result) == {w["id"] for w in items}
    # The keyset cursor (createdAt of row 4, one row of that time seen) resumes at row 5 whatever
    # was deleted before it: nothing is served twice, and three pages hold the 11 rows left.
    assert (result.duplicates, result.pages, result.served) == (0, 3, 12)


def test_rows_of_one_millisecond_are_paged_by_offset_within_the_tie() -> None:
    items = [_workload(n, T0) for n in range(12)]  # a burst created in the same millisecond
    server = _server(LiveList(items))
    with server.client() as client:
        result = run_query(client, WorkloadQuery("all"), page_size=5)
    assert _ids(result) == {w["id"] for w in items}
    assert result.duplicates == 0


def test_a_count_above_what_was_received_pages_the_query_again() -> None:
    items = [_workload(n, T0 + timedelta(minutes=n)) for n in range(8)]
    live = LiveList(items)
    live.count_extra = 1  # the server counts one more row than it served on the first pass
    server = _server(live)
    with server.client() as client:
        result = run_query(client, WorkloadQuery("all"), page_size=5)
    assert result.repaged
    assert _ids(result) == {w["id"] for w in items}
    counts = [r for r in server.data_requests() if r.url.path == COUNT]
    assert len(counts) == 2


def test_a_single_page_needs_no_count() -> None:
    server = _server(LiveList([_workload(n, T0 + timedelta(minutes=n)) for n in range(3)]))
    with server.client() as client:
        result = run_query(client, WorkloadQuery("all"), page_size=5)
    assert result.api_count is None
    assert [r.url.path for r in server.data_requests()] == [LIST]


def test_a_full_page_ending_without_created_at_is_refused() -> None:
    items = [_workload(n, T0 + timedelta(minutes=n)) for n in range(6)]
    del items[4]["createdAt"]
    live = LiveList(items)
    live.page = lambda params: {"workloads": items[:5], "next": 5}  # type: ignore[method-assign]
    server = _server(live)
    with server.client() as client, pytest.raises(ApiContractError, match="without createdAt"):
        run_query(client, WorkloadQuery("all"), page_size=5)
