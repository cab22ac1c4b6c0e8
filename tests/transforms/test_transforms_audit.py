"""The audit normaliser: typed output, every quarantine rule, drift, derived ids, Unicode round trips."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runai_extract.core.errors import ConfigError
from transforms.audit import AuditBatch, normalise_audit, parse_timestamp
from transforms.schemas import AUDIT_EVENTS
from transforms.storage import Lake
from transforms.writer import write_table

# A wire-accurate page from the API reference (shared/runai-api/examples), kept with the tests.
EXAMPLE = Path(__file__).parent.parent / "data" / "audit_log_page.json"
RUN = "20251127T000000Z-test0001"
INGESTED = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)


def good(i: int = 0, **changes: Any) -> dict[str, Any]:
    """A complete 2.24 record; ``changes`` override keys, and a value of ``...`` removes the key."""
    record: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "timestamp": f"2025-06-02T08:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "tenant_id": "1001",
        "subject": f"user{i}@example.com",
        "subject_type": "User",
        "source_ip": "10.20.30.41",
        "action": "create",
        "http_method": "POST",
        "url": "/api/v1/workloads/trainings",
        "entity_type": "training",
        "entity_name": f"job-{i}",
        "entity_id": f"e-{i}",
        "result": "Succeeded",
        "http_status_code": 202,
        "cluster_name": "gpu-prod-east",
        "cluster_id": "0b6f3c52-8f0e-4c1e-9a57-2c4b7d9e1f30",
        "request_id": f"r-{i}",
        "metadata": {"reason": "ok"},
    }
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def norm(records: list[Any]) -> AuditBatch:
    return normalise_audit(records, run_id=RUN, ingested_at=INGESTED)


def column(batch: AuditBatch, name: str) -> list[Any]:
    return batch.table.column(name).to_pylist()


# -- typed output ----------------------------------------------------------------------------------
def test_example_page_is_typed_exactly() -> None:
    records = orjson.loads(EXAMPLE.read_bytes())["audit_logs"]
    batch = norm(records)
    assert batch.table.schema.equals(AUDIT_EVENTS, check_metadata=True)
    assert batch.table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert batch.table.schema.field("http_status_code").type == pa.int32()
    assert batch.quarantined == []
    assert batch.drift == Counter()
    assert column(batch, "event_id") == [r["id"] for r in records]
    assert column(batch, "event_time")[0] == datetime(2025, 6, 2, 8, 14, 58, 207000, tzinfo=UTC)
    assert column(batch, "http_status_code") == [200, 202, 403]
    assert column(batch, "metadata") == [None, None, [("reason", "insufficient permissions")]]
    assert column(batch, "cluster_name") == [None, "gpu-prod-east", "gpu-prod-east"]
    assert column(batch, "event_id_derived") == [False, False, False]
    assert column(batch, "ingest_run_id") == [RUN] * 3
    assert column(batch, "ingested_at") == [INGESTED] * 3


def test_empty_input_gives_an_empty_typed_table() -> None:
    batch = norm([])
    assert batch.table.num_rows == 0
    assert batch.table.schema.equals(AUDIT_EVENTS, check_metadata=True)


def test_optional_fields_absent_since_2_23_are_nulls() -> None:
    optional = ("source_ip", "http_method", "url", "entity_type", "entity_name", "entity_id")
    record = good(1, **{name: ... for name in optional}, http_status_code=..., metadata=None)
    row = norm([record]).table.to_pylist()[0]
    assert all(row[name] is None for name in optional)
    assert row["http_status_code"] is None and row["metadata"] is None


def test_ingested_at_must_be_aware_and_becomes_utc() -> None:
    with pytest.raises(ConfigError, match="ingested_at must be a timezone-aware datetime"):
        normalise_audit([good()], run_id=RUN, ingested_at=datetime(2025, 6, 3))
    east = datetime(2025, 6, 3, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    batch = normalise_audit([good()], run_id=RUN, ingested_at=east)
    assert column(batch, "ingested_at") == [INGESTED]


# -- quarantine ------------------------------------------------------------------------------------
BAD_RECORDS: list[tuple[str, Any, str]] = [
    ("list", [1, 2], "record is not an object (got list)"),
    ("null record", None, "record is not an object (got null)"),
    ("string record", "oops", "record is not an object (got str)"),
    ("no timestamp", good(timestamp=...), "field timestamp: missing"),
    ("null timestamp", good(timestamp=None), "field timestamp: null"),
    ("empty timestamp", good(timestamp=""), "field timestamp: empty string"),
    ("words", good(timestamp="yesterday"), "field timestamp: unparsable date-time 'yesterday'"),
    ("feb 30", good(timestamp="2025-02-30T08:00:00Z"), "field timestamp: unparsable date-time"),
    ("date only", good(timestamp="2025-06-02"), "field timestamp: unparsable date-time"),
    ("week date", good(timestamp="2025-W23-1"), "field timestamp: unparsable date-time"),
    ("hour 24", good(timestamp="2025-06-02T24:00:00Z"), "field timestamp: unparsable date-time"),
    ("offset 24h", good(timestamp="2025-06-02T08:00:00+24:00"), "zone offset out of range"),
    ("epoch number", good(timestamp=1748851200), "field timestamp: expected string, got int"),
    ("no tenant", good(tenant_id=...), "field tenant_id: missing"),
    ("null tenant", good(tenant_id=None), "field tenant_id: null"),
    ("empty tenant", good(tenant_id=""), "field tenant_id: empty string"),
    ("bool tenant", good(tenant_id=True), "field tenant_id: expected string, got bool"),
    ("float tenant", good(tenant_id=1001.5), "field tenant_id: expected string, got float"),
    ("object tenant", good(tenant_id={"id": 1}), "field tenant_id: expected string, got dict"),
    ("no subject", good(subject=...), "field subject: missing"),
    ("empty subject", good(subject=""), "field subject: empty string"),
    ("int subject", good(subject=42), "field subject: expected string, got int"),
    ("no subject_type", good(subject_type=...), "field subject_type: missing"),
    ("null action", good(action=None), "field action: null"),
    ("empty result", good(result=""), "field result: empty string"),
    ("list url", good(url=["/a"]), "field url: expected string, got list"),
    ("int cluster", good(cluster_id=7), "field cluster_id: expected string, got int"),
    ("surrogate", good(entity_name="bad \ud800 text"), "field entity_name: string is not valid Unicode"),
    ("str status", good(http_status_code="200"), "http_status_code: expected integer, got str"),
    ("bool status", good(http_status_code=True), "http_status_code: expected integer, got bool"),
    ("float status", good(http_status_code=200.5), "http_status_code: expected integer, got float"),
    ("status 99", good(http_status_code=99), "field http_status_code: 99 outside 100..599"),
    ("status 600", good(http_status_code=600), "field http_status_code: 600 outside 100..599"),
    ("status huge", good(http_status_code=2**70), f"field http_status_code: {2**70} outside 100..599"),
    ("list metadata", good(metadata=[["a", "b"]]), "field metadata: expected object, got list"),
    ("str metadata", good(metadata="a=b"), "field metadata: expected object, got str"),
    ("int id", good(id=12345), "field id: expected string, got int"),
]


@pytest.mark.parametrize(
    ("bad", "reason"), [(b, r) for _, b, r in BAD_RECORDS], ids=[n for n, _, _ in BAD_RECORDS]
)
def test_bad_record_is_quarantined_and_its_neighbours_kept(bad: Any, reason: str) -> None:
    records = [good(1), copy.deepcopy(bad), good(2)]
    batch = norm(records)
    assert column(batch, "event_id") == [good(1)["id"], good(2)["id"]]
    assert batch.table.schema.equals(AUDIT_EVENTS, check_metadata=True)
    assert len(batch.quarantined) == 1
    quarantined = batch.quarantined[0]
    assert quarantined.record_index == 1
    assert reason in quarantined.reason
    assert quarantined.reason.count(";") == 0, "one problem, one reason"
    try:
        orjson.dumps(bad)
    except orjson.JSONEncodeError:
        assert quarantined.raw == repr(bad)  # e.g. a lone surrogate or a 70-bit integer
    else:
        assert json.loads(quarantined.raw) == bad


def test_a_record_with_several_problems_lists_them_in_wire_order() -> None:
    batch = norm([good(result=..., subject=3, timestamp="nope", http_status_code="x")])
    assert batch.quarantined[0].reason == (
        "field timestamp: unparsable date-time 'nope' (not an ISO-8601 date-time); "
        "field subject: expected string, got int; field result: missing; "
        "field http_status_code: expected integer, got str"
    )


def test_unserialisable_raw_falls_back_to_repr() -> None:
    batch = norm([good(subject={1, 2})])
    assert batch.quarantined[0].reason == "field subject: expected string, got set"
    assert batch.quarantined[0].raw.startswith("{'id': ")


def test_quarantined_records_keep_page_order_and_indexes() -> None:
    records = [good(0), [1], good(2, subject=None), good(3), "x", good(5)]
    batch = norm(records)
    assert [q.record_index for q in batch.quarantined] == [1, 2, 4]
    assert column(batch, "event_id") == [good(i)["id"] for i in (0, 3, 5)]


# -- timestamps ------------------------------------------------------------------------------------
ACCEPTED_TIMESTAMPS = [
    ("2025-06-02T08:14:58.207Z", datetime(2025, 6, 2, 8, 14, 58, 207000, tzinfo=UTC), False),
    ("2025-06-02T08:14:58Z", datetime(2025, 6, 2, 8, 14, 58, tzinfo=UTC), False),
    ("2025-06-02T10:14:58.5+02:00", datetime(2025, 6, 2, 8, 14, 58, 500000, tzinfo=UTC), False),
    ("2025-06-02T02:44:58-05:30", datetime(2025, 6, 2, 8, 14, 58, tzinfo=UTC), False),
    ("2025-06-02T10:14:58+0200", datetime(2025, 6, 2, 8, 14, 58, tzinfo=UTC), False),
    ("2025-06-02T08:14:58.123456789Z", datetime(2025, 6, 2, 8, 14, 58, 123456, tzinfo=UTC), False),
    ("2025-06-02T08:14:58.1234567891234Z", datetime(2025, 6, 2, 8, 14, 58, 123456, tzinfo=UTC), False),
    ("2025-06-02t08:14:58z", datetime(2025, 6, 2, 8, 14, 58, tzinfo=UTC), False),
    ("2025-06-02 08:14:58.211", datetime(2025, 6, 2, 8, 14, 58, 211000, tzinfo=UTC), True),
    ("2025-06-02T08:14:58", datetime(2025, 6, 2, 8, 14, 58, tzinfo=UTC), True),
    ("2025-06-02T00:30:00+01:00", datetime(2025, 6, 1, 23, 30, tzinfo=UTC), False),
]


@pytest.mark.parametrize(("text", "expected", "zone_less"), ACCEPTED_TIMESTAMPS)
def test_accepted_timestamp_forms(text: str, expected: datetime, zone_less: bool) -> None:
    assert parse_timestamp(text) == (expected, zone_less)
    batch = norm([good(1, timestamp=text)])
    assert column(batch, "event_time") == [expected]
    assert batch.drift == (Counter({"timestamp:zone-less": 1}) if zone_less else Counter())


def test_one_odd_timestamp_does_not_change_the_others() -> None:
    texts = [t for t, _, _ in ACCEPTED_TIMESTAMPS]
    batch = norm([good(i, timestamp=t) for i, t in enumerate(texts)])
    assert column(batch, "event_time") == [e for _, e, _ in ACCEPTED_TIMESTAMPS]
    assert batch.drift["timestamp:zone-less"] == 2


@st.composite
def fast_shaped_timestamps(draw: st.DrawFn) -> str:
    """Strings of the common shape, including impossible dates, with or without an offset."""
    moment = draw(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(2999, 12, 31)))
    day = draw(st.one_of(st.just(moment.day), st.integers(28, 31)))
    digits = draw(st.integers(0, 6))
    fraction = "" if digits == 0 else "." + f"{moment.microsecond:06d}"[:digits]
    zone = draw(
        st.one_of(
            st.just("Z"),
            st.builds(
                lambda s, h, m: f"{s}{h:02d}:{m:02d}",
                st.sampled_from("+-"),
                st.integers(0, 23),
                st.integers(0, 59),
            ),
        )
    )
    return f"{moment:%Y-%m}-{day:02d}T{moment:%H:%M:%S}{fraction}{zone}"


@settings(max_examples=300, deadline=None)
@given(text=fast_shaped_timestamps())
def test_vectorised_and_python_timestamp_paths_agree(text: str) -> None:
    """One page of the common shape takes Arrow's cast; a zone-less neighbour forces the Python parser."""
    fast = norm([good(1, timestamp=text)])
    slow = norm([good(1, timestamp=text), good(2, timestamp="2025-06-02 08:00:00")])
    assert column(fast, "event_time") == column(slow, "event_time")[: fast.table.num_rows]
    assert [q.record_index for q in fast.quarantined] == [q.record_index for q in slow.quarantined]
    try:
        expected: list[datetime] = [parse_timestamp(text)[0]]
    except ValueError:
        expected = []
    assert column(fast, "event_time") == expected


# -- coercion, enums, drift ------------------------------------------------------------------------
def test_integer_tenant_id_is_coerced_to_string() -> None:
    batch = norm([good(1, tenant_id=1001), good(2), good(3, tenant_id=12345)])
    assert column(batch, "tenant_id") == ["1001", "1001", "12345"]
    assert batch.quarantined == [] and batch.drift == Counter()
    assert column(norm([good(1, tenant_id=7)]), "tenant_id") == ["7"]


def test_unknown_enum_values_are_stored_and_counted() -> None:
    records = [
        good(1, action="impersonate"),
        good(2, action="impersonate", subject_type="Service"),
        good(3, http_method=None, result="Pending"),
        good(4),
    ]
    batch = norm(records)
    assert column(batch, "action") == ["impersonate", "impersonate", "create", "create"]
    assert column(batch, "http_method") == ["POST", "POST", None, "POST"]
    assert batch.drift == Counter(
        {"enum:action=impersonate": 2, "enum:subject_type=Service": 1, "enum:result=Pending": 1}
    )


def test_huge_unknown_enum_value_is_clipped_in_the_drift_key() -> None:
    batch = norm([good(1, action="x" * 10_000)])
    assert column(batch, "action") == ["x" * 10_000]
    (key,) = batch.drift
    assert len(key) < 100


def test_unknown_fields_are_counted_for_stored_rows_only() -> None:
    records = [
        good(1, sso_provider="okta"),
        good(2, sso_provider="okta", subject=None),
        good(3, costCenter=1),
    ]
    batch = norm(records)
    assert batch.drift == Counter({"field:sso_provider": 1, "field:costCenter": 1})
    assert "sso_provider" not in batch.table.column_names


def test_metadata_values_that_are_not_strings_become_json_text() -> None:
    metadata = {"reason": "quota", "gpus": 2, "ok": True, "nested": {"a": [1, "é"]}, "none": None}
    batch = norm([good(1, metadata=metadata), good(2, metadata={}), good(3, metadata=None)])
    assert column(batch, "metadata") == [
        [
            ("reason", "quota"),
            ("gpus", "2"),
            ("ok", "true"),
            ("nested", '{"a":[1,"é"]}'),
            ("none", None),
        ],
        [],
        None,
    ]
    assert batch.drift == Counter({"metadata:non-string": 1})


# -- ids -------------------------------------------------------------------------------------------
def test_missing_id_is_derived_stably_and_flagged() -> None:
    record = good(1, id=...)
    reordered = dict(reversed(list(good(1, id=...).items())))
    first = norm([record, good(2)])
    second = norm([good(3), reordered])
    derived = column(first, "event_id")[0]
    assert derived.startswith("derived:") and len(derived) == len("derived:") + 32
    assert column(second, "event_id")[1] == derived
    assert column(first, "event_id_derived") == [True, False]
    assert column(norm([good(1, id=None)]), "event_id")[0].startswith("derived:")
    assert column(norm([good(4, id=...)]), "event_id")[0] != derived


def test_same_record_twice_gets_the_same_derived_id() -> None:
    batch = norm([good(1, id=...), good(1, id=...)])
    ids = column(batch, "event_id")
    assert ids[0] == ids[1]


def test_empty_string_id_is_derived_and_counted() -> None:
    batch = norm([good(1, id="")])
    assert column(batch, "event_id")[0].startswith("derived:")
    assert batch.drift == Counter({"id:empty": 1})


# -- Unicode and size ------------------------------------------------------------------------------
AWKWARD = {
    "subject": "nul\x00inside",
    "entity_name": "emoji 🚀👩🏽‍💻 and RTL שלום עליכם مرحبا",
    "url": "/api/v1/projects/\u202eevil\u202c",
    "metadata": {"k\x00ey": "v\x00al", "🔑": "значение"},
}


def _unicode_file(tmp_path: Path) -> tuple[Lake, str]:
    lake = Lake(str(tmp_path / "lake"))
    batch = norm([good(1, **AWKWARD)])
    rel = "audit_events/event_date=2025-06-02/part-a.parquet"
    write_table(lake, rel, batch.table)
    return lake, rel


def test_nul_emoji_and_rtl_round_trip_through_parquet(tmp_path: Path) -> None:
    lake, rel = _unicode_file(tmp_path)
    row = pq.read_table(lake.location(rel)).to_pylist()[0]
    for name in ("subject", "entity_name", "url"):
        assert row[name] == AWKWARD[name]
    assert dict(row["metadata"]) == AWKWARD["metadata"]


def test_nul_emoji_and_rtl_round_trip_through_duckdb(tmp_path: Path) -> None:
    lake, rel = _unicode_file(tmp_path)
    con = duckdb.connect()
    got = con.sql(
        "select subject, entity_name, url, length(subject), metadata['🔑'] from read_parquet(?)",
        params=[lake.location(rel)],
    ).fetchall()
    assert got == [
        (AWKWARD["subject"], AWKWARD["entity_name"], AWKWARD["url"], len(AWKWARD["subject"]), "значение")
    ]
    table = con.sql("select metadata from read_parquet(?)", params=[lake.location(rel)]).to_arrow_table()
    assert dict(table.column("metadata")[0].as_py()) == AWKWARD["metadata"]


def test_ten_megabyte_metadata_is_stored(tmp_path: Path) -> None:
    big = "x" * (10 * 1024 * 1024)
    batch = norm([good(1, metadata={"blob": big, "n": 1}), good(2)])
    assert batch.table.num_rows == 2
    lake = Lake(str(tmp_path / "lake"))
    written = write_table(lake, "big/part.parquet", batch.table)
    assert written.rows == 2
    stored = pq.read_table(lake.location("big/part.parquet")).column("metadata")[0].as_py()
    assert dict(stored) == {"blob": big, "n": "1"}
