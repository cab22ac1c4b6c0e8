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

from runai_extract.core.errors import ConfigError, StorageError
from transforms.audit import QuarantinedRecord, normalise_audit
from transforms.schemas import AUDIT_EVENTS, INGEST_RUNS, QUARANTINE
from transforms.storage import Lake
from transforms.writer import (
    WRITER_OPTIONS,
    ParquetStreamWriter,
    WrittenFile,
    audit_file_path,
    ingest_run_path,
    ingest_run_table,
    quarantine_file_path,
    quarantine_table,
    read_event_ids,
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
def test_audit_file_path_is_deterministic_and_hive_partitioned() -> None:
    path = audit_file_path(DAY + timedelta(hours=6), DAY + timedelta(hours=7, microseconds=5))
    assert path == (
        "audit_events/event_date=2025-06-02/part-20250602T060000000000Z-20250602T070000000005Z.parquet"
    )
    assert audit_file_path(DAY + timedelta(hours=6), DAY + timedelta(hours=7, microseconds=5)) == path


def test_audit_file_path_uses_the_utc_date_of_an_offset_start() -> None:
    tokyo = timezone(timedelta(hours=9))
    start = datetime(2025, 6, 3, 2, 0, tzinfo=tokyo)  # 2025-06-02T17:00Z
    path = audit_file_path(start, start + timedelta(hours=1))
    assert path.startswith("audit_events/event_date=2025-06-02/part-20250602T170000000000Z-")


def test_audit_file_path_allows_ending_exactly_at_midnight_but_not_later() -> None:
    assert audit_file_path(DAY, DAY + timedelta(days=1)).endswith("-20250603T000000000000Z.parquet")
    with pytest.raises(ValueError, match="crosses midnight"):
        audit_file_path(DAY + timedelta(hours=23), DAY + timedelta(days=1, microseconds=1))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2025, 6, 2), DAY + timedelta(hours=1), "timezone-aware"),
        (DAY, datetime(2025, 6, 2, 1), "timezone-aware"),
        (DAY + timedelta(hours=1), DAY + timedelta(hours=1), "empty window"),
        (DAY + timedelta(hours=2), DAY + timedelta(hours=1), "empty window"),
    ],
)
def test_bad_windows_are_refused(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit_file_path(start, end)


def test_quarantine_and_ingest_run_paths() -> None:
    end = DAY + timedelta(hours=1)
    assert quarantine_file_path("audit", RUN, DAY, end, 3) == (
        "quarantine/stream=audit/part-20250602T000000000000Z-20250602T010000000000Z-"
        "20251127T000000Z-ab12cd34-00003.parquet"
    )
    assert ingest_run_path("audit", RUN, DAY, end) == (
        "_ops/ingest_runs/stream=audit/part-20250602T000000000000Z-20250602T010000000000Z-"
        "20251127T000000Z-ab12cd34.parquet"
    )
    airflow_run = "scheduled__2025-06-02T00:00:00+00:00"
    assert airflow_run in ingest_run_path("audit", airflow_run, DAY, end)


@pytest.mark.parametrize("bad", ["", "a/b", "..", ".hidden", "x\x00", "a b", "x" * 300])
def test_path_segments_are_validated(bad: str) -> None:
    end = DAY + timedelta(hours=1)
    with pytest.raises(ValueError, match="not usable in a file name"):
        quarantine_file_path("audit", bad, DAY, end, 0)
    with pytest.raises(ValueError, match="not usable in a file name"):
        ingest_run_path(bad, RUN, DAY, end)


# -- the stream writer -----------------------------------------------------------------------------
def test_stream_writer_appends_row_groups_and_publishes_atomically(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    rel = audit_file_path(DAY, DAY + timedelta(hours=1))
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
    rel = audit_file_path(DAY, DAY + timedelta(hours=1))
    write_table(lake, rel, events(0, 5))
    write_table(lake, rel, events(0, 7))
    assert pq.read_metadata(lake.location(rel)).num_rows == 7
    assert every_file(lake) == [rel]


def test_exception_inside_the_block_leaves_no_file_and_no_temporary(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    rel = audit_file_path(DAY, DAY + timedelta(hours=1))
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
    rel = audit_file_path(DAY, DAY + timedelta(hours=1))
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
    write_table(lake, audit_file_path(DAY, DAY + timedelta(hours=1)), events(0, 3))
    write_table(lake, audit_file_path(DAY + timedelta(days=1), DAY + timedelta(days=2)), events(3, 2))
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
def test_read_event_ids_of_some_files(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    write_table(lake, "audit_events/event_date=2025-06-02/a.parquet", events(0, 3))
    write_table(lake, "audit_events/event_date=2025-06-02/b.parquet", events(2, 3))
    write_table(lake, "audit_events/event_date=2025-06-02/c.parquet", events(100, 1))
    ids = read_event_ids(
        lake, ["audit_events/event_date=2025-06-02/a.parquet", "audit_events/event_date=2025-06-02/b.parquet"]
    )
    assert ids == {f"id-{i:06d}" for i in range(5)}
    assert read_event_ids(lake, []) == set()


def test_read_event_ids_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    lake = lake_at(tmp_path)
    with pytest.raises(StorageError, match="cannot read event ids"):
        read_event_ids(lake, ["audit_events/event_date=2025-06-02/gone.parquet"])
    lake.write_bytes("audit_events/event_date=2025-06-02/broken.parquet", b"not parquet at all")
    with pytest.raises(StorageError, match="cannot read event ids"):
        read_event_ids(lake, ["audit_events/event_date=2025-06-02/broken.parquet"])


def test_read_event_ids_reads_every_file_of_a_day_partition(tmp_path: Path) -> None:
    """Many small files of one day (a day cut into slices); its speed is measured in bench/dedupe_read.py."""
    lake = lake_at(tmp_path)
    for k in range(100):
        start = DAY + timedelta(minutes=14 * k)
        write_table(lake, audit_file_path(start, start + timedelta(minutes=14)), events(k * 10, 10))
    files = lake.list_files("audit_events/event_date=2025-06-02")
    assert len(files) == 100
    assert set(read_event_ids(lake, files)) == {f"id-{i:06d}" for i in range(1000)}


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
    rel = quarantine_file_path("audit", RUN, DAY, DAY + timedelta(hours=1), 0)
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
