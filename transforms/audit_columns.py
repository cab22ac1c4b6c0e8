"""The per-column validators behind ``normalise_audit``: the Arrow fast path and the slow path.

Why a module of its own: turning a page of dicts into typed Arrow columns, and naming exactly which
records are wrong when Arrow refuses a column, is the bulk of the normaliser and one job. Each
validator tries Arrow's one-call conversion first and walks the values in Python only on refusal,
writing every problem into ``Problems`` and every tolerated oddity into ``Notes``. What happens
to the rows afterwards (filtering, drift, quarantine) stays in transforms/audit.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from transforms.audit_fields import clip, derive_event_id, parse_timestamp, type_name
from transforms.schemas import AUDIT_EVENTS, AUDIT_WIRE_FIELDS, UTC_TS

REQUIRED_FIELDS: tuple[str, ...] = ("tenant_id", "subject", "subject_type", "action", "result")

# Plain string columns, stored under the same name as on the wire: read off the schema (the one
# list of audit columns) rather than written out again. tenant_id is a string too but is read
# apart (a numeric one is converted); event_id and event_time come from the wire's id and timestamp.
_STRING_FIELDS: tuple[str, ...] = tuple(
    field.name
    for field in AUDIT_EVENTS
    if field.type == pa.string() and field.name in AUDIT_WIRE_FIELDS and field.name != "tenant_id"
)

# The string-typed wire fields Arrow extracts in one struct conversion (extra keys are ignored).
# tenant_id joins them when it is a string, as the schema says; a numeric one (as in the published
# samples) makes Arrow refuse at once, and it is then converted on its own.
_WIRE_STRINGS: tuple[str, ...] = ("id", "timestamp", *_STRING_FIELDS)
_WIRE_STRUCT = pa.struct([pa.field(name, pa.string()) for name in _WIRE_STRINGS])
_WIRE_STRUCT_WITH_TENANT = pa.struct([*_WIRE_STRUCT, pa.field("tenant_id", pa.string())])

_FIELD_ORDER = {name: i for i, name in enumerate(AUDIT_WIRE_FIELDS)}
_METADATA_TYPE: pa.MapType = AUDIT_EVENTS.field("metadata").type
_STATUS_MIN, _STATUS_MAX = 100, 599
_REASON_VALUE_CHARS = 80

# What Arrow raises when a Python value does not fit the requested or inferred type.
_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError)

# The shape nearly every Run:ai timestamp has ("2025-06-02T08:14:58.207Z", or an offset). For
# strings of exactly this shape Arrow's cast and parse_timestamp agree (a property test checks
# it), so a whole column of them is converted in one vectorised call.
_FAST_TIMESTAMP = (
    r"^[12]\d{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)


# -- records and columns -------------------------------------------------------------------------
class Problems:
    """Reasons per record position; a record with any reason is quarantined."""

    def __init__(self) -> None:
        self.by_pos: dict[int, list[tuple[int, str]]] = {}

    def add(self, pos: int, name: str, message: str) -> None:
        self.by_pos.setdefault(pos, []).append((_FIELD_ORDER.get(name, -1), f"field {name}: {message}"))

    def has(self, pos: int, name: str | None = None) -> bool:
        """Whether the record has a problem (with ``name`` when given)."""
        if name is None or pos not in self.by_pos:
            return pos in self.by_pos
        prefix = f"field {name}: "
        return any(message.startswith(prefix) for _, message in self.by_pos[pos])

    def reason(self, pos: int) -> str:
        return "; ".join(message for _, message in sorted(self.by_pos[pos]))

    def keep_mask(self, n: int) -> pa.Array | None:
        """None when every record is kept, so the common case skips the filter entirely."""
        if not self.by_pos:
            return None
        keep = [True] * n
        for pos in self.by_pos:
            keep[pos] = False
        return pa.array(keep, type=pa.bool_())


@dataclass
class Notes:
    """Row positions with tolerated oddities, counted as drift if the row is kept."""

    zone_less: list[int] = field(default_factory=list)
    metadata_non_string: list[int] = field(default_factory=list)
    empty_id: list[int] = field(default_factory=list)


def validate_columns(
    objects: list[dict[Any, Any]], problems: Problems, notes: Notes
) -> tuple[dict[str, pa.Array], pa.Array]:
    """Every column except event_id (derived ids wait until we know which records survive)."""
    strings = _string_columns(objects, problems)
    arrays = {name: strings[name] for name in _STRING_FIELDS}
    tenant_ids = strings.get("tenant_id")
    if tenant_ids is None:
        tenant_ids = _tenant_ids(_column(objects, "tenant_id"), problems)
    arrays["tenant_id"] = tenant_ids
    for name in REQUIRED_FIELDS:
        _flag_required(name, arrays[name], objects, problems)
    arrays["event_time"] = _event_times(strings["timestamp"], objects, problems, notes)
    arrays["http_status_code"] = _status_codes(_column(objects, "http_status_code"), problems)
    arrays["metadata"] = _metadata(_column(objects, "metadata"), problems, notes)
    return arrays, strings["id"]


def _column(objects: list[dict[Any, Any]], name: str) -> list[Any]:
    return [record.get(name) for record in objects]


def _string_columns(objects: list[dict[Any, Any]], problems: Problems) -> dict[str, pa.Array]:
    """The fifteen string-typed wire fields, plus tenant_id when it is text throughout.

    Fast path: Arrow reads them out of the dicts in one struct conversion (about twice as fast as
    extracting columns in Python). Arrow refuses the whole page if any value is not text, and it
    refuses at the first such value, so a failed attempt costs little; after the second refusal
    each column is converted on its own so the offending records can be named.
    """
    for struct_type in (_WIRE_STRUCT_WITH_TENANT, _WIRE_STRUCT):
        try:
            struct = pa.array(objects, type=struct_type)
        except _CONVERSION_ERRORS:
            continue
        return {f.name: array for f, array in zip(struct_type, struct.flatten(), strict=True)}
    return {name: _strings(name, _column(objects, name), problems) for name in _WIRE_STRINGS}


# -- strings ---------------------------------------------------------------------------------------
def _try_array(values: Sequence[Any], type_: pa.DataType | None = None) -> pa.Array | None:
    """Arrow's one-call conversion, or None when some value does not fit (the slow path decides)."""
    try:
        return pa.array(values, type=type_)
    except _CONVERSION_ERRORS:
        return None


def _strings(name: str, values: Sequence[Any], problems: Problems) -> pa.Array:
    """A string column; a value of another type is a problem for its record, never coerced."""
    array = _try_array(values)
    if array is not None and array.type == pa.string():
        return array
    if array is not None and array.type == pa.null():
        return array.cast(pa.string())
    out: list[str | None] = []
    for pos, value in enumerate(values):
        text = None if value is None else _as_text(value)
        if value is not None and text is None:
            problems.add(pos, name, _string_problem(value))
        out.append(text)
    return pa.array(out, type=pa.string())


def _as_text(value: Any) -> str | None:
    """The value as storable text, or None when it is not text.

    A str must encode as UTF-8 (stdlib json can produce lone surrogates; Parquet cannot store
    them). UTF-8 bytes count as text because Arrow's fast path takes them so; JSON never has bytes.
    """
    try:
        if isinstance(value, str):
            value.encode("utf-8")
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8")
    except UnicodeError:
        return None
    return None


def _string_problem(value: Any) -> str:
    if isinstance(value, str | bytes):
        return "string is not valid Unicode"
    return f"expected string, got {type_name(value)}"


def _tenant_ids(values: Sequence[Any], problems: Problems) -> pa.Array:
    """tenant_id is a string in the schema but a number in the published samples: accept both."""
    array = _try_array(values)
    if array is not None and array.type in (pa.string(), pa.int64(), pa.null()):
        return array.cast(pa.string())
    out: list[str | None] = []
    for pos, value in enumerate(values):
        if isinstance(value, int) and not isinstance(value, bool):
            out.append(str(value))
            continue
        text = None if value is None else _as_text(value)
        if value is not None and text is None:
            problems.add(pos, "tenant_id", _string_problem(value))
        out.append(text)
    return pa.array(out, type=pa.string())


def _flag_required(name: str, array: pa.Array, objects: list[dict[Any, Any]], problems: Problems) -> None:
    """Missing, null or empty required fields; a value already rejected for its type is not re-reported."""
    if not array.null_count and not pc.equal(array, "").true_count:
        return
    for pos, value in enumerate(array.to_pylist()):
        if (value is None or value == "") and not problems.has(pos, name):
            problems.add(pos, name, _absence(objects[pos], name))


def _absence(record: dict[Any, Any], name: str) -> str:
    if name not in record:
        return "missing"
    return "null" if record[name] is None else "empty string"


# -- timestamps ------------------------------------------------------------------------------------
def _event_times(
    strings: pa.Array, objects: list[dict[Any, Any]], problems: Problems, notes: Notes
) -> pa.Array:
    """timestamp[us, UTC]; a record without a usable timestamp cannot be placed in a window."""
    _flag_required("timestamp", strings, objects, problems)
    fast = _fast_timestamps(strings)
    if fast is not None:
        return fast
    out: list[datetime | None] = []
    for pos, text in enumerate(strings.to_pylist()):
        out.append(_slow_timestamp(pos, text, problems, notes) if text else None)
    return pa.array(out, type=UTC_TS)


def _fast_timestamps(strings: pa.Array) -> pa.Array | None:
    """The whole column in one Arrow cast, when every value has the common shape; else None."""
    if strings.null_count or not len(strings):
        return None
    if pc.match_substring_regex(strings, _FAST_TIMESTAMP).false_count:
        return None
    try:
        return strings.cast(UTC_TS)
    except pa.ArrowInvalid:
        return None  # e.g. 2025-02-30: the Python parser names the culprit


def _slow_timestamp(pos: int, text: str, problems: Problems, notes: Notes) -> datetime | None:
    try:
        parsed, zone_less = parse_timestamp(text)
    except ValueError as exc:
        problems.add(pos, "timestamp", f"unparsable date-time {clip(text, _REASON_VALUE_CHARS)!r} ({exc})")
        return None
    if zone_less:
        notes.zone_less.append(pos)
    return parsed


# -- numbers and maps ------------------------------------------------------------------------------
def _status_codes(values: Sequence[Any], problems: Problems) -> pa.Array:
    """int64 while validating (an out-of-range value may not fit int32); cast after filtering."""
    array = _try_array(values)
    if array is None or array.type not in (pa.int64(), pa.null()):
        array = pa.array(_checked_status_codes(values, problems), type=pa.int64())
    array = array.cast(pa.int64())
    bounds = pc.min_max(array).as_py()
    if bounds["min"] is None or (bounds["min"] >= _STATUS_MIN and bounds["max"] <= _STATUS_MAX):
        return array
    for pos, code in enumerate(array.to_pylist()):
        if code is not None and not _STATUS_MIN <= code <= _STATUS_MAX:
            problems.add(pos, "http_status_code", f"{code} outside {_STATUS_MIN}..{_STATUS_MAX}")
    return array


def _checked_status_codes(values: Iterable[Any], problems: Problems) -> list[int | None]:
    out: list[int | None] = []
    for pos, value in enumerate(values):
        if value is None:
            out.append(None)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not _STATUS_MIN <= value <= _STATUS_MAX:
                problems.add(pos, "http_status_code", f"{value} outside {_STATUS_MIN}..{_STATUS_MAX}")
                value = None  # may not even fit in int64
            out.append(value)
        else:
            problems.add(pos, "http_status_code", f"expected integer, got {type_name(value)}")
            out.append(None)
    return out


def _metadata(values: Sequence[Any], problems: Problems, notes: Notes) -> pa.Array:
    """map<string,string>; non-string values become compact JSON text rather than being lost."""
    if set(map(type, values)) <= {dict, type(None)}:
        array = _try_array(values, _METADATA_TYPE)
        if array is not None:
            return array
    out = [_metadata_entries(pos, value, problems, notes) for pos, value in enumerate(values)]
    return pa.array(out, type=_METADATA_TYPE)


def _metadata_entries(
    pos: int, value: Any, problems: Problems, notes: Notes
) -> list[tuple[str, str | None]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add(pos, "metadata", f"expected object, got {type_name(value)}")
        return None
    entries: list[tuple[str, str | None]] = []
    non_string = False
    for key, item in value.items():
        if not isinstance(key, str) or _as_text(key) is None:
            problems.add(pos, "metadata", f"key {clip(repr(key), _REASON_VALUE_CHARS)} is not a string")
            return None
        text = None if item is None else _as_text(item)
        if item is None or text is not None:
            entries.append((key, text))
            continue
        try:
            entries.append((key, orjson.dumps(item).decode()))
        except orjson.JSONEncodeError as exc:
            problems.add(pos, "metadata", f"value of {clip(key, _REASON_VALUE_CHARS)!r} is not JSON ({exc})")
            return None
        non_string = True
    if non_string:
        notes.metadata_non_string.append(pos)
    return entries


# -- ids -------------------------------------------------------------------------------------------
def event_ids(
    ids: pa.Array, objects: list[dict[Any, Any]], problems: Problems, notes: Notes
) -> tuple[pa.Array, pa.Array | None]:
    """The API's id, or a derived one; runs last so records already rejected are not hashed."""
    if not ids.null_count and not pc.equal(ids, "").true_count:
        return ids, None
    out = ids.to_pylist()
    derived = [False] * len(out)
    for pos, value in enumerate(out):
        if value or problems.has(pos):
            continue
        if out[pos] == "":
            notes.empty_id.append(pos)
        try:
            out[pos] = derive_event_id(objects[pos])
        except orjson.JSONEncodeError as exc:
            problems.add(pos, "id", f"absent, and the record has no canonical JSON to derive one ({exc})")
            continue
        derived[pos] = True
    return pa.array(out, type=pa.string()), pa.array(derived, type=pa.bool_())
