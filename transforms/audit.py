"""Audit-log records (``GET /api/v1/audit/log`` items) to the typed AUDIT_EVENTS table.

Why this shape: a page holds up to 1000 records and a backfill holds millions, so nothing is
done record by record when it can be done by Arrow in one C-level call: the fifteen string fields
come out of the dicts in a single struct conversion, timestamps are cast as a whole column, checks
are vectorised. That fast path is taken by every well-formed page. Only when Arrow refuses a
column do we walk its values in Python to name exactly which records are wrong and why (the slow
path). Both paths must give the same answer; a property test checks that.

What is judged wrong, and what is kept:

* A bad record never sinks its page. It goes to quarantine with a precise reason (every problem
  it has, in wire-field order) and its raw JSON; the good records around it are kept, in order.
* The 2.24 schema's required fields (tenant_id, subject, subject_type, action, result) and a
  parsable timestamp are needed to store an event. ``tenant_id`` arrives as a number in published
  samples although the schema says string, so an integer is coerced rather than rejected.
* Enumerations are stored as received: an action a newer control plane invented is exactly what
  an auditor must not lose. Unknown enum values, unknown top-level keys and other tolerated
  oddities are counted in ``drift`` so a run can report them.
* ``id`` became optional in 2.23. Without one, a stable id is derived from the record's
  canonical JSON, so the same record read twice (overlapping windows) dedupes to one row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from runai_extract.core.times import require_utc

# REQUIRED_FIELDS is re-exported: it is part of this module's contract; the column validators apply it.
from transforms.audit_columns import REQUIRED_FIELDS as REQUIRED_FIELDS
from transforms.audit_columns import Notes, Problems, event_ids, validate_columns
from transforms.audit_fields import clip, derive_event_id, parse_timestamp, record_json, type_name
from transforms.records import QuarantinedRecord as QuarantinedRecord
from transforms.schemas import AUDIT_EVENTS, AUDIT_WIRE_FIELDS, UTC_TS

__all__ = [
    "AuditBatch",
    "QuarantinedRecord",
    "derive_event_id",
    "normalise_audit",
    "parse_timestamp",
    "record_json",
]

# The 2.24 enumerations (runapy field validators). Values outside them are stored and counted.
ENUMS: dict[str, frozenset[str]] = {
    "subject_type": frozenset({"User", "App"}),
    "action": frozenset({"create", "update", "delete", "sign-in", "sign-out", "reset-password"}),
    "http_method": frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "CREATE"}),
    "result": frozenset({"Succeeded", "Failed"}),
}

_KNOWN_FIELDS = frozenset(AUDIT_WIRE_FIELDS)
# Keys every 2.24 row carries in practice (the schema made most optional in 2.23). A row without
# one is stored with the column null and counted as drift ``gone:<key>``: a field the control
# plane stopped sending must be noticed, not silently become a column of nulls.
EXPECTED_FIELDS = frozenset(
    {"id", "timestamp", "tenant_id", "subject", "subject_type", "source_ip", "action", "http_method",
     "url", "entity_type", "entity_name", "result", "http_status_code", "request_id"}
)  # fmt: skip
_EXTRA_TYPE = AUDIT_EVENTS.field("extra_fields").type
_DRIFT_VALUE_CHARS = 64  # a hostile 10 MB enum value must not become a 10 MB drift key


@dataclass
class AuditBatch:
    """One page (or any sequence) of records, normalised."""

    table: pa.Table
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    drift: Counter[str] = field(default_factory=Counter)


def normalise_audit(
    records: Sequence[Any],
    *,
    run_id: str,
    ingested_at: datetime,
    flavour: str = "audit_log",
    expected: frozenset[str] = EXPECTED_FIELDS,
) -> AuditBatch:
    """Validate and type ``records``; the table has exactly the AUDIT_EVENTS schema.

    ``len(batch.table) + len(batch.quarantined) == len(records)`` always holds, and the stored rows
    keep the input order.
    """
    ingested_at = require_utc(ingested_at, "ingested_at")
    indexes, objects, not_objects = _split_objects(records)
    problems = Problems()
    notes = Notes()
    arrays, ids = validate_columns(objects, problems, notes)
    arrays["event_id"], derived = event_ids(ids, objects, problems, notes)
    arrays["extra_fields"] = _extra_fields(objects)
    table = _assemble(arrays, derived, problems.keep_mask(len(objects)), run_id, ingested_at, flavour)
    drift = _drift(table, objects, set(problems.by_pos), notes)
    drift.update(_gone(objects, set(problems.by_pos), expected))
    quarantined = _quarantined(records, indexes, problems, not_objects)
    return AuditBatch(table=table, quarantined=quarantined, drift=drift)


# -- records ---------------------------------------------------------------------------------------
def _split_objects(records: Sequence[Any]) -> tuple[Sequence[int], list[dict[Any, Any]], list[int]]:
    """Separate JSON objects from anything else, remembering each object's original index."""
    records = list(records)
    if set(map(type, records)) <= {dict}:
        return range(len(records)), records, []
    indexes: list[int] = []
    objects: list[dict[Any, Any]] = []
    not_objects: list[int] = []
    for index, record in enumerate(records):
        if isinstance(record, dict):
            indexes.append(index)
            objects.append(record)
        else:
            not_objects.append(index)
    return indexes, objects, not_objects


# -- the table, drift and quarantine ---------------------------------------------------------------
def _assemble(
    arrays: dict[str, pa.Array],
    derived: pa.Array | None,
    keep: pa.Array | None,
    run_id: str,
    ingested_at: datetime,
    flavour: str,
) -> pa.Table:
    n = len(arrays["event_id"])
    arrays["event_id_derived"] = derived if derived is not None else pa.repeat(pa.scalar(False), n)
    if keep is not None:
        arrays = {name: array.filter(keep) for name, array in arrays.items()}
        n = len(arrays["event_id"])
    arrays["http_status_code"] = arrays["http_status_code"].cast(pa.int32())
    arrays["api_flavour"] = pa.repeat(pa.scalar(flavour, pa.string()), n)
    arrays["ingest_run_id"] = pa.repeat(pa.scalar(run_id, pa.string()), n)
    arrays["ingested_at"] = pa.repeat(pa.scalar(ingested_at, UTC_TS), n)
    return pa.Table.from_arrays([arrays[f.name] for f in AUDIT_EVENTS], schema=AUDIT_EVENTS)


def _drift(table: pa.Table, objects: list[dict[Any, Any]], rejected: set[int], notes: Notes) -> Counter[str]:
    """Drift seen in the rows that were stored (quarantined rows carry their own reason)."""
    drift: Counter[str] = Counter()
    for name, allowed in ENUMS.items():
        column = table[name].combine_chunks()
        if set(pc.unique(column).to_pylist()) <= allowed | {None}:
            continue
        for entry in pc.value_counts(column).to_pylist():
            value = entry["values"]
            if value is not None and value not in allowed:
                drift[f"enum:{name}={clip(value, _DRIFT_VALUE_CHARS)}"] += entry["counts"]
    unknown = set().union(*objects).difference(_KNOWN_FIELDS) if objects else set()
    for key in unknown:
        count = sum(1 for pos, record in enumerate(objects) if key in record and pos not in rejected)
        if count:
            drift[f"field:{clip(str(key), _DRIFT_VALUE_CHARS)}"] += count
    for label, positions in (
        ("timestamp:zone-less", notes.zone_less),
        ("metadata:non-string", notes.metadata_non_string),
        ("id:empty", notes.empty_id),
    ):
        count = sum(1 for pos in positions if pos not in rejected)
        if count:
            drift[label] += count
    return drift


def _extra_fields(objects: list[dict[Any, Any]]) -> pa.Array:
    """Keys no column holds (a newer API's fields), per record, as key -> JSON text; else null."""
    unknown = set().union(*objects).difference(_KNOWN_FIELDS) if objects else set()
    if not unknown:
        return pa.nulls(len(objects), _EXTRA_TYPE)
    values = []
    for record in objects:
        extra = [(str(k), record_json(record[k])) for k in record if k in unknown]
        values.append(sorted(extra) or None)
    return pa.array(values, type=_EXTRA_TYPE)


def _gone(objects: list[dict[Any, Any]], rejected: set[int], expected: frozenset[str]) -> Counter[str]:
    """Stored rows missing a key the API used to send, counted as ``gone:<key>``."""
    gone: Counter[str] = Counter()
    for pos, record in enumerate(objects):
        if pos in rejected or expected <= record.keys():
            continue
        for key in expected.difference(record):
            gone[f"gone:{key}"] += 1
    return gone


def _quarantined(
    records: Sequence[Any], indexes: Sequence[int], problems: Problems, not_objects: list[int]
) -> list[QuarantinedRecord]:
    out = [
        QuarantinedRecord(
            i, f"record is not an object (got {type_name(records[i])})", record_json(records[i])
        )
        for i in not_objects
    ]
    for pos in problems.by_pos:
        index = indexes[pos]
        out.append(QuarantinedRecord(index, problems.reason(pos), record_json(records[index])))
    out.sort(key=lambda q: q.record_index)
    return out
