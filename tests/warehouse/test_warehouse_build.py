"""The warehouse build: SQL files, rendering, one-transaction builds, locks, any-cwd opening."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from runai_extract.core.errors import ConfigError, StorageError
from tests.warehouse.fixtures import (
    CORE_COLUMNS,
    DAY1_FILE_A,
    DAY2_FILE,
    DISTINCT_EVENTS,
    RUNS,
    all_column_types,
    column_types,
    populate,
    rows,
    view_names,
    write_audit_day1,
    write_parquet,
)
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
from warehouse.query import run_query


# -- the SQL files ---------------------------------------------------------------------------------
def test_every_sql_file_holds_exactly_one_create_named_like_the_file() -> None:
    con = duckdb.connect()
    files = sorted(SQL_DIR.glob("*/*.sql"))
    assert len(files) >= 15
    dummies: dict[str, bool | str] = {source.placeholder: "/tmp/x/**/*.parquet" for source in SOURCES}
    dummies |= {source.union_placeholder: True for source in SOURCES}
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
    assert [m.name for m in load_models()][: len(SOURCES)] == [s.view for s in SOURCES]


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
    # The fixture fills the audit-side sources; the usage ones (workloads, org units) stay empty.
    assert set(meta[0]["empty_sources"]).isdisjoint(
        {"src_audit_events", "src_ingest_runs", "src_quarantine", "src_reconciliation", "src_watermarks"}
    )
    assert "src_workload_snapshots" in meta[0]["empty_sources"]
    assert meta[0]["lake_location"].endswith('it\'s a "lake" ☃')
    assert stored_hash(populated) == meta[0]["sql_hash"]


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

    # A new commit to a populated source replaces that source view only (its file list changed).
    write_parquet(lake, "audit_events/event_date=2025-06-02/c.parquet", DAY2_FILE, AUDIT_EVENTS)
    refreshed = ensure_views(warehouse, lake)
    assert refreshed.rebuilt and refreshed.replaced == ("src_audit_events",)
    assert rows(warehouse, "SELECT count(*) AS n FROM audit_events") == [
        {"n": len(DAY1_FILE_A) + len(DAY2_FILE)}
    ]
    assert not ensure_views(warehouse, lake).rebuilt

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
