"""Paging, window bounds and ordering of the audit log, checked against the simulator's truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from runai_extract.fake import FakeControlPlane

AUDIT = "/api/v1/audit/log"


def _rows(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for page in pages for row in page["audit_logs"]]


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


@pytest.mark.parametrize("page_size", [1000, 97])
def test_union_of_pages_is_the_ground_truth_without_duplicates(
    plane: FakeControlPlane, api: httpx.Client, window: dict[str, str], fetch_all: Any, page_size: int
) -> None:
    pages = fetch_all(api, window, page_size)
    rows = _rows(pages)
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)) == plane.simulator.count()
    assert set(ids) == plane.simulator.audit_ids()
    assert rows == plane.simulator.audit_rows()  # same rows, same order, same representation
    assert {page["total"] for page in pages} == {len(ids)}


def test_next_is_present_only_while_more_rows_remain(
    api: httpx.Client, window: dict[str, str], fetch_all: Any
) -> None:
    pages = fetch_all(api, window, 1000)
    assert len(pages) == 3
    offset = 0
    for page in pages[:-1]:
        offset += len(page["audit_logs"])
        assert page["next"] == offset
    assert "next" not in pages[-1]
    exact = api.get(AUDIT, params={**window, "offset": 2000, "numberOfSamples": 1000}).json()
    assert len(exact["audit_logs"]) == 1000 and "next" not in exact  # a full last page has no next


def test_order_is_timestamp_then_id_and_desc_is_its_reverse(
    api: httpx.Client, window: dict[str, str], fetch_all: Any
) -> None:
    ascending = _rows(fetch_all(api, window))
    keys = [(row["timestamp"], row["id"]) for row in ascending]
    assert keys == sorted(keys)
    descending = _rows(fetch_all(api, {**window, "sortOrder": "desc"}))
    assert descending == ascending[::-1]


def test_bursts_share_one_millisecond_and_page_stably(plane: FakeControlPlane, api: httpx.Client) -> None:
    bursts = plane.simulator.bursts(min_size=20)
    assert bursts, "the stream should contain same-millisecond bursts"
    moment, size = max(bursts, key=lambda burst: burst[1])
    assert 20 <= size <= 200
    params = {"start": moment.isoformat(), "end": moment.isoformat(), "numberOfSamples": 1000}
    whole = api.get(AUDIT, params=params).json()["audit_logs"]
    assert len(whole) == size and len({row["timestamp"] for row in whole}) == 1
    pieces = [
        api.get(AUDIT, params={**params, "offset": o, "numberOfSamples": 5}).json() for o in range(0, size, 5)
    ]
    assert _rows(pieces) == whole  # ties broken by id: offsets inside a burst are stable
    assert [row["id"] for row in whole] == sorted(row["id"] for row in whole)


def test_window_is_inclusive_at_both_ends(plane: FakeControlPlane, api: httpx.Client) -> None:
    rows = plane.simulator.audit_rows()
    target = rows[len(rows) // 2]
    moment = _parse(target["timestamp"])
    same_ms = {row["id"] for row in rows if row["timestamp"] == target["timestamp"]}

    def ids(start: datetime, end: datetime) -> set[str]:
        params = {"start": start.isoformat(), "end": end.isoformat(), "numberOfSamples": 1000}
        return {row["id"] for row in api.get(AUDIT, params=params).json()["audit_logs"]}

    one_ms = timedelta(milliseconds=1)
    assert ids(moment, moment) == same_ms  # start == end == the row's timestamp
    assert same_ms <= ids(moment - one_ms, moment)  # on the end bound
    assert same_ms <= ids(moment, moment + one_ms)  # on the start bound
    assert not same_ms & ids(moment - one_ms, moment - timedelta(microseconds=1))
    assert not same_ms & ids(moment + timedelta(microseconds=1), moment + one_ms)


def test_ground_truth_counts_match_the_api_for_sub_windows(
    plane: FakeControlPlane, api: httpx.Client
) -> None:
    start = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
    for hours in (1, 5, 13):
        end = start + timedelta(hours=hours)
        body = api.get(AUDIT, params={"start": start.isoformat(), "end": end.isoformat()}).json()
        assert body["total"] == plane.simulator.count(start, end) > 0
