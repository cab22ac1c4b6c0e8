"""Views read a table's files by the first footer when every file has the table's columns.

DuckDB either binds a file list from its first file or, with ``union_by_name``, reads every
file's footer first: 45 ms per query on a year of daily files locally, a request per file on S3.
The ledger stamps the tables it creates as uniform; tables from an older release are read by name
until maintenance has checked their files (bench/long_life.py measures both).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from runai_extract.ledger.maintenance import maintain
from transforms.catalog import INGEST_RUNS_TABLE, QUARANTINE_TABLE
from transforms.storage import Lake
from transforms.tables import TABLE_PROPERTIES, Tables
from warehouse.build import build_views, plan_build


def _run_row(run_id: str) -> pa.Table:
    """One run record: the required columns filled with neutral values, the rest null."""
    when = datetime(2026, 12, 1, tzinfo=UTC)
    neutral = {pa.types.is_string: "x", pa.types.is_integer: 0, pa.types.is_boolean: False}
    row: dict[str, object] = {}
    for field in INGEST_RUNS_TABLE.schema:
        if not field.nullable:
            kind = field.type
            row[field.name] = next((v for test, v in neutral.items() if test(kind)), when)
            if pa.types.is_floating(kind):
                row[field.name] = 0.0
    return pa.Table.from_pylist([{**row, "run_id": run_id}], schema=INGEST_RUNS_TABLE.schema)


def _reads_by_name(lake: Lake) -> bool:
    statement = plan_build(lake).source_statements()["src_ingest_runs"]
    assert ("union_by_name = true" in statement) != ("union_by_name = false" in statement), statement
    return "union_by_name = true" in statement


def test_a_table_the_ledger_creates_is_read_without_reconciling_every_footer(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    tables = Tables(lake)
    tables.append(INGEST_RUNS_TABLE, _run_row("r1"))
    tables.append(INGEST_RUNS_TABLE, _run_row("r2"))
    assert tables.uniform(QUARANTINE_TABLE, tables.ensure(QUARANTINE_TABLE))
    assert not _reads_by_name(lake)
    build_views(tmp_path / "warehouse.duckdb", lake)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    assert con.sql("select run_id from src_ingest_runs order by 1").fetchall() == [("r1",), ("r2",)]


def test_a_table_from_an_older_release_is_read_by_name_until_maintenance_checks_its_files(
    tmp_path: Path,
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    tables = Tables(lake)
    DeltaTable.create(tables.uri(INGEST_RUNS_TABLE), schema=INGEST_RUNS_TABLE.schema)  # no stamp, as before
    tables.append(INGEST_RUNS_TABLE, _run_row("r1"))
    assert _reads_by_name(lake)

    report = maintain(lake, now=datetime(2026, 12, 4, tzinfo=UTC))
    assert report.to_dict()["tables"]["_ops/ingest_runs"]["uniform"] is True
    # and its log gets a checkpoint every 10 commits, like a table this release creates
    assert DeltaTable(tables.uri(INGEST_RUNS_TABLE)).metadata().configuration == TABLE_PROPERTIES
    assert not _reads_by_name(lake)
    build_views(tmp_path / "warehouse.duckdb", lake)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    assert con.sql("select run_id from src_ingest_runs").fetchall() == [("r1",)]
