"""Phase history and events of the workloads that changed, fetched with bounded concurrency.

Both lists are per workload (there is no tenant-wide events endpoint, README §5), so a run makes
two small requests per changed workload. They are independent and latency-bound: a thread pool
of ``Settings.concurrency`` workers shares one client (safe across threads), so the API never
sees more than that many of our requests at once.

A workload the API no longer knows (404: purged after deletion) is reported as gone, not as a
failure; any other error is kept per workload so the caller can leave that workload for the next
run instead of failing the whole run.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from runai_extract.api.endpoints import WORKLOAD_EVENTS, WORKLOAD_HISTORY
from runai_extract.api.pagination import JsonGetter, fetch_all
from runai_extract.core.errors import AuthError, FatalApiError, LedgerError


@dataclass
class WorkloadDetails:
    """One workload's history records and events as served (history in the API's own order)."""

    workload_id: str
    history: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    gone: bool = False


@dataclass
class DetailsBatch:
    """The details fetched in one run, and the workloads whose details could not be fetched."""

    details: dict[str, WorkloadDetails] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def fetch_details(
    client: JsonGetter, workload_ids: Iterable[str], *, page_size: int, concurrency: int
) -> DetailsBatch:
    """History and events of every id, at most ``concurrency`` workloads in flight."""
    ids = sorted(set(workload_ids))
    batch = DetailsBatch()
    if not ids:
        return batch
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="workload-details") as pool:
        outcomes = pool.map(lambda wid: _fetch_one(client, wid, page_size), ids)
        for workload_id, outcome in zip(ids, outcomes, strict=True):
            if isinstance(outcome, WorkloadDetails):
                batch.details[workload_id] = outcome
            else:
                batch.failures[workload_id] = outcome
    return batch


def _fetch_one(client: JsonGetter, workload_id: str, page_size: int) -> WorkloadDetails | str:
    try:
        history = fetch_all(client, WORKLOAD_HISTORY.for_id(workload_id), page_size)
        events = fetch_all(client, WORKLOAD_EVENTS.for_id(workload_id), page_size)
    except FatalApiError as exc:
        if exc.status == 404:
            return WorkloadDetails(workload_id, gone=True)
        return str(exc)
    except AuthError:
        raise  # credentials are broken for every workload: fail the run, not one workload
    except LedgerError as exc:
        return str(exc)
    return WorkloadDetails(workload_id, history, events)
