"""The Parquet writer: deterministic paths, atomic files, stable bytes, id reads, run tables."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runai_extract.core.errors import ConfigError
from transforms.audit import QuarantinedRecord, normalise_audit
from transforms.schemas import AUDIT_EVENTS, INGEST_RUNS, QUARANTINE
from transforms.storage import Lake
from transforms.writer import (
    WRITER_OPTIONS,
    ParquetStreamWriter,
    WrittenFile,
    ingest_run_table,
    quarantine_table,
    write_table,
)

DAY = datetime(2025, 6, 2, tzinfo=UTC)
RUN = "20251127T000000Z-ab12cd34"


def lake_at(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def events(start: int, n: int) -> pa.Table:
    """n typed audit rows with ids start..start+n-1."""
    records = [
        {
            "id": f"id-{i:06d}",
            "timestamp": (DAY + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "tenant_id": "1001",
            "subject": f"user{i % 7}@example.com",
            "subject_type": "User",
            "action": "create",
            "result": "Succeeded",
            "http_status_code": 201,
        }
        for i in range(start, start + n)
    ]
    batch = normalise_audit(records, run_id=RUN, ingested_at=DAY + timedelta(days=1))
    assert not batch.quarantined
    return batch.table


def read_back(lake: Lake, rel: str) -> pa.Table:
    """pyarrow 26 names a map's entries struct after its column when reading Parquet ('metadata'
    instead of 'entries'); data and all other types round-trip, so a cast restores the schema."""
    table = pq.read_table(lake.location(rel))
    assert table.schema.names == AUDIT_EVENTS.names
    assert table.schema.metadata == AUDIT_EVENTS.metadata
    return table.cast(AUDIT_EVENTS)


def every_file(lake: Lake) -> list[str]:
    return sorted(str(p.relative_to(lake.root)) for p in Path(lake.root).rglob("*") if p.is_file())


# -- paths -----------------------------------------------------------------------------------------
def test_stream_writer_appends_row_groups_and_publishes_atomically(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    rel = "audit_events/event_date=2025-06-02/part-a.parquet"
    with ParquetStreamWriter(lake, rel, AUDIT_EVENTS) as writer:
        writer.write(events(0, 5))
        writer.write(events(5, 0))  # empty: skipped
        writer.write(events(5, 3))
        assert not lake.exists(rel), "nothing is visible before the block ends"
    assert writer.produced and writer.rows == 8
    assert writer.written == WrittenFile(rel, 8, lake.file_size(rel))
    meta = pq.ParquetFile(lake.location(rel)).metadata
    assert meta.num_row_groups == 2 and meta.num_rows == 8
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert meta.row_group(0).column(0).statistics.has_min_max
    assert meta.created_by.startswith("parquet-cpp-arrow version ")
    table = read_back(lake, rel)
    assert table.schema.equals(AUDIT_EVENTS, check_metadata=True)
    assert table.column("event_id").to_pylist() == [f"id-{i:06d}" for i in range(8)]
    assert every_file(lake) == [rel]


def test_same_rows_give_the_same_bytes(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    table = events(0, 50)
    first = write_table(lake, "a/one.parquet", table)
    second = write_table(lake, "b/two.parquet", table)
    assert first.bytes == second.bytes
    assert lake.read_bytes("a/one.parquet") == lake.read_bytes("b/two.parquet")


def test_rerun_overwrites_its_own_file(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    rel = "audit_events/event_date=2025-06-02/part-a.parquet"
    write_table(lake, rel, events(0, 5))
    write_table(lake, rel, events(0, 7))
    assert pq.read_metadata(lake.location(rel)).num_rows == 7
    assert every_file(lake) == [rel]


def test_exception_inside_the_block_leaves_no_file_and_no_temporary(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    rel = "audit_events/event_date=2025-06-02/part-a.parquet"
    with (
        pytest.raises(RuntimeError, match="page 3 failed"),
        ParquetStreamWriter(lake, rel, AUDIT_EVENTS) as writer,
    ):
        writer.write(events(0, 5))
        raise RuntimeError("page 3 failed")
    assert not writer.produced and writer.written is None
    assert every_file(lake) == []


def test_exception_leaves_an_earlier_file_untouched(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    rel = "audit_events/event_date=2025-06-02/part-a.parquet"
    write_table(lake, rel, events(0, 4))
    before = lake.read_bytes(rel)
    with pytest.raises(KeyboardInterrupt), ParquetStreamWriter(lake, rel, AUDIT_EVENTS) as writer:
        writer.write(events(0, 9))
        raise KeyboardInterrupt
    assert lake.read_bytes(rel) == before
    assert every_file(lake) == [rel]


def test_empty_writer_produces_nothing_unless_asked(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    with ParquetStreamWriter(lake, "x/empty.parquet", AUDIT_EVENTS) as writer:
        writer.write(events(0, 0))
    assert not writer.produced and writer.rows == 0 and writer.written is None
    assert every_file(lake) == []
    with ParquetStreamWriter(lake, "x/empty.parquet", AUDIT_EVENTS, allow_empty=True) as writer:
        pass
    assert writer.written == WrittenFile("x/empty.parquet", 0, lake.file_size("x/empty.parquet"))
    table = read_back(lake, "x/empty.parquet")
    assert table.num_rows == 0 and table.schema.equals(AUDIT_EVENTS, check_metadata=True)


def test_a_table_with_another_schema_is_refused(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    table = events(0, 2)
    wrong = table.set_column(13, "http_status_code", table.column("http_status_code").cast(pa.int64()))
    with (
        pytest.raises(ValueError, match="schema does not match"),
        ParquetStreamWriter(lake, "x/y.parquet", AUDIT_EVENTS) as w,
    ):
        w.write(wrong)
    assert every_file(lake) == []


def test_unsafe_paths_are_refused_before_any_write(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    with pytest.raises(ConfigError):
        ParquetStreamWriter(lake, "../escape.parquet", AUDIT_EVENTS)


def test_writer_options_are_pinned() -> None:
    assert WRITER_OPTIONS["compression"] == "zstd" and WRITER_OPTIONS["write_statistics"] is True


def test_written_files_read_as_a_hive_partition_in_duckdb(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    write_table(lake, "audit_events/event_date=2025-06-02/part-a.parquet", events(0, 3))
    write_table(lake, "audit_events/event_date=2025-06-03/part-b.parquet", events(3, 2))
    glob = lake.location("audit_events") + "/*/*.parquet"
    rows = (
        duckdb.connect()
        .sql(
            "select cast(event_date as varchar), count(*), min(http_status_code) from read_parquet(?, "
            "hive_partitioning = true) group by all order by 1",
            params=[glob],
        )
        .fetchall()
    )
    assert rows == [("2025-06-02", 3, 201), ("2025-06-03", 2, 201)]


# -- reading ids -----------------------------------------------------------------------------------
# -- quarantine and run tables ---------------------------------------------------------------------
def test_quarantine_table_round_trips(tmp_path: Path) -> None:
    records = [
        QuarantinedRecord(4, "field subject: missing", '{"id":"x"}'),
        QuarantinedRecord(9, "record is not an object (got list)", "[1]"),
    ]
    at = datetime(2025, 6, 3, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    table = quarantine_table(
        records,
        stream="audit",
        run_id=RUN,
        window_start=DAY,
        window_end=DAY + timedelta(hours=1),
        page_offset=2000,
        quarantined_at=at,
    )
    assert table.schema.equals(QUARANTINE, check_metadata=True)
    assert table.to_pylist()[1] == {
        "stream": "audit",
        "run_id": RUN,
        "window_start": DAY,
        "window_end": DAY + timedelta(hours=1),
        "page_offset": 2000,
        "record_index": 9,
        "reason": "record is not an object (got list)",
        "raw": "[1]",
        "quarantined_at": datetime(2025, 6, 3, 0, 0, tzinfo=UTC),
    }
    lake = lake_at(tmp_path)
    rel = "quarantine/part-a.parquet"
    written = write_table(lake, rel, table)
    assert written.rows == 2
    assert pq.read_table(lake.location(rel)).equals(table)


def test_quarantine_table_from_the_normaliser() -> None:
    batch = normalise_audit([{"id": "a"}, [1]], run_id=RUN, ingested_at=DAY)
    table = quarantine_table(
        batch.quarantined,
        stream="audit",
        run_id=RUN,
        window_start=DAY,
        window_end=DAY + timedelta(hours=1),
        page_offset=None,
        quarantined_at=DAY,
    )
    assert table.column("record_index").to_pylist() == [0, 1]
    assert table.column("page_offset").null_count == 2


def run_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": RUN,
        "stream": "audit",
        "mode": "sync",
        "window_start": DAY,
        "window_end": DAY + timedelta(hours=1),
        "status": "succeeded",
        "pages": 3,
        "requests": 4,
        "rows_received": 2500,
        "rows_written": 2497,
        "rows_new": 2497,
        "duplicates_dropped": 1,
        "out_of_window": 1,
        "quarantined": 1,
        "retries": 1,
        "throttled_429": 1,
        "token_refreshes": 0,
        "api_total": 2500,
        "total_mismatch": False,
        "repaged": False,
        "drift_fields": Counter({"field:new": 2, "enum:action=impersonate": 1}),
        "files": ["audit_events/event_date=2025-06-02/part-x.parquet"],
        "error": None,
        "started_at": DAY + timedelta(hours=2),
        "finished_at": DAY + timedelta(hours=2, seconds=3),
        "duration_s": 3.0,
        "schema_version": 1,
        "code_version": "0.1.0",
    }
    row.update(changes)
    return row


def test_ingest_run_table_is_typed_and_deterministic() -> None:
    table = ingest_run_table([run_row(), run_row(api_total=None, drift_fields={}, files=[], error="boom")])
    assert table.schema.equals(INGEST_RUNS, check_metadata=True)
    first, second = table.to_pylist()
    assert first["drift_fields"] == [("enum:action=impersonate", 1), ("field:new", 2)]
    assert second["api_total"] is None and second["error"] == "boom" and second["files"] == []
    assert ingest_run_table([]).num_rows == 0


def test_ingest_run_table_names_a_missing_required_key() -> None:
    row = run_row()
    del row["rows_written"]
    with pytest.raises(ValueError, match=r"missing required key.*rows_written"):
        ingest_run_table([row])


def test_ingest_run_table_rejects_unknown_keys_nulls_and_naive_times() -> None:
    with pytest.raises(ValueError, match=r"unknown key.*rows_writen"):
        ingest_run_table([run_row(rows_writen=1)])
    with pytest.raises(ValueError, match="status must not be null"):
        ingest_run_table([run_row(status=None)])
    with pytest.raises(ValueError, match="started_at must be a timezone-aware"):
        ingest_run_table([run_row(started_at=datetime(2025, 6, 2, 2))])
    with pytest.raises(ValueError, match=r"ingest_runs\.pages"):
        ingest_run_table([run_row(pages="three")])
    optional_missing = run_row()
    del optional_missing["api_total"]
    assert ingest_run_table([optional_missing]).column("api_total").to_pylist() == [None]


def test_small_writes_can_be_gathered_into_larger_row_groups(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    with ParquetStreamWriter(lake, "x/g.parquet", AUDIT_EVENTS, row_group_rows=10) as writer:
        for k in range(5):
            writer.write(events(4 * k, 4))
    meta = pq.read_metadata(lake.location("x/g.parquet"))
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [12, 8]
    assert writer.rows == 20
    ids = read_back(lake, "x/g.parquet").column("event_id").to_pylist()
    assert ids == [f"id-{i:06d}" for i in range(20)]


def test_an_exception_discards_gathered_rows_too(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    with (
        pytest.raises(RuntimeError),
        ParquetStreamWriter(lake, "x/g.parquet", AUDIT_EVENTS, row_group_rows=100) as w,
    ):
        w.write(events(0, 4))
        raise RuntimeError
    assert every_file(lake) == []
