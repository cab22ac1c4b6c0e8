"""One digest for "which events does this set hold", shared by ingest_runs, coverage and manifests.

An auditor comparing two lists of event ids (what a window stored, what a manifest lists, what
an export bundle ships) needs one short value that is equal exactly when the sets are equal,
whatever order the ids were read in. Sorting the distinct ids and hashing them one per line
gives that, and anyone can recompute it with a shell one-liner:

    LC_ALL=C sort -u ids.txt | sha256sum         # ids.txt: one id per line, trailing newline

The empty set hashes the empty string (sha256 of b"").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def id_set_digest(ids: Iterable[str]) -> str:
    """Hex sha256 over the distinct ids, sorted by code point, each followed by a newline."""
    digest = hashlib.sha256()
    for event_id in sorted(set(ids)):
        digest.update(event_id.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
