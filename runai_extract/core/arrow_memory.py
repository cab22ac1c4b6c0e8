"""Which allocator Arrow uses in a `runai-ledger` process: the system's, unless the user chose one.

Why: Arrow's default allocator (mimalloc) keeps freed memory in per-thread heaps. A backfill
normalises pages on four slice threads, so those heaps add up: a 200k-row backfill peaked at
402 MiB with mimalloc, 352 MiB with jemalloc and 349 MiB with the system allocator, at the same
CPU (bench, issue 13; the floor script, one thread, peaks at ~325 MiB). Arrow reads
ARROW_DEFAULT_MEMORY_POOL once, when pyarrow is first imported, so this runs at the entry point
before any command imports it; a value the user set is kept.
"""

from __future__ import annotations

import os

ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_system_allocator() -> None:
    os.environ.setdefault(ARROW_POOL_ENV, "system")
