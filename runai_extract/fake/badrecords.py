"""Corrupt variants of audit rows, for the ``bad_record_rate`` fault.

Which rows are corrupt, and how, is a pure function of (seed, row id, rate, kinds): the same
row is served corrupt the same way on every read (overlaps, re-pages, retries), and the
simulator's ground truth can list them without having served them (``corrupt_ids``).
The row's ``id`` and ``timestamp`` are never touched, so the ledger can still tell which record
it quarantined and the window a row belongs to does not change.

Kinds, and what a careful ledger does with each:

* ``missing_required``: ``subject`` and ``action`` removed -> quarantined.
* ``tenant_number``: ``tenant_id`` as a JSON number (seen in published samples) -> stored, as a string.
* ``status_string``: ``http_status_code`` as a string (``"200"``) -> quarantined (or coerced).
* ``unknown_enum``: ``action``/``result``/``subject_type`` values no schema lists -> stored, drift.
* ``huge_metadata``: a ``metadata`` map of about ``HUGE_METADATA_BYTES`` -> stored or quarantined.
* ``unicode_name``: emoji, right-to-left text, combining marks and NUL in names -> stored exactly.
* ``sql_quote``: ``x'); drop table audit_events; --`` in names -> stored as data.
* ``path_segment``: ``../../etc/passwd`` in names -> stored as data, never a path.
"""

from __future__ import annotations

import hashlib
from typing import Any

WireRow = dict[str, Any]

BAD_RECORD_KINDS: tuple[str, ...] = (
    "missing_required",
    "tenant_number",
    "status_string",
    "unknown_enum",
    "huge_metadata",
    "unicode_name",
    "sql_quote",
    "path_segment",
)
HUGE_METADATA_BYTES = 10 * 1024 * 1024
_HUGE_VALUE = "x" * 1000  # ~1 KB per entry: about 10,400 entries for 10 MB
UNICODE_NAME = "Ünïcødé 🚀👩\u200d💻 שלום עולם \u202eevil\u202c a\u0000b e\u0301"
SQL_NAME = "x'); drop table audit_events; --"
PATH_NAME = "../../etc/passwd"
UNKNOWN_ACTION, UNKNOWN_RESULT, UNKNOWN_SUBJECT_TYPE = "Teleport", "Maybe", "Robot"


def kind_for(seed: int, row_id: str, rate: float, kinds: tuple[str, ...]) -> str | None:
    """The corruption this row gets at ``rate``, or None; a stable hash, not an RNG draw."""
    if rate <= 0 or not kinds:
        return None
    digest = hashlib.blake2b(f"bad:{seed}:{row_id}".encode(), digest_size=16).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    if draw >= rate:
        return None
    return kinds[int.from_bytes(digest[8:], "big") % len(kinds)]


def corrupt(row: WireRow, kind: str) -> WireRow:
    """A corrupt copy of ``row`` (the input is not changed)."""
    bad = dict(row)
    if kind == "missing_required":
        bad.pop("subject", None)
        bad.pop("action", None)
    elif kind == "tenant_number":
        bad["tenant_id"] = int(bad["tenant_id"]) if str(bad["tenant_id"]).isdigit() else 1001
    elif kind == "status_string":
        bad["http_status_code"] = str(bad["http_status_code"])
    elif kind == "unknown_enum":
        bad.update(action=UNKNOWN_ACTION, result=UNKNOWN_RESULT, subject_type=UNKNOWN_SUBJECT_TYPE)
    elif kind == "huge_metadata":
        entries = HUGE_METADATA_BYTES // (len(_HUGE_VALUE) + 16) + 1
        bad["metadata"] = {f"key{i:08d}": _HUGE_VALUE for i in range(entries)}
    elif kind == "unicode_name":
        bad.update(subject=UNICODE_NAME, entity_name=UNICODE_NAME)
    elif kind == "sql_quote":
        bad.update(subject=SQL_NAME, entity_name=SQL_NAME, cluster_name=SQL_NAME)
    elif kind == "path_segment":
        bad.update(subject=PATH_NAME, entity_name=PATH_NAME, cluster_name=PATH_NAME, url="/../../etc/passwd")
    else:
        raise ValueError(f"unknown bad record kind {kind!r}")
    return bad
