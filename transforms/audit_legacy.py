"""Legacy audit records (2.18/2.19 ``GET /v1/k8s/audit``) into the same AUDIT_EVENTS rows.

The legacy record (runapy 1.218 ``AuditLogRecord``) names things differently; each is mapped to
the modern wire key and then goes through exactly the same validation as a modern row
(transforms/audit.py), so both flavours land in one table with the same columns, told apart by
``api_flavour = 'k8s_audit'``:

* ``id`` (an integer) -> ``event_id`` as its decimal text;
* ``happenedAt`` -> ``timestamp`` (event_time); ``tenantId`` -> ``tenant_id``;
* ``sourceName``/``sourceType`` -> ``subject``/``subject_type``; ``clusterUuid`` -> ``cluster_id``;
* ``error`` -> ``result``: absent or empty means ``Succeeded``, present means ``Failed``, and the
  ``status`` inside the error's JSON text (when it has one) becomes ``http_status_code`` and its
  ``description`` ``metadata.reason``;
* ``context.ip_address`` -> ``source_ip``;
* the capitalised legacy actions (``Create``, ``Login``, ...) -> the modern ones (``create``,
  ``sign-in``, ...); an action outside the map is kept as sent and counted as enum drift.

Keys the legacy record documents but the table has no column for (``version``, ``sourceId``,
``context``, ``body``) are dropped on purpose; any other key is passed through so the normaliser
counts it as drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from transforms.audit import AuditBatch, normalise_audit

LEGACY_FLAVOUR = "k8s_audit"
_RENAMES = {
    "happenedAt": "timestamp",
    "tenantId": "tenant_id",
    "sourceName": "subject",
    "sourceType": "subject_type",
    "entityId": "entity_id",
    "entityType": "entity_type",
    "entityName": "entity_name",
    "clusterUuid": "cluster_id",
    "action": "action",
}
# What every legacy row maps to (the legacy record has no url, http_method or request_id at all).
LEGACY_EXPECTED = frozenset(
    {
        "id",
        "timestamp",
        "tenant_id",
        "subject",
        "subject_type",
        "action",
        "entity_type",
        "entity_name",
        "result",
    }
)
_DROPPED = frozenset({"version", "sourceId", "context", "body", "error", "id"})
_ACTIONS = {
    "create": "create",
    "update": "update",
    "delete": "delete",
    "login": "sign-in",
    "logout": "sign-out",
    "resetpassword": "reset-password",
}


def normalise_legacy_audit(records: Sequence[Any], *, run_id: str, ingested_at: datetime) -> AuditBatch:
    """Like :func:`transforms.audit.normalise_audit`, for legacy records; rows keep their order."""
    mapped = [legacy_to_wire(record) if isinstance(record, dict) else record for record in records]
    return normalise_audit(
        mapped, run_id=run_id, ingested_at=ingested_at, flavour=LEGACY_FLAVOUR, expected=LEGACY_EXPECTED
    )


def legacy_to_wire(record: dict[str, Any]) -> dict[str, Any]:
    """One legacy record as the modern wire row it describes (see the module docstring)."""
    row: dict[str, Any] = {
        modern: record[legacy] for legacy, modern in _RENAMES.items() if record.get(legacy) is not None
    }
    row.update({key: value for key, value in record.items() if key not in _RENAMES and key not in _DROPPED})
    raw_id = record.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        row["id"] = str(raw_id)
    elif raw_id is not None:
        row["id"] = raw_id  # a string or worse: the normaliser judges it like any modern id
    action = row.get("action")
    if isinstance(action, str):
        row["action"] = _ACTIONS.get(action.replace("-", "").replace("_", "").lower(), action)
    context = record.get("context")
    if isinstance(context, dict) and isinstance(context.get("ip_address"), str):
        row["source_ip"] = context["ip_address"]
    row.update(_outcome(record.get("error")))
    return row


def _outcome(error: Any) -> dict[str, Any]:
    if error is None or error == "":
        return {"result": "Succeeded"}
    outcome: dict[str, Any] = {"result": "Failed"}
    try:
        parsed = orjson.loads(error) if isinstance(error, str) else error
    except orjson.JSONDecodeError:
        return {**outcome, "metadata": {"reason": str(error)}}
    if isinstance(parsed, dict):
        status = parsed.get("status")
        if isinstance(status, int) and not isinstance(status, bool):
            outcome["http_status_code"] = status
        if isinstance(parsed.get("description"), str) and parsed["description"]:
            outcome["metadata"] = {"reason": parsed["description"]}
    return outcome
