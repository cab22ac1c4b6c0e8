"""Run work items on a bounded thread pool and hand their results back strictly in input order.

Why: the slices of a window can be paged at the same time (a latency-bound tenant spends most
of a serial run waiting), but the watermark may only ever move over a contiguous prefix of the
window. The caller commits each result as it is yielded, in window order. A failure is raised
at its own position, after every earlier result was yielded: later items that have not started
are cancelled, running ones finish (their files have deterministic names, so a rerun rewrites
them) but are never yielded, so no commit can skip a gap.

At most ``concurrency`` items run at once, and at most ``2 * concurrency`` are queued or done
ahead of the oldest uncommitted one, which bounds the work wasted after a failure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

LOOKAHEAD_FACTOR = 2


def in_order(items: Sequence[T], work: Callable[[T], R], concurrency: int) -> Iterator[tuple[T, R]]:
    """Yield ``(item, work(item))`` in input order, running up to ``concurrency`` items at once.

    With ``concurrency`` 1 (or a single item) everything runs in the calling thread, exactly like
    a plain loop: no pool, no threads.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if concurrency == 1 or len(items) <= 1:
        for item in items:
            yield item, work(item)
        return
    workers = min(concurrency, len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ledger-slice") as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        upcoming = iter(items)
        try:
            _top_up(pool, upcoming, pending, work, workers * LOOKAHEAD_FACTOR)
            while pending:
                item, future = pending.popleft()
                result = future.result()  # re-raises the item's failure at its position
                _top_up(pool, upcoming, pending, work, workers * LOOKAHEAD_FACTOR)
                yield item, result
        finally:
            # On a failure, or when the caller stops early (its commit failed): cancel what has not
            # started; the pool's exit then waits for the running items to finish.
            for _, future in pending:
                future.cancel()


def _top_up(
    pool: ThreadPoolExecutor,
    upcoming: Iterator[T],
    pending: deque[tuple[T, Future[R]]],
    work: Callable[[T], R],
    limit: int,
) -> None:
    for item in islice(upcoming, max(0, limit - len(pending))):
        pending.append((item, pool.submit(work, item)))
