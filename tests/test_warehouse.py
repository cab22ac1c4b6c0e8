"""The DuckDB warehouse: SQL files, view builds, the compliance and ops views, queries and output.

Fixtures are real Parquet/JSON files written with the project's schemas into a tmp lake, so the
views are tested against the same layout the pipeline produces (hive partitions, one file per
window, a duplicate event id across two files, a quote and non-ASCII text in names).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runai_extract.errors import ConfigError, StorageError
from transforms.schemas import AUDIT_EVENTS, INGEST_RUNS, QUARANTINE
from transforms.storage import Lake
from warehouse.build import (
    SOURCES,
    SQL_DIR,
    build_views,
    duckdb_type,
    empty_relation_sql,
    ensure_views,
    load_models,
    render_template,
    sql_string_literal,
    stored_hash,
)
from warehouse.query import list_views, render, run_query

DAY1 = datetime(2025, 6, 1, tzinfo=UTC)
DAY2 = datetime(2025, 6, 2, tzinfo=UTC)
QUOTED_NAME = "O'Brien's \"quoted\" project"
UNICODE_NAME = "Team Ünïcode ☃"
MARKUP_NAME = "Zoë [bold]x[/bold]"

CORE_COLUMNS = [
    ("event_id", "VARCHAR"),
    ("event_time", "TIMESTAMP WITH TIME ZONE"),
    ("event_date", "DATE"),
    ("tenant_id", "VARCHAR"),
    ("subject", "VARCHAR"),
    ("subject_type", "VARCHAR"),
    ("source_ip", "VARCHAR"),
    ("action", "VARCHAR"),
    ("http_method", "VARCHAR"),
    ("url", "VARCHAR"),
    ("entity_type", "VARCHAR"),
    ("entity_name", "VARCHAR"),
    ("entity_id", "VARCHAR"),
    ("result", "VARCHAR"),
    ("http_status_code", "INTEGER"),
    ("cluster_id", "VARCHAR"),
    ("cluster_name", "VARCHAR"),
    ("request_id", "VARCHAR"),
    ("metadata", "MAP(VARCHAR, VARCHAR)"),
    ("event_id_derived", "BOOLEAN"),
    ("ingest_run_id", "VARCHAR"),
    ("ingested_at", "TIMESTAMP WITH TIME ZONE"),
]


# -- fixture data ----------------------------------------------------------------------------------
def audit(
    event_id: str,
    at: datetime,
    action: str,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    entity_name: str | None = None,
    result: str | None = "Succeeded",
    status: int | None = 200,
    subject: str = "alice@example.com",
    metadata: dict[str, str] | None = None,
    run: str = "run-1",
    ingested_at: datetime = DAY1 + timedelta(hours=12),
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": at,
        "tenant_id": "12345",
        "subject": subject,
        "subject_type": "User",
        "source_ip": "10.0.0.1",
        "action": action,
        "http_method": "POST",
        "url": "/api/v1/something",
        "entity_type": entity_type,
        "entity_name": entity_name,
        "entity_id": entity_id,
        "result": result,
        "http_status_code": status,
        "cluster_id": None,
        "cluster_name": "gpu-cluster",
        "request_id": f"req-{event_id}",
        "metadata": list(metadata.items()) if metadata is not None else None,
        "event_id_derived": False,
        "ingest_run_id": run,
        "ingested_at": ingested_at,
    }


def h(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day + timedelta(hours=hour, minutes=minute)


DAY1_FILE_A = [
    audit("evt-01", h(DAY1, 8), "sign-in"),
    audit("evt-02", h(DAY1, 8, 5), "sign-in", result="Failed", status=401, subject="mallory"),
    audit("evt-03", h(DAY1, 8, 10), "create", entity_type="project", entity_id="5", entity_name=UNICODE_NAME),
    audit(
        "evt-04",
        h(DAY1, 8, 20),
        "update",
        entity_type="project",
        entity_id="5",
        entity_name=QUOTED_NAME,
        metadata={"field": "quota", "note": "it's"},
    ),
    audit("evt-15", h(DAY1, 8, 20), "update", entity_type="Projects", entity_id="5", entity_name="p5"),
    audit("evt-05", h(DAY1, 9), "create", entity_type="AccessRule", entity_id="ar-1"),
    audit("evt-06", h(DAY1, 9, 5), "delete", entity_type="access-rule", entity_id="ar-1"),
    audit("evt-07", h(DAY1, 9, 10), "update", entity_type="Department", entity_id="5"),
    audit(
        "evt-08",
        h(DAY1, 9, 15),
        "create",
        entity_type="service-account",
        entity_id="app-1",
        result="Failed",
        status=403,
    ),
    audit("evt-09", h(DAY1, 9, 20), "update", entity_type="nodepool", entity_id="np-1"),
    audit("evt-16", h(DAY1, 9, 30), "update", entity_type="workload", entity_id="wl-1", status=None),
    audit("evt-17", h(DAY1, 9, 40), "create", entity_type="project", entity_id=None, entity_name="no id"),
]
# The same event stored again by a later run in another file: the first ingested copy must win.
DAY1_FILE_B = [
    audit(
        "evt-04",
        h(DAY1, 8, 20),
        "update",
        entity_type="project",
        entity_id="5",
        entity_name="duplicate copy",
        run="run-2",
        ingested_at=DAY2 + timedelta(hours=6),
    ),
]
DAY2_FILE = [
    audit("evt-10", h(DAY2, 0, 30), "sign-out", run="run-2"),
    audit(
        "evt-11",
        h(DAY2, 0, 40),
        "update",
        entity_type="Settings",
        entity_id="tenant",
        status=500,
        run="run-2",
    ),
    audit("evt-12", h(DAY2, 0, 50), "reset-password", subject="bob", run="run-2"),
    audit(
        "evt-13",
        h(DAY2, 1),
        "update",
        entity_type="Roles",
        entity_id="role-7",
        metadata={"k": "v"},
        run="run-2",
    ),
    audit(
        "evt-14",
        h(DAY2, 1, 10),
        "create",
        entity_type="users",
        entity_id="u-9",
        entity_name=MARKUP_NAME,
        run="run-2",
    ),
    audit("evt-18", h(DAY2, 1, 20), "SIGN_IN", subject="eve", result=None, status=None, run="run-2"),
]
DISTINCT_EVENTS = 18


def run_record(
    run_id: str, start: datetime, end: datetime, status: str, *, started: datetime, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "stream": "audit",
        "mode": "sync",
        "window_start": start,
        "window_end": end,
        "status": status,
        "pages": 1,
        "requests": 2,
        "rows_received": 4,
        "rows_written": 4,
        "rows_new": 4,
        "duplicates_dropped": 0,
        "out_of_window": 0,
        "quarantined": 0,
        "retries": 0,
        "throttled_429": 0,
        "token_refreshes": 1,
        "api_total": 4,
        "total_mismatch": status == "mismatch",
        "repaged": False,
        "drift_fields": [("newField", 3)],
        "files": ["audit_events/event_date=2025-06-01/x.parquet"],
        "error": None,
        "started_at": started,
        "finished_at": started + timedelta(seconds=3),
        "duration_s": 3.0,
        "schema_version": 1,
        "code_version": "0.1.0",
    }
    row.update(extra)
    return row


RUNS = [
    run_record(
        "run-1", DAY1, h(DAY1, 12), "committed", started=h(DAY1, 12), rows_written=12, throttled_429=2
    ),
    run_record("run-2", h(DAY1, 18), DAY2, "mismatch", started=h(DAY2, 6), api_total=5, quarantined=2),
    run_record("run-2", DAY2, h(DAY2, 6), "failed", started=h(DAY2, 6, 1), error="boom", files=[]),
    run_record("run-3", DAY2, h(DAY2, 6), "committed", started=h(DAY2, 7)),
]

QUARANTINED = [
    {
        "stream": "audit",
        "run_id": "run-2",
        "window_start": h(DAY1, 18),
        "window_end": DAY2,
        "page_offset": 0,
        "record_index": 3,
        "reason": "timestamp is not ISO-8601",
        "raw": '{"id": "bad-1", "timestamp": "nope"}',
        "quarantined_at": h(DAY2, 6),
    },
    {
        "stream": "audit",
        "run_id": "run-2",
        "window_start": h(DAY1, 18),
        "window_end": DAY2,
        "page_offset": 1000,
        "record_index": 0,
        "reason": "not a JSON object",
        "raw": "not json {",
        "quarantined_at": h(DAY2, 6),
    },
]


def write_parquet(lake: Lake, rel: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    path = Path(lake.full_path(rel))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_state(lake: Lake, stream: str, watermark: str, run_id: str) -> None:
    doc = {
        "stream": stream,
        "watermark": watermark,
        "updated_at": "2025-06-02T07:00:03.000000Z",
        "run_id": run_id,
    }
    path = Path(lake.full_path(f"_state/{stream}.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def write_audit_day1(lake: Lake) -> None:
    write_parquet(lake, "audit_events/event_date=2025-06-01/a.parquet", DAY1_FILE_A, AUDIT_EVENTS)


def populate(lake: Lake) -> None:
    write_audit_day1(lake)
    write_parquet(lake, "audit_events/event_date=2025-06-01/b.parquet", DAY1_FILE_B, AUDIT_EVENTS)
    write_parquet(lake, "audit_events/event_date=2025-06-02/c.parquet", DAY2_FILE, AUDIT_EVENTS)
    for i, run in enumerate(RUNS):
        write_parquet(lake, f"_ops/ingest_runs/stream=audit/run-{i}.parquet", [run], INGEST_RUNS)
    write_parquet(lake, "quarantine/stream=audit/run-2.parquet", QUARANTINED, QUARANTINE)
    write_state(lake, "audit", "2025-06-02T06:00:00.000000Z", "run-3")
    write_state(lake, "workloads", "2025-06-01T00:00:00.000000Z", "run-w")


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A warehouse over the full fixture lake; a quote and a snowman in the lake path on purpose."""
    root = tmp_path_factory.mktemp("populated")
    lake = Lake(str(root / 'it\'s a "lake" ☃'))
    populate(lake)
    warehouse = root / "warehouse.duckdb"
    build_views(warehouse, lake)
    yield warehouse


def rows(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return run_query(warehouse, sql, params).to_pylist()


def all_column_types(warehouse: Path) -> dict[str, list[tuple[str, str]]]:
    """Every view's (column, type) list, read in one go: binding all views costs a file scan."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        found: dict[str, list[tuple[str, str]]] = {}
        listing = con.sql(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE NOT internal ORDER BY table_name, column_index"
        ).fetchall()
        for table, name, dtype in listing:
            found.setdefault(str(table), []).append((str(name), str(dtype)))
        return found
    finally:
        con.close()


def column_types(warehouse: Path, view: str) -> list[tuple[str, str]]:
    return all_column_types(warehouse)[view]


def view_names(warehouse: Path) -> set[str]:
    return {
        str(r["view_name"])
        for r in rows(warehouse, "SELECT view_name FROM duckdb_views() WHERE NOT internal")
    }


# -- the SQL files ---------------------------------------------------------------------------------
def test_every_sql_file_holds_exactly_one_create_named_like_the_file() -> None:
    con = duckdb.connect()
    files = sorted(SQL_DIR.glob("*/*.sql"))
    assert len(files) >= 15
    dummies = {source.placeholder: "/tmp/x/**/*.parquet" for source in SOURCES}
    macros = set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.lstrip().startswith("--"), f"{path.name} needs a header comment saying why"
        statements = con.extract_statements(render_template(text, dummies))
        assert len(statements) == 1, path
        assert statements[0].type == duckdb.StatementType.CREATE, path
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).lower()
        assert (
            f"create or replace view {path.stem} as" in body
            or f"create or replace macro {path.stem}(" in body
        )
        if "create or replace macro" in body:
            macros.add(path.stem)
        if "{{" in text:
            assert path.parent.name == "10_sources", f"only source views may hold a placeholder: {path}"
    assert macros == {"entity_kind", "entity_history"}
    assert [m.name for m in load_models()][:4] == [s.view for s in SOURCES]


def test_layers_are_numbered_and_applied_in_order() -> None:
    layers = [m.layer for m in load_models()]
    assert layers == sorted(layers)
    assert layers[0] == "10_sources"
    assert all(layer[:2].isdigit() and layer[2] == "_" for layer in layers)


def test_sql_string_literal_doubles_quotes_and_rejects_nul() -> None:
    assert sql_string_literal("/data/it's") == "'/data/it''s'"
    assert sql_string_literal("a\\b") == "'a\\b'"  # DuckDB string literals do not treat \ specially
    tricky = "x''y' \\ ☃"
    assert duckdb.connect().execute("SELECT " + sql_string_literal(tricky)).fetchall() == [(tricky,)]
    with pytest.raises(ConfigError, match="NUL"):
        sql_string_literal("a\x00b")


def test_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown placeholder"):
        render_template("select * from read_parquet({{ nope }})", {"other": "x"})


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (pa.string(), "VARCHAR"),
        (pa.int32(), "INTEGER"),
        (pa.int64(), "BIGINT"),
        (pa.bool_(), "BOOLEAN"),
        (pa.float64(), "DOUBLE"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
        (pa.date32(), "DATE"),
        (pa.map_(pa.string(), pa.string()), "MAP(VARCHAR, VARCHAR)"),
        (pa.list_(pa.string()), "VARCHAR[]"),
        (pa.map_(pa.string(), pa.int64()), "MAP(VARCHAR, BIGINT)"),
    ],
)
def test_duckdb_type_mapping(dtype: pa.DataType, expected: str) -> None:
    assert duckdb_type(dtype) == expected


def test_unmapped_type_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no DuckDB type"):
        duckdb_type(pa.binary())


def test_empty_relation_quotes_identifiers_and_has_no_rows() -> None:
    sql = empty_relation_sql(SOURCES[0])
    con = duckdb.connect()
    con.execute(sql)
    assert con.sql('SELECT count(*) FROM "src_audit_events"').fetchall() == [(0,)]
    assert '"event_id"' in sql and "WHERE false" in sql


# -- building ---------------------------------------------------------------------------------------
def test_build_on_an_empty_lake_creates_every_view_with_zero_rows(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    report = build_views(warehouse, Lake(str(tmp_path / "lake")))

    assert report.rebuilt
    assert set(report.empty_sources) == {s.view for s in SOURCES}
    models = load_models()
    views = {m.name for m in models if m.kind == "view"}
    assert view_names(warehouse) == views
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for view in views:
            assert con.execute("SELECT count(*) FROM query_table(?)", [view]).fetchall() == [(0,)], view
    finally:
        con.close()
    assert column_types(warehouse, "audit_events") == CORE_COLUMNS
    assert rows(warehouse, "SELECT count(*) AS n FROM entity_history('project', '5')") == [{"n": 0}]
    assert "no data yet" in str(report)


def test_empty_and_populated_sources_expose_the_same_columns(tmp_path: Path, populated: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    build_views(empty, Lake(str(tmp_path / "lake")))
    empty_types, populated_types = all_column_types(empty), all_column_types(populated)
    for model in load_models():
        if model.kind == "view":
            assert empty_types[model.name] == populated_types[model.name], model.name


def test_source_views_mirror_the_schemas(populated: Path) -> None:
    audit_cols = [name for name, _ in column_types(populated, "src_audit_events")]
    assert audit_cols == [*AUDIT_EVENTS.names, "event_date", "source_file"]
    assert [n for n, _ in column_types(populated, "src_ingest_runs")] == [*INGEST_RUNS.names, "source_file"]
    assert [n for n, _ in column_types(populated, "src_quarantine")] == [*QUARANTINE.names, "source_file"]


def test_build_records_meta(populated: Path) -> None:
    meta = rows(populated, "SELECT sql_hash, empty_sources, lake_location, schema_version FROM _ledger_meta")
    assert len(meta) == 1
    assert meta[0]["empty_sources"] == []
    assert meta[0]["lake_location"].endswith('it\'s a "lake" ☃')
    assert stored_hash(populated) == meta[0]["sql_hash"]


def test_run_records_are_read_with_or_without_the_stream_column_in_the_file(tmp_path: Path) -> None:
    """The stream is both a column and the partition directory; either alone must be enough."""
    lake = Lake(str(tmp_path / "lake"))
    write_parquet(lake, "_ops/ingest_runs/stream=audit/with.parquet", [RUNS[0]], INGEST_RUNS)
    without = pa.Table.from_pylist([RUNS[3]], schema=INGEST_RUNS).drop_columns(["stream"])
    pq.write_table(without, Path(lake.full_path("_ops/ingest_runs/stream=audit/without.parquet")))
    warehouse = tmp_path / "warehouse.duckdb"
    build_views(warehouse, lake)
    got = rows(warehouse, "SELECT stream, run_id FROM ingest_runs")
    assert got == [{"stream": "audit", "run_id": "run-1"}, {"stream": "audit", "run_id": "run-3"}]


def test_ensure_views_rebuilds_only_when_a_source_fills_or_the_sql_changes(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    lake = Lake(str(tmp_path / "lake"))
    first = ensure_views(warehouse, lake)
    assert first.rebuilt and "src_audit_events" in first.empty_sources
    assert not ensure_views(warehouse, lake).rebuilt

    write_audit_day1(lake)
    after_data = ensure_views(warehouse, lake)
    assert after_data.rebuilt and "src_audit_events" not in after_data.empty_sources
    assert rows(warehouse, "SELECT count(*) AS n FROM audit_events") == [{"n": len(DAY1_FILE_A)}]

    # New files in a populated source need no rebuild: the glob is expanded at every query.
    write_parquet(lake, "audit_events/event_date=2025-06-02/c.parquet", DAY2_FILE, AUDIT_EVENTS)
    assert not ensure_views(warehouse, lake).rebuilt
    assert rows(warehouse, "SELECT count(*) AS n FROM audit_events") == [
        {"n": len(DAY1_FILE_A) + len(DAY2_FILE)}
    ]

    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "40_ops" / "watermarks.sql").write_text(
        (SQL_DIR / "40_ops" / "watermarks.sql").read_text(encoding="utf-8") + "\n-- edited\n",
        encoding="utf-8",
    )
    assert ensure_views(warehouse, lake, sql_dir=sql_dir).rebuilt


def test_a_failing_build_leaves_the_previous_views_untouched(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    lake = Lake(str(tmp_path / "lake"))
    write_audit_day1(lake)
    build_views(warehouse, lake)
    before = stored_hash(warehouse)

    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    sign_ins = sql_dir / "30_compliance" / "compliance_sign_ins.sql"
    sign_ins.write_text(
        sign_ins.read_text(encoding="utf-8").replace(
            "ingest_run_id\n    from sign_ins", "ingest_run_id, 1 as marker\n    from sign_ins"
        ),
        encoding="utf-8",
    )
    (sql_dir / "60_broken").mkdir()
    (sql_dir / "60_broken" / "zz_broken.sql").write_text(
        "-- broken on purpose\ncreate or replace view zz_broken as select * from no_such_table\n",
        encoding="utf-8",
    )
    with pytest.raises(StorageError, match=r"zz_broken \(60_broken/zz_broken.sql\)"):
        build_views(warehouse, lake, sql_dir=sql_dir)

    assert "marker" not in [n for n, _ in column_types(warehouse, "compliance_sign_ins")]
    assert "zz_broken" not in view_names(warehouse)
    assert stored_hash(warehouse) == before


def test_views_whose_file_is_gone_are_dropped(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    lake = Lake(str(tmp_path / "lake"))
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "60_extra").mkdir()
    (sql_dir / "60_extra" / "extra_view.sql").write_text(
        "-- temporary\ncreate or replace view extra_view as select 1 as x\n", encoding="utf-8"
    )
    build_views(warehouse, lake, sql_dir=sql_dir)
    assert "extra_view" in view_names(warehouse)
    build_views(warehouse, lake)
    assert "extra_view" not in view_names(warehouse)


def test_sql_file_must_define_the_object_its_name_says(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "60_bad").mkdir()
    (sql_dir / "60_bad" / "one_name.sql").write_text("-- x\ncreate or replace view other_name as select 1\n")
    with pytest.raises(ConfigError, match="defines other_name"):
        load_models(sql_dir)


def test_the_file_opens_from_another_directory_with_stock_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lake = Lake("relative lake")  # a relative lake setting still yields absolute paths in the views
    populate(lake)
    build_views(Path("warehouse.duckdb"), lake)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent(
        """
        import sys, duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        print(con.sql("select count(*) from audit_events").fetchall()[0][0])
        print(con.sql("select count(*) from entity_history('Projects', 5)").fetchall()[0][0])
        print(con.sql("select count(*) from ingest_runs").fetchall()[0][0])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "warehouse.duckdb")],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.stdout.split() == [str(DISTINCT_EVENTS), "3", str(len(RUNS))]


@pytest.fixture()
def held_open(tmp_path: Path) -> Iterator[Path]:
    """A warehouse another process holds open for writing until the test ends."""
    warehouse = tmp_path / "warehouse.duckdb"
    build_views(warehouse, Lake(str(tmp_path / "lake")))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
            str(warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield warehouse
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def test_a_locked_file_gives_a_clear_error(held_open: Path, tmp_path: Path) -> None:
    with pytest.raises(
        StorageError, match=r"warehouse.duckdb is open in another process.*runai-ledger build-views"
    ):
        build_views(held_open, Lake(str(tmp_path / "lake")), lock_wait=0)
    with pytest.raises(StorageError, match="being written by another process"):
        run_query(held_open, "select 1", lock_wait=0)


# -- the views ------------------------------------------------------------------------------------
def test_audit_events_has_one_row_per_event_and_the_first_copy_wins(populated: Path) -> None:
    assert rows(populated, "SELECT count(*) AS n FROM src_audit_events") == [{"n": DISTINCT_EVENTS + 1}]
    assert rows(populated, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events") == [
        {"n": DISTINCT_EVENTS, "d": DISTINCT_EVENTS}
    ]
    kept = rows(
        populated,
        "SELECT entity_name, ingest_run_id, event_date FROM audit_events WHERE event_id = ?",
        ["evt-04"],
    )
    assert kept == [{"entity_name": QUOTED_NAME, "ingest_run_id": "run-1", "event_date": date(2025, 6, 1)}]
    unicode = rows(populated, "SELECT entity_name FROM audit_events WHERE event_id = 'evt-03'")
    assert unicode == [{"entity_name": UNICODE_NAME}]


def test_timestamps_are_utc(populated: Path) -> None:
    table = run_query(
        populated, "SELECT event_time, current_setting('TimeZone') AS tz FROM audit_events LIMIT 1"
    )
    assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert table.column("tz").to_pylist() == ["UTC"]


def test_compliance_sign_ins(populated: Path) -> None:
    got = rows(populated, "SELECT event_id, action, subject, success FROM compliance_sign_ins")
    assert got == [
        {"event_id": "evt-01", "action": "sign-in", "subject": "alice@example.com", "success": True},
        {"event_id": "evt-02", "action": "sign-in", "subject": "mallory", "success": False},
        {"event_id": "evt-10", "action": "sign-out", "subject": "alice@example.com", "success": True},
        {"event_id": "evt-12", "action": "reset-password", "subject": "bob", "success": True},
        {"event_id": "evt-18", "action": "SIGN_IN", "subject": "eve", "success": False},
    ]


def test_compliance_failed_actions(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT event_id, result, http_status_code, http_status_class FROM compliance_failed_actions",
    )
    assert got == [
        {"event_id": "evt-02", "result": "Failed", "http_status_code": 401, "http_status_class": "4xx"},
        {"event_id": "evt-08", "result": "Failed", "http_status_code": 403, "http_status_class": "4xx"},
        {"event_id": "evt-11", "result": "Succeeded", "http_status_code": 500, "http_status_class": "5xx"},
    ]


def test_compliance_privileged_changes(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT event_id, change_category, entity_type, succeeded FROM compliance_privileged_changes",
    )
    assert [(r["event_id"], r["change_category"], r["entity_type"]) for r in got] == [
        ("evt-03", "project", "project"),
        ("evt-04", "project", "project"),
        ("evt-15", "project", "Projects"),
        ("evt-05", "access_rule", "AccessRule"),
        ("evt-06", "access_rule", "access-rule"),
        ("evt-07", "department", "Department"),
        ("evt-08", "application", "service-account"),
        ("evt-17", "project", "project"),
        ("evt-11", "setting", "Settings"),
        ("evt-13", "role", "Roles"),
        ("evt-14", "user", "users"),
    ]
    assert {r["event_id"] for r in got if not r["succeeded"]} == {"evt-08", "evt-11"}


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [
        ("AccessRule", "access_rule"),
        ("access_rule", "access_rule"),
        ("access-rule", "access_rule"),
        ("accessrules", "access_rule"),
        ("Application", "application"),
        ("app", "application"),
        ("apps", "application"),
        ("service-account", "application"),
        ("ServiceAccounts", "application"),
        ("Settings", "setting"),
        ("Node Pool", "node_pool"),
        ("Node-Group", "nodegroup"),
        ("status", "status"),
        ("", None),
        (None, None),
    ],
)
def test_entity_kind_tolerates_spellings(populated: Path, spelling: str | None, kind: str | None) -> None:
    assert rows(populated, "SELECT entity_kind(?) AS k", [spelling]) == [{"k": kind}]


def test_entity_change_log_is_ordered_with_the_previous_action(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT entity_kind, event_id, change_seq, action, previous_action, previous_event_time "
        "FROM compliance_entity_changes WHERE entity_id = ?",
        ["5"],
    )
    assert got == [
        {
            "entity_kind": "department",
            "event_id": "evt-07",
            "change_seq": 1,
            "action": "update",
            "previous_action": None,
            "previous_event_time": None,
        },
        {
            "entity_kind": "project",
            "event_id": "evt-03",
            "change_seq": 1,
            "action": "create",
            "previous_action": None,
            "previous_event_time": None,
        },
        {
            "entity_kind": "project",
            "event_id": "evt-04",
            "change_seq": 2,
            "action": "update",
            "previous_action": "create",
            "previous_event_time": h(DAY1, 8, 10),
        },
        {  # same microsecond as evt-04: event_id breaks the tie
            "entity_kind": "project",
            "event_id": "evt-15",
            "change_seq": 3,
            "action": "update",
            "previous_action": "update",
            "previous_event_time": h(DAY1, 8, 20),
        },
    ]


def test_entity_change_log_covers_every_entity_with_an_id(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT entity_kind, entity_id, count(*) AS n FROM compliance_entity_changes GROUP BY ALL ORDER BY ALL",
    )
    assert got == [
        {"entity_kind": "access_rule", "entity_id": "ar-1", "n": 2},
        {"entity_kind": "application", "entity_id": "app-1", "n": 1},
        {"entity_kind": "department", "entity_id": "5", "n": 1},
        {"entity_kind": "node_pool", "entity_id": "np-1", "n": 1},
        {"entity_kind": "project", "entity_id": "5", "n": 3},
        {"entity_kind": "role", "entity_id": "role-7", "n": 1},
        {"entity_kind": "setting", "entity_id": "tenant", "n": 1},
        {"entity_kind": "user", "entity_id": "u-9", "n": 1},
        {"entity_kind": "workload", "entity_id": "wl-1", "n": 1},
    ]
    deleted = rows(populated, "SELECT action, previous_action FROM entity_history('access-rules', 'ar-1')")
    assert deleted == [
        {"action": "create", "previous_action": None},
        {"action": "delete", "previous_action": "create"},
    ]


def test_entity_history_macro_takes_parameters(populated: Path) -> None:
    got = rows(populated, "SELECT event_id, change_seq FROM entity_history(?, ?)", ["Project", "5"])
    assert got == [
        {"event_id": "evt-03", "change_seq": 1},
        {"event_id": "evt-04", "change_seq": 2},
        {"event_id": "evt-15", "change_seq": 3},
    ]


def test_ingest_runs(populated: Path) -> None:
    got = rows(populated, "SELECT run_id, status, window_start, drift_fields, error FROM ingest_runs")
    assert [(r["run_id"], r["status"], r["window_start"]) for r in got] == [
        ("run-1", "committed", DAY1),
        ("run-2", "mismatch", h(DAY1, 18)),
        ("run-2", "failed", DAY2),
        ("run-3", "committed", DAY2),
    ]
    assert got[0]["drift_fields"] == [("newField", 3)]
    assert got[2]["error"] == "boom"
    expected = [
        "stream", "run_id", "mode", "window_start", "window_end", "status", "pages", "requests",
        "rows_received", "rows_written", "rows_new", "duplicates_dropped", "out_of_window", "quarantined", "retries",
        "throttled_429", "token_refreshes", "api_total", "total_mismatch", "repaged", "drift_fields",
        "error", "started_at", "finished_at", "duration_s",
    ]  # fmt: skip
    assert [n for n, _ in column_types(populated, "ingest_runs")][: len(expected)] == expected


def test_quarantine_extracts_the_record_id_when_it_can(populated: Path) -> None:
    got = rows(populated, "SELECT page_offset, record_id, reason FROM quarantine")
    assert got == [
        {"page_offset": 0, "record_id": "bad-1", "reason": "timestamp is not ISO-8601"},
        {"page_offset": 1000, "record_id": None, "reason": "not a JSON object"},
    ]


def test_watermarks(populated: Path) -> None:
    got = rows(populated, "SELECT stream, watermark, run_id, hours_behind > 0 AS behind FROM watermarks")
    assert got == [
        {"stream": "audit", "watermark": h(DAY2, 6), "run_id": "run-3", "behind": True},
        {"stream": "workloads", "watermark": DAY1, "run_id": "run-w", "behind": True},
    ]


def test_ingest_daily(populated: Path) -> None:
    got = rows(populated, "SELECT event_date, events, failed_events, ingest_runs FROM ingest_daily")
    assert got == [
        {"event_date": date(2025, 6, 1), "events": 12, "failed_events": 2, "ingest_runs": 1},
        {"event_date": date(2025, 6, 2), "events": 6, "failed_events": 1, "ingest_runs": 1},
    ]


def test_ingest_gaps(populated: Path) -> None:
    got = rows(populated, "SELECT stream, gap_start, gap_end, gap_hours FROM ingest_gaps")
    assert got == [{"stream": "audit", "gap_start": h(DAY1, 12), "gap_end": h(DAY1, 18), "gap_hours": 6.0}]


def test_ingest_status(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT stream, watermark, last_run_id, last_run_status, runs_total, failed_windows_total, "
        "mismatched_windows_total, quarantined_total, throttled_429_total FROM ingest_status",
    )
    assert got == [
        {
            "stream": "audit",
            "watermark": h(DAY2, 6),
            "last_run_id": "run-3",
            "last_run_status": "committed",
            "runs_total": 3,
            "failed_windows_total": 1,
            "mismatched_windows_total": 1,
            "quarantined_total": 2,
            "throttled_429_total": 2,
        },
        {
            "stream": "workloads",
            "watermark": DAY1,
            "last_run_id": None,
            "last_run_status": None,
            "runs_total": 0,
            "failed_windows_total": 0,
            "mismatched_windows_total": 0,
            "quarantined_total": 0,
            "throttled_429_total": 0,
        },
    ]
    run2 = rows(populated, "SELECT count(*) AS n FROM ingest_runs WHERE run_id = 'run-2'")
    assert run2 == [{"n": 2}]


# -- querying ---------------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "statement",
    [
        "create table t (x int)",
        "insert into _ledger_meta select * from _ledger_meta",
        "drop view audit_events",
        "attach ':memory:' as m",
        "set TimeZone = 'Europe/Paris'",
        "pragma show_tables",
    ],
)
def test_run_query_refuses_anything_but_select(populated: Path, statement: str) -> None:
    before = _digest(populated)
    with pytest.raises(ConfigError, match="query is read-only"):
        run_query(populated, statement)
    assert _digest(populated) == before


def test_run_query_refuses_copy_to_a_file(
    populated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only DuckDB connection would still write this file; the statement check stops it."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="query is read-only"):
        run_query(populated, "copy (select * from audit_events) to 'out.csv'")
    assert not (tmp_path / "out.csv").exists()


def test_run_query_takes_one_statement(populated: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one SQL statement"):
        run_query(populated, "select 1; select 2")


def test_run_query_reports_bad_sql_as_a_config_error(populated: Path) -> None:
    with pytest.raises(ConfigError, match="query failed"):
        run_query(populated, "select * from no_such_view")
    with pytest.raises(ConfigError, match="query failed"):
        run_query(populated, "selec 1")


def test_run_query_without_a_warehouse(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `runai-ledger build-views`"):
        run_query(tmp_path / "missing.duckdb", "select 1")


def test_run_query_parameters_and_limit(populated: Path) -> None:
    table = run_query(
        populated,
        "SELECT event_id FROM audit_events WHERE subject = ? ORDER BY event_id",
        ["alice@example.com"],
        limit=2,
    )
    assert table.column("event_id").to_pylist() == ["evt-01", "evt-03"]
    assert run_query(populated, "SELECT * FROM audit_events", limit=0).num_rows == 0
    explained = run_query(populated, "EXPLAIN SELECT * FROM audit_events")
    assert explained.num_rows >= 1


def test_list_views(populated: Path) -> None:
    infos = {info.name: info for info in list_views(populated)}
    assert {m.name for m in load_models()} == set(infos)
    assert infos["audit_events"].layer == "20_core"
    assert infos["audit_events"].description.startswith("One row per audit event")
    assert infos["entity_history"].kind == "table_macro"
    assert ("change_category", "VARCHAR") in infos["compliance_privileged_changes"].columns
    assert str(infos["audit_events"]).startswith("audit_events ")
    assert not any(name.startswith("_") for name in infos)


# -- rendering --------------------------------------------------------------------------------------
SAMPLE_SQL = (
    "SELECT event_id, event_time, entity_name, metadata, http_status_code, event_id_derived FROM audit_events "
    "WHERE event_id IN ('evt-03', 'evt-04', 'evt-14') ORDER BY event_id"
)


def test_render_csv_is_rfc4180_with_a_header(populated: Path) -> None:
    out = io.StringIO(newline="")
    render(run_query(populated, SAMPLE_SQL), "csv", out)
    text = out.getvalue()
    assert text.startswith("event_id,event_time,entity_name,metadata,http_status_code,event_id_derived\r\n")
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["entity_name"] for r in parsed] == [UNICODE_NAME, QUOTED_NAME, MARKUP_NAME]
    assert parsed[1]["event_time"] == "2025-06-01T08:20:00.000000Z"
    assert json.loads(parsed[1]["metadata"]) == {"field": "quota", "note": "it's"}
    assert parsed[0]["metadata"] == ""  # NULL
    assert parsed[0]["event_id_derived"] == "false"


def test_render_json_lines_parse_back(populated: Path) -> None:
    out = io.StringIO()
    render(run_query(populated, SAMPLE_SQL), "json", out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert records[1]["metadata"] == {"field": "quota", "note": "it's"}
    assert records[1]["entity_name"] == QUOTED_NAME
    assert records[0]["metadata"] is None
    assert datetime.fromisoformat(records[1]["event_time"]) == h(DAY1, 8, 20)
    assert records[1]["event_time"].endswith("Z")


def test_render_json_handles_aggregates_lists_and_dates(populated: Path) -> None:
    out = io.StringIO()
    sql = "SELECT sum(rows_written) AS total, list(run_id ORDER BY run_id) AS runs, max(window_start)::date AS d, 0.5::decimal(4,2) AS dec FROM ingest_runs"
    render(run_query(populated, sql), "json", out)
    assert json.loads(out.getvalue()) == {
        "total": 24,
        "runs": ["run-1", "run-2", "run-2", "run-3"],
        "d": "2025-06-02",
        "dec": 0.5,
    }


def test_render_table_shows_text_literally(populated: Path) -> None:
    out = io.StringIO()
    render(
        run_query(populated, "SELECT event_id, entity_name FROM audit_events WHERE event_id = 'evt-14'"),
        "table",
        out,
    )
    text = out.getvalue()
    assert "entity_name" in text
    assert MARKUP_NAME in text  # rich markup in data is not interpreted
    assert "1 row" in text


def test_render_rejects_an_unknown_format(populated: Path) -> None:
    with pytest.raises(ConfigError, match="unknown output format"):
        render(run_query(populated, "select 1"), "xml", io.StringIO())  # type: ignore[arg-type]


def test_warehouse_never_imports_airflow() -> None:
    script = "import sys, warehouse, warehouse.build, warehouse.query; assert not [m for m in sys.modules if m.split('.')[0] == 'airflow']"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[1])
