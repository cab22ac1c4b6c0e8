"""The audit log as releases 2.18 and 2.19 also serve it: ``GET /v1/k8s/audit`` (releases.py).

The legacy record (runapy 1.218 ``AuditLogRecord``) is camelCase with an integer id and no
envelope: a bare JSON array, no ``total``, no ``next``. Run:ai's own sample lists it newest
first, so the fake does too. The same tenant rows as the modern endpoint are shown, mapped the way
the old service named things: ``happenedAt`` for the timestamp, ``source*`` for the subject, a
capitalised action (``Create``, ``Login``), ``error`` (a JSON text with the status) on failures
instead of a result, and the caller's address in ``context.ip_address``.

Choices where the reference is silent:

* ``start``/``end`` are ``yyyy-MM-dd`` or ``yyyy-MM-ddTHH:mm:ss`` in UTC (anything else: 400);
  ``end`` includes its whole second; without ``start`` the list starts at the first row.
* ``limit`` defaults to 50 (runapy) and is capped at 1000; ``offset`` counts from the newest row.
* The integer id is the low 53 bits of the modern row's UUID: stable, and exact in JSON numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from runai_extract.core.times import parse_iso
from runai_extract.fake.filters import datetime_to_us
from runai_extract.fake.listquery import integer_param
from runai_extract.fake.problems import bad_request

LEGACY_AUDIT_PATH = "/v1/k8s/audit"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?")
_ID_BITS = (1 << 53) - 1
LEGACY_ACTIONS = {
    "create": "Create",
    "update": "Update",
    "delete": "Delete",
    "sign-in": "Login",
    "sign-out": "Logout",
    "reset-password": "ResetPassword",
}


@dataclass(frozen=True)
class LegacyQuery:
    """A validated legacy request; bounds inclusive, UTC microseconds."""

    start_us: int
    end_us: int
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def parse_legacy_query(params: Sequence[tuple[str, str]], now: datetime) -> LegacyQuery:
    single = dict(params)
    start = _instant(single.get("start"), "start")
    end = _instant(single.get("end"), "end")
    start_us = 0 if start is None else datetime_to_us(start)
    end_us = datetime_to_us(now) if end is None else datetime_to_us(end) + 999_999
    return LegacyQuery(
        start_us,
        end_us,
        offset=integer_param(single, "offset", 0, minimum=0, maximum=2**31 - 1),
        limit=integer_param(single, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT),
    )


def legacy_id(modern_id: str) -> int:
    """The legacy integer id of a row, from its modern UUID."""
    return int(modern_id.replace("-", ""), 16) & _ID_BITS


def legacy_record(row: dict[str, Any]) -> dict[str, Any]:
    """One modern wire row as the legacy endpoint shows it (keys it has no value for are left out)."""
    record: dict[str, Any] = {
        "id": legacy_id(row["id"]),
        "tenantId": int(row["tenant_id"]),
        "happenedAt": row["timestamp"],
        "action": LEGACY_ACTIONS.get(row["action"], row["action"]),
        "version": "1.0",
        "entityType": row["entity_type"],
        "entityName": row["entity_name"],
        "sourceType": row["subject_type"],
        "sourceId": row["subject"],
        "sourceName": row["subject"],
        "context": {"user_agent": "runai-ui", "ip_address": row["source_ip"]},
    }
    if row.get("entity_id"):
        record["entityId"] = row["entity_id"]
    if row.get("cluster_id"):
        record["clusterUuid"] = row["cluster_id"]
    if row["result"] == "Failed":
        reason = (row.get("metadata") or {}).get("reason", "")
        error = {"status": row["http_status_code"], "description": reason, "errorType": "BackendError"}
        record["error"] = orjson.dumps(error).decode()
    return record


def row_reshaper(
    extra: tuple[tuple[str, str], ...], dropped: tuple[str, ...]
) -> Callable[[list[bytes]], list[bytes]]:
    """Rendered rows -> rows with keys added/removed (schema drift as "latest" ships it)."""
    if not extra and not dropped:
        return lambda rows: rows

    def reshape(rows: list[bytes]) -> list[bytes]:
        out = []
        for raw in rows:
            row = orjson.loads(raw)
            for key in dropped:
                row.pop(key, None)
            row.update(extra)
            out.append(orjson.dumps(row))
        return out

    return reshape


def _instant(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    if _DATE.fullmatch(raw) is None:
        raise bad_request(f"query parameter '{name}' must be yyyy-MM-dd or yyyy-MM-ddTHH:mm:ss, got {raw!r}")
    try:
        return parse_iso(raw)[0]  # the shape is checked above: no zone, so UTC
    except ValueError as exc:
        raise bad_request(f"query parameter '{name}' is not a valid date: {raw!r}") from exc
