"""Reading the live workload list without skipping or doubling anything while it changes.

The list is live: workloads are created, change phase and get deleted while we page it, and the
API pages by offset only (README §11.2). Plain offsets skip a row whenever an earlier row leaves
the list (a deletion shifts everything after it one place forward). So each page is asked for by
*keyset*: sorted ascending on ``createdAt`` (it never changes for a workload) and filtered
``createdAt>=<createdAt of the last row received>``, with the offset counting only the rows of
that last timestamp already seen (ties are ordered by id on the server). A deletion before the
cursor then moves nothing we have yet to read. Rows may be served twice (dedupe by id, counted);
none can be skipped except a same-millisecond tie deleted mid-page, which the count check and
the next run's overlap catch.

When a query needed more than one page, ``/api/v1/workloads/count`` with the same filter is
asked afterwards: more rows than we received means the list grew past our cursor in a way we
could not see, so the query is paged once more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runai_extract.api.endpoints import WORKLOADS, WORKLOADS_COUNT_PATH
from runai_extract.api.pagination import JsonGetter, OffsetPaginator
from runai_extract.core.errors import ApiContractError

log = logging.getLogger(__name__)

MAX_KEYSET_PAGES = 100_000


@dataclass(frozen=True)
class WorkloadQuery:
    """One server-side selection of workloads: filterBy expressions (AND) and the deleted flag."""

    name: str
    filters: tuple[str, ...] = ()
    deleted: bool = False

    def params(self, extra_filters: Sequence[str] = ()) -> dict[str, str | int]:
        params: dict[str, str | int] = {}
        expressions = [*self.filters, *extra_filters]
        if expressions:
            params["filterBy"] = ",".join(expressions)
        if self.deleted:
            params["deleted"] = "true"
        return params


@dataclass
class QueryResult:
    """What one query returned: its rows by id (last served wins) and what it cost."""

    query: WorkloadQuery
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: int = 0
    served: int = 0
    api_count: int | None = None
    repaged: bool = False

    @property
    def duplicates(self) -> int:
        return self.served - len(self.items)

    @property
    def count_mismatch(self) -> bool:
        return self.api_count is not None and self.api_count > len(self.items)


def run_query(client: JsonGetter, query: WorkloadQuery, page_size: int) -> QueryResult:
    """Page ``query`` by keyset; reconcile with /count when paging could have drifted."""
    result = _page(client, query, page_size)
    if result.pages > 1:
        result.api_count = count(client, query)
        if result.count_mismatch:
            log.warning(
                "workloads query %s: /count says %d, %d received; paging it once more",
                query.name,
                result.api_count,
                len(result.items),
            )
            again = _page(client, query, page_size)
            again.items = {**result.items, **again.items}
            again.served += result.served
            again.pages += result.pages
            again.api_count = count(client, query)
            again.repaged = True
            result = again
    return result


def count(client: JsonGetter, query: WorkloadQuery) -> int:
    """``GET /api/v1/workloads/count`` for the same selection."""
    body = client.get_json(WORKLOADS_COUNT_PATH, query.params())
    value = body.get("count") if isinstance(body, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ApiContractError(f'GET {WORKLOADS_COUNT_PATH} answered {str(body)[:80]!r}, not {{"count": n}}')
    return value


def _page(client: JsonGetter, query: WorkloadQuery, page_size: int) -> QueryResult:
    result = QueryResult(query)
    size = WORKLOADS.page_size(page_size)
    cursor: str | None = None  # createdAt (as the server wrote it) of the last row received
    ties = 0  # rows received whose createdAt equals the cursor
    while True:
        keyset = [f"createdAt>={cursor}"] if cursor is not None else []
        params = {**query.params(keyset), "sortBy": "createdAt", "sortOrder": "asc"}
        page = next(iter(OffsetPaginator(client, WORKLOADS, params, size, start=ties)))
        result.pages += 1
        result.served += len(page.items)
        for item in page.items:
            _keep(result, item)
        if not page.items or page.next is None:
            return result  # the list sends `next` while more rows remain (README §1.4)
        cursor, ties = _advance(cursor, ties, page.items, query)
        if result.pages > MAX_KEYSET_PAGES:
            raise ApiContractError(f"workloads query {query.name}: more than {MAX_KEYSET_PAGES} pages")


def _keep(result: QueryResult, item: Any) -> None:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        result.items[item["id"]] = item
    else:  # no usable id: keep it under its position so the normaliser quarantines it with a reason
        result.items[f"#unidentified-{result.served}-{len(result.items)}"] = item


def _advance(cursor: str | None, ties: int, items: Sequence[Any], query: WorkloadQuery) -> tuple[str, int]:
    """The next keyset position: the last createdAt served and how many rows of it we have."""
    stamps = [item.get("createdAt") if isinstance(item, Mapping) else None for item in items]
    last = stamps[-1] if stamps else None
    if not isinstance(last, str):
        raise ApiContractError(
            f"workloads query {query.name}: a full page ended with a row without createdAt; "
            "cannot continue by keyset"
        )
    same = 0
    for stamp in reversed(stamps):
        if stamp != last:
            break
        same += 1
    return last, (ties + same if last == cursor else same)
