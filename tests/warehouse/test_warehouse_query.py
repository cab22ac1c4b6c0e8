"""Read-only queries and their rendering as table, CSV and JSON."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from runai_extract.core.errors import ConfigError
from tests.warehouse.fixtures import (
    DAY1,
    MARKUP_NAME,
    QUOTED_NAME,
    UNICODE_NAME,
    h,
)
from warehouse.build import (
    load_models,
)
from warehouse.query import fetch_rows, list_views, render, render_rows, run_query


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


TYPE_ZOO_SQL = r"""
SELECT event_id, event_time, metadata, event_id_derived,
       TIMESTAMP '2025-06-02 01:02:03' AS naive, TIMESTAMP_NS '2025-06-02 01:02:03.123456789' AS ns,
       DATE '2025-06-02' AS d, TIME '01:02:03' AS t, {'x': 1, 'y': [1, 2]} AS s,
       [map(['k'], ['v'])] AS maps, 1.50::decimal(10, 2) AS dec, 'nan'::double AS nan,
       '\xAA'::blob AS b, '9c6c0bb1-0b5c-4e6a-9d4e-1b2c3d4e5f60'::uuid AS u, 3::hugeint AS hu,
       1 AS dup, 2 AS dup
FROM audit_events WHERE event_id IN ('evt-03', 'evt-04') ORDER BY event_id
"""


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
@pytest.mark.parametrize(
    "sql",
    [TYPE_ZOO_SQL, SAMPLE_SQL, "SELECT INTERVAL 1 month + INTERVAL 3 second AS iv"],
    ids=["type-zoo", "sample", "interval"],
)
def test_fetch_rows_renders_exactly_like_the_arrow_path(populated: Path, sql: str, fmt: str) -> None:
    """The CLI reads DuckDB's own values to skip importing pyarrow; the output must not change."""
    via_arrow, via_duckdb = io.StringIO(newline=""), io.StringIO(newline="")
    render(run_query(populated, sql), fmt, via_arrow)  # type: ignore[arg-type]
    render_rows(fetch_rows(populated, sql), fmt, via_duckdb)  # type: ignore[arg-type]
    assert via_duckdb.getvalue() == via_arrow.getvalue()


def test_fetch_rows_is_read_only_and_limited(populated: Path) -> None:
    with pytest.raises(ConfigError, match="query is read-only"):
        fetch_rows(populated, "drop view audit_events")
    assert len(fetch_rows(populated, "select * from audit_events", limit=2).rows) == 2


def test_the_query_command_never_imports_pyarrow(populated: Path) -> None:
    """pyarrow's import costs more than a small query; `runai-ledger query` must not pay it."""
    script = (
        "import sys; from runai_extract.cli.main import app\n"
        "try:\n    app(['query', 'select count(*) from audit_events', '-f', 'json'])\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow was imported'"
    )
    env = {**os.environ, "RUNAI_LEDGER_HOME": str(populated.parent)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
