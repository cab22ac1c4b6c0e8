"""One audit value at a time: the timestamp grammar, derived ids, and text for reasons and quarantine.

Why a module of its own: these rules define what a single wire value means, independent of Arrow
and of any page. The column validators' slow path (transforms/audit_columns.py) applies them value
by value, the normaliser uses them for drift keys and quarantine rows, and callers and tests use
``parse_timestamp``, ``derive_event_id`` and ``record_json`` directly (through transforms.audit).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

# Everything we accept: 'T', 't' or ' ' separator, any number of fractional digits, an optional
# zone ('Z' or +hh:mm / +hhmm). re.ASCII keeps \d from matching non-ASCII digits.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,
)


# -- timestamps ------------------------------------------------------------------------------------
def parse_timestamp(text: str) -> tuple[datetime, bool]:
    """Parse one audit timestamp to an aware UTC datetime; the flag says it carried no zone.

    Accepts ISO-8601 with 'Z' or an offset, fractional seconds of any length (digits beyond the
    microsecond are truncated, as pydantic does) and the zone-less 'YYYY-MM-DD HH:MM:SS.fff' form
    some Run:ai examples show, which is read as UTC. Raises ValueError otherwise.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError("not an ISO-8601 date-time")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    zone_less = not zulu and not sign
    tz: timezone = UTC
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError("zone offset out of range")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    parts = (int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    try:
        return datetime(*parts, tzinfo=tz).astimezone(UTC), zone_less
    except OverflowError as exc:
        raise ValueError("date-time out of range") from exc


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
