"""One audit value at a time: the timestamp grammar, derived ids, and text for reasons and quarantine.

Why a module of its own: these rules define what a single wire value means, independent of Arrow
and of any page. The column validators' slow path (transforms/audit_columns.py) applies them value
by value, the normaliser uses them for drift keys and quarantine rows, and callers and tests use
``parse_timestamp``, ``derive_event_id`` and ``record_json`` directly (through transforms.audit).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from runai_extract.core.times import parse_iso


# -- timestamps ------------------------------------------------------------------------------------
def parse_timestamp(text: str) -> tuple[datetime, bool]:
    """One audit timestamp as aware UTC, and whether it carried no zone (core.times.parse_iso).

    The wire's rule on top of the project's one ISO-8601 grammar: a full date-time down to the
    second. Raises ValueError otherwise.
    """
    return parse_iso(text, seconds=True)


# -- ids -------------------------------------------------------------------------------------------
def derive_event_id(record: dict[Any, Any]) -> str:
    """A stable id for a record without one: the same payload always gives the same id."""
    canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return "derived:" + hashlib.sha256(canonical).hexdigest()[:32]


# -- quarantine text -------------------------------------------------------------------------------
def record_json(record: Any) -> str:
    """The record as JSON text for the quarantine; repr when it is not JSON-serialisable at all."""
    try:
        return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return repr(record)


# -- small helpers ---------------------------------------------------------------------------------
def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
