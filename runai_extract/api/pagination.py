"""Offset paging over one query, with a loop guard and a page cap.

Why we compute offsets ourselves: the API's ``next`` is documented only as "the next page
pointer", and its examples fit both an offset and a page number. ``offset + len(items)`` is right
under either reading, so ``next`` is used only as the "more pages" flag (README §1.4).

Why the loop guard: a server (or a proxy in front of it) that ignores ``offset`` returns page one
forever, and a naive paginator writes the same rows until the disk fills. We stop with
ApiContractError when a page repeats the previous page's ids, when ``next`` fails to move
forward, or when the number of pages passes what ``total`` allows.

Why page ahead: a page answered with ``total`` says where every remaining page starts, so on a
latency-bound tenant waiting for one page at a time wastes most of a run. With a client that
can (:class:`PagingClient`), the next pages are requested while the current one is processed,
up to the client's ``page_ahead`` in flight, all under the client's one concurrency limit.
Pages are still received, guarded and yielded strictly in offset order, so callers and the
loop guard see exactly what serial paging shows. The plan assumes full pages: a short page
(a server capping pages below our size) drops the rest of the plan and paging goes on from
where that page ended; a total that grew while paging is simply planned further.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from runai_extract.api.endpoints import AUDIT_LOG, LEGACY_AUDIT_LOG, Endpoint
from runai_extract.core.errors import ApiContractError, ConfigError
from runai_extract.core.times import format_api_time, require_utc

log = logging.getLogger(__name__)

DEFAULT_MAX_PAGES = 100_000  # hard backstop when the endpoint gives no total: 100M rows at 1000/page


class JsonGetter(Protocol):
    """What paging needs from a client (RunaiClient fits); a Protocol keeps the seam explicit."""

    def get_json(self, path: str, params: Mapping[str, str | int]) -> Any: ...


@runtime_checkable
class PagingClient(JsonGetter, Protocol):
    """A client that can fetch pages ahead (RunaiClient): see the module's "page ahead"."""

    page_ahead: int

    def prefetch_json(self, path: str, params: Mapping[str, str | int]) -> Future[Any]: ...


@dataclass
class Page:
    """One page as received: where it started, its items, and the server's total/next if sent."""

    offset: int
    items: list[Any]
    total: int | None
    next: int | None


class OffsetPaginator:
    """Pages one query once: make a fresh paginator per query (it keeps loop-guard state)."""

    def __init__(
        self,
        client: JsonGetter,
        endpoint: Endpoint,
        params: Mapping[str, str | int],
        page_size: int,
        *,
        max_pages: int = DEFAULT_MAX_PAGES,
        start: int = 0,
    ) -> None:
        self._client = client
        self._start = start
        self._endpoint = endpoint
        self._params = {**dict(endpoint.fixed_params), **params}
        self._size = endpoint.page_size(page_size)
        self._max_pages = max_pages
        self._where = f"GET {endpoint.path}"
        self._started = False
        self._pages = 0
        self._smallest_page = self._size
        self._largest_total: int | None = None
        self._previous: tuple[int, tuple[Any, ...]] | None = None  # (offset, fingerprint)
        self._previous_next: int | None = None

    def __iter__(self) -> Iterator[Page]:
        if self._started:
            raise RuntimeError("an OffsetPaginator pages its query once; create a new one to page again")
        self._started = True
        return self._walk()

    def _walk(self) -> Iterator[Page]:
        offset = self._start
        planned: deque[tuple[int, Future[Any]]] = deque()  # pages requested ahead, in offset order
        try:
            while True:
                page = self._receive(offset, planned)
                self._guard(page)
                yield page
                if self._is_last(page):
                    return
                offset += len(page.items)
                self._plan_ahead(page, offset, planned)
        finally:
            _cancel(planned)  # done, failed, or the caller stopped early: drop what is left

    def _receive(self, offset: int, planned: deque[tuple[int, Future[Any]]]) -> Page:
        """The page at ``offset``: from the plan when it was requested ahead, else requested now."""
        if planned and planned[0][0] == offset:
            body = planned.popleft()[1].result()  # a failure surfaces here, at its own offset
        else:
            _cancel(planned)  # the plan assumed another offset (a short page came back)
            body = self._client.get_json(self._endpoint.path, self._request_params(offset))
        return Page(offset, self._items(body), _total(body), self._next(body))

    def _plan_ahead(self, page: Page, offset: int, planned: deque[tuple[int, Future[Any]]]) -> None:
        """Keep up to ``page_ahead`` requests in flight for the full pages from ``offset`` to ``total``."""
        client = self._client
        if not isinstance(client, PagingClient) or client.page_ahead < 1 or page.total is None:
            return
        if self._endpoint.page_param is None or len(page.items) != self._size:
            _cancel(planned)  # a short page: offsets after it are not where the plan put them
            return
        upcoming = planned[-1][0] + self._size if planned else offset
        while len(planned) < client.page_ahead and upcoming < page.total:
            future = client.prefetch_json(self._endpoint.path, self._request_params(upcoming))
            planned.append((upcoming, future))
            upcoming += self._size

    def _request_params(self, offset: int) -> dict[str, str | int]:
        if self._endpoint.page_param is None:
            return dict(self._params)
        return {**self._params, self._endpoint.offset_param: offset, self._endpoint.page_param: self._size}

    def _is_last(self, page: Page) -> bool:
        """Stop on an unpaged endpoint, an empty page, a missing ``next``, or a short page."""
        if self._endpoint.page_param is None or not page.items:
            return True
        if page.next is None:
            # A full page without `next` ends an endpoint that sends `next`; endpoints that never
            # send it (reports, node-pools) end only on a short or empty page.
            return self._endpoint.has_next or len(page.items) < self._size
        if len(page.items) < self._size:
            # Short page but `next` says more: the server caps pages below what we asked.
            # Stopping would silently drop the rest, so follow `next`; the guard bounds this.
            log.warning(
                "%s: %d items for a page of %d at offset %d but next=%d; continuing",
                self._where,
                len(page.items),
                self._size,
                page.offset,
                page.next,
            )
        return False

    def _items(self, body: Any) -> list[Any]:
        key = self._endpoint.items_key
        if key is None:
            if isinstance(body, list):
                return body
            raise ApiContractError(f"{self._where} answered a JSON {_kind(body)} where an array was expected")
        if not isinstance(body, dict):
            raise ApiContractError(
                f"{self._where} answered a JSON {_kind(body)} where an object was expected"
            )
        if key not in body:
            if body.get("total") == 0:
                return []  # an empty result may omit the list entirely (Go `omitempty`)
            raise ApiContractError(
                f"{self._where} answered an object without '{key}' (keys: {sorted(body)[:8]})"
            )
        items = body[key]
        if items is None:
            return []  # Go encodes an empty slice as null
        if not isinstance(items, list):
            raise ApiContractError(f"{self._where} answered '{key}' as a JSON {_kind(items)}, not an array")
        return items

    def _next(self, body: Any) -> int | None:
        raw = body.get("next") if isinstance(body, dict) else None
        if raw is None or raw == "":
            return None  # "absent (or empty)" both mean the end (README §1.4)
        if isinstance(raw, str) and raw.isdigit():
            return int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ApiContractError(f"{self._where} answered next={raw!r}, which is not an integer")
        return raw

    def _guard(self, page: Page) -> None:
        """Raise ApiContractError when the server is leading us round in circles."""
        self._check_page_count(page)
        self._check_repeat(page)
        self._check_next(page)

    def _check_page_count(self, page: Page) -> None:
        self._pages += 1
        if page.items:
            self._smallest_page = min(self._smallest_page, len(page.items))
        if page.total is not None:
            self._largest_total = max(page.total, self._largest_total or 0)
        cap = self._page_cap()
        if self._pages > cap:
            raise ApiContractError(
                f"{self._where} kept sending pages: {self._pages} pages passes the cap of {cap} "
                f"(total={self._largest_total}, page size {self._size})"
            )

    def _page_cap(self) -> int:
        if self._largest_total is None:
            return self._max_pages
        # Sized by the smallest page seen, so a server that caps pages below our size is not
        # mistaken for a loop; the margin absorbs a total that grows a little while we page.
        expected = math.ceil(self._largest_total / self._smallest_page)
        return min(self._max_pages, expected + 2 + expected // 10)

    def _check_repeat(self, page: Page) -> None:
        if not page.items:
            return
        fingerprint = tuple(_fingerprint(item, self._endpoint.id_field) for item in page.items)
        if self._previous is not None and self._previous[1] == fingerprint:
            raise ApiContractError(
                f"server ignored offset: page at offset {page.offset} repeats offset {self._previous[0]} "
                f"({self._where})"
            )
        self._previous = (page.offset, fingerprint)

    def _check_next(self, page: Page) -> None:
        if page.next is None:
            return
        floor = self._previous_next if self._previous_next is not None else page.offset
        if page.next <= floor:
            raise ApiContractError(
                f"{self._where} answered next={page.next} at offset {page.offset} after "
                f"{'next=' + str(self._previous_next) if self._previous_next is not None else 'the start'}: "
                "the pointer must move forward"
            )
        self._previous_next = page.next


def audit_pages(client: JsonGetter, start: datetime, end: datetime, page_size: int) -> Iterator[Page]:
    """Page the audit log over [start, end), oldest first.

    Both bounds are required by the API and sent as UTC ``Z`` strings with milliseconds.
    Nothing is requested until the iterator is consumed.
    """
    if require_utc(end, "the audit window end") <= require_utc(start, "the audit window start"):
        raise ConfigError(
            f"the audit window is empty: start {start.isoformat()} is not before end {end.isoformat()}"
        )
    params: dict[str, str | int] = {"start": format_api_time(start), "end": format_api_time(end)}
    return iter(OffsetPaginator(client, AUDIT_LOG, params, page_size))


def legacy_audit_pages(client: JsonGetter, start: datetime, end: datetime, page_size: int) -> Iterator[Page]:
    """Page the legacy audit log (2.18/2.19 ``GET /v1/k8s/audit``) over [start, end].

    The same page shape as :func:`audit_pages`, with ``total`` None: the legacy list is a bare
    array with neither ``total`` nor ``next``, so a short page ends it. It takes whole seconds
    in UTC without a zone, both ends inclusive; the bounds are floored to the second, so the
    window is covered and the caller drops the rows outside it (as it does for the modern log).
    """
    if require_utc(end, "the audit window end") <= require_utc(start, "the audit window start"):
        raise ConfigError(
            f"the audit window is empty: start {start.isoformat()} is not before end {end.isoformat()}"
        )
    params: dict[str, str | int] = {"start": _legacy_time(start), "end": _legacy_time(end)}
    return iter(OffsetPaginator(client, LEGACY_AUDIT_LOG, params, page_size))


def _legacy_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def fetch_all(
    client: JsonGetter, endpoint: Endpoint, page_size: int, params: Mapping[str, str | int] | None = None
) -> list[Any]:
    """Every item of a small list (org units, one workload's history), all pages, in order received."""
    return [
        item for page in OffsetPaginator(client, endpoint, params or {}, page_size) for item in page.items
    ]


def _cancel(planned: deque[tuple[int, Future[Any]]]) -> None:
    """Forget pages requested ahead: those not started never are; running ones finish unread."""
    while planned:
        planned.popleft()[1].cancel()


def _total(body: Any) -> int | None:
    raw = body.get("total") if isinstance(body, dict) else None
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else None


def _fingerprint(item: Any, id_field: str) -> Any:
    """An item's id when it has one, else its canonical JSON (bare arrays may lack ids)."""
    if isinstance(item, dict) and item.get(id_field) is not None:
        return item[id_field]
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS)


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
