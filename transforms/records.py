"""Nested camelCase API records -> rows of an explicit Arrow schema, one record at a time.

Why record at a time (the audit normaliser is columnar): workloads, their history and the org
units come in hundreds or thousands, not millions, and they are deeply nested with many optional
objects (README §11.11: ``allocatedResources`` may be null or absent). Walking each record once
against a declared column list keeps every rule in one table per entity, names the exact field
that made a record unusable, and costs microseconds per record.

A record that cannot be stored (not an object, a required field missing, a value of the wrong
type) is rejected with its reason and raw JSON for the quarantine; the rest of the page is kept.
Keys the declaration does not know are counted as drift, so a newer control plane is noticed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from transforms.audit_fields import parse_timestamp, record_json, type_name

Path = tuple[str, ...]


@dataclass(frozen=True)
class Column:
    """One stored column: where its value sits in the record and whether the record needs it."""

    name: str
    path: Path
    required: bool = False
    hashed: bool = True  # part of row_hash (False for counters that tick without a state change)


def col(name: str, wire: str, *, required: bool = False, hashed: bool = True) -> Column:
    """A column read from a dotted wire path, e.g. ``col("allocated_gpus", "allocatedResources.gpu")``."""
    return Column(name, tuple(wire.split(".")), required, hashed)


@dataclass
class QuarantinedRecord:
    """A record that could not be stored: its index in the page, why, and its JSON text.

    Defined here rather than in transforms.audit so that the org and usage normalisers (and the
    views' registry of org kinds) do not import the audit normaliser and pyarrow.compute.
    """

    record_index: int
    reason: str
    raw: str


@dataclass
class Normalised:
    """Rows ready to write, the records rejected on the way, and unknown top-level keys seen."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[QuarantinedRecord] = field(default_factory=list)
    drift: Counter[str] = field(default_factory=Counter)


class BadValue(ValueError):
    """A value that does not fit its column; the message names the column and what came."""


def normalise_records(
    records: Sequence[Any],
    columns: Sequence[Column],
    schema: pa.Schema,
    *,
    known_keys: Iterable[str],
    extra: Mapping[str, Any] | None = None,
) -> Normalised:
    """Convert ``records`` to rows of ``schema`` (plus ``extra`` values and a ``row_hash`` per row)."""
    known = set(known_keys)
    out = Normalised()
    types = {c.name: schema.field(c.name).type for c in columns}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            out.rejected.append(
                QuarantinedRecord(
                    index, f"record is a JSON {type_name(record)}, not an object", record_json(record)
                )
            )
            continue
        try:
            row = {c.name: _convert(_dig(record, c), types[c.name], c) for c in columns}
        except BadValue as exc:
            out.rejected.append(QuarantinedRecord(index, str(exc), record_json(record)))
            continue
        row["row_hash"] = row_hash(row, [c.name for c in columns if c.hashed])
        if extra:
            row.update(extra)
        out.rows.append(row)
        out.drift.update(key for key in record if key not in known)
    return out


def row_hash(row: Mapping[str, Any], names: Sequence[str]) -> str:
    """A digest of the state a row describes: equal hashes mean nothing worth storing changed."""
    payload = orjson.dumps([row[name] for name in names], option=orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (already converted by normalise_records) as a table of exactly ``schema``."""
    return pa.Table.from_pylist(list(rows), schema=schema)


def _dig(record: Mapping[str, Any], column: Column) -> Any:
    value: Any = record
    for key in column.path:
        if not isinstance(value, Mapping):
            value = None  # a parent object that is null or absent
            break
        value = value.get(key)
    if value is None and column.required:
        raise BadValue(f"required field {'.'.join(column.path)} is missing or null")
    return value


def _convert(value: Any, arrow_type: pa.DataType, column: Column) -> Any:
    if value is None:
        return None
    wire = ".".join(column.path)
    try:
        return _CONVERTERS[_family(arrow_type)](value)
    except (TypeError, ValueError) as exc:
        raise BadValue(f"field {wire}: {exc} (got {type_name(value)} {str(value)[:60]!r})") from None


def _family(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_list(arrow_type):
        return "strings"
    return "string"


def _as_string(value: Any) -> str:
    # Ids are strings holding numbers ("1"); a tenant that renders them as numbers is stored the same.
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError("expected a string")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError("expected an integer")


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    return float(value)


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _as_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("expected an ISO-8601 date-time string")
    return parse_timestamp(value)[0]


def _as_strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected an array of strings")
    return value


_CONVERTERS = {
    "string": _as_string,
    "int": _as_int,
    "float": _as_float,
    "bool": _as_bool,
    "timestamp": _as_timestamp,
    "strings": _as_strings,
}
