"""Read-only queries over warehouse.duckdb, and rendering their results for people and programs.

Why read-only, and checked twice: the file is opened with ``read_only=True``, so many queries run
side by side and none can take the write lock a view build needs. DuckDB still lets a read-only
connection ``COPY ... TO`` a file or ``ATTACH`` another database, so the statement itself is also
checked: exactly one SELECT (or EXPLAIN) statement, anything else fails with "query is read-only".

pyarrow is imported only where an Arrow table is asked for (``run_query``, ``render``): the
CLI's ``query`` goes through ``fetch_rows``, which takes DuckDB's own Python values, because
importing pyarrow costs more than the rest of a small query (docs/performance.md, start-up).

Output formats, all with timestamps as ISO-8601 UTC (``2025-06-02T00:00:00.000000Z``):
- ``table``: a rich table for a terminal; cell text is never read as rich markup.
- ``csv``: RFC 4180 (header row, CRLF line ends, minimal quoting); NULL is an empty field; maps,
  structs and lists are written as JSON text in their cell.
- ``json``: JSON Lines, one object per row. Chosen over one big array because it streams, ``jq``
  and pandas read it directly, and a truncated output is still valid up to its last line. Maps
  become objects, NULL becomes null, non-finite floats become null, binary values become base64.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import duckdb

from runai_extract.core.errors import ConfigError, StorageError
from warehouse.connection import LOCK_WAIT_S, open_warehouse

if TYPE_CHECKING:
    import pyarrow as pa

OutputFormat = Literal["table", "csv", "json"]

_READ_STATEMENTS = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)


def run_query(
    warehouse_path: Path,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    limit: int | None = None,
    lock_wait: float = LOCK_WAIT_S,
) -> pa.Table:
    """Run one read-only statement with ``?`` parameters; at most ``limit`` rows if given.

    Values always travel as parameters (``WHERE entity_id = ?``), never inside ``sql``. The limit
    is applied to the query plan, so a huge view is not read just to show its first rows.
    """
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be zero or positive (got {limit})")
    return query_connection(_open_for_query(warehouse_path, lock_wait), sql, params, limit=limit)


def query_connection(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None, *, limit: int | None = None
) -> pa.Table:
    """Run one read-only statement on ``con`` (the warehouse, or views as of a moment) and close it."""
    try:
        _check_read_only(con, sql)
        try:
            relation = con.sql(sql, params=list(params) if params is not None else None)
            if limit is not None:
                relation = relation.limit(limit)
            return relation.to_arrow_table()
        except duckdb.IOException as exc:
            raise StorageError(f"query could not read the lake: {_first_line(exc)}") from exc
        except duckdb.Error as exc:
            raise ConfigError(f"query failed: {_first_line(exc)}") from exc
    finally:
        con.close()


@dataclass(frozen=True)
class Rows:
    """A query result as plain, JSON-ready rows (what every output format renders)."""

    names: list[str]
    rows: list[dict[str, Any]]

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Rows:
        return cls(_unique_names(table.column_names), list(iter_plain_rows(table)))


# DuckDB's Python value for an INTERVAL is a timedelta that has folded months into days; Arrow
# keeps the months, so results with intervals take the Arrow path to render the same.
_ARROW_ONLY_TYPES = ("INTERVAL",)


def fetch_rows(
    warehouse_path: Path,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    limit: int | None = None,
    lock_wait: float = LOCK_WAIT_S,
) -> Rows:
    """Like :func:`run_query`, as plain rows read without pyarrow (the fast path for the CLI)."""
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be zero or positive (got {limit})")
    con = _open_for_query(warehouse_path, lock_wait)
    try:
        _check_read_only(con, sql)
        try:
            relation = con.sql(sql, params=list(params) if params is not None else None)
            if limit is not None:
                relation = relation.limit(limit)
            if any(str(t).startswith(_ARROW_ONLY_TYPES) for t in relation.types):
                return Rows.from_arrow(relation.to_arrow_table())
            names = _unique_names(relation.columns)
            rows = [dict(zip(names, map(_plain_value, row), strict=True)) for row in relation.fetchall()]
            return Rows(names, rows)
        except duckdb.IOException as exc:
            raise StorageError(f"query could not read the lake: {_first_line(exc)}") from exc
        except duckdb.Error as exc:
            raise ConfigError(f"query failed: {_first_line(exc)}") from exc
    finally:
        con.close()


def _open_for_query(warehouse_path: Path, lock_wait: float) -> duckdb.DuckDBPyConnection:
    if not warehouse_path.exists():
        raise ConfigError(f"no warehouse at {warehouse_path}; run `runai-ledger build-views` first")
    return open_warehouse(warehouse_path, read_only=True, lock_wait=lock_wait)


def _check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Exactly one SELECT/EXPLAIN statement; a read-only file alone would still allow COPY TO."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise ConfigError(f"give exactly one SQL statement (got {len(statements)})")
    kind = statements[0].type
    if kind not in _READ_STATEMENTS:
        raise ConfigError(f"query is read-only: only SELECT statements are allowed (got {kind.name})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- listing ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ViewInfo:
    """A view or macro of the warehouse, for `runai-ledger query --list`."""

    name: str
    kind: str
    layer: str
    description: str
    columns: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        label = f"{self.name}(...)" if self.kind != "view" else self.name
        return f"{label:<34} {self.description}".rstrip()


_LIST_OBJECTS = """
SELECT v.view_name AS name, 'view' AS kind, coalesce(o.layer, '') AS layer,
       coalesce(o.description, '') AS description, coalesce(o.position, 1000000) AS position
FROM duckdb_views() AS v
LEFT JOIN _ledger_objects AS o ON o.name = v.view_name AND o.kind = 'view'
WHERE NOT v.internal AND v.schema_name = 'main'
UNION ALL
SELECT o.name, o.kind, o.layer, o.description, o.position
FROM _ledger_objects AS o
WHERE o.kind <> 'view'
ORDER BY position, name
"""

_LIST_PLAIN_VIEWS = """
SELECT view_name AS name, 'view' AS kind, '' AS layer, '' AS description, 0 AS position
FROM duckdb_views()
WHERE NOT internal AND schema_name = 'main'
ORDER BY name
"""

_COLUMNS = """
SELECT table_name, column_name, data_type
FROM duckdb_columns()
WHERE schema_name = 'main' AND NOT internal
ORDER BY table_name, column_index
"""


def list_views(warehouse_path: Path, *, lock_wait: float = LOCK_WAIT_S) -> list[ViewInfo]:
    """The views and macros in build order, each with its description and columns.

    ``str(info)`` is one aligned line ("name   description"), which is what `query --list` prints.
    Views someone added by hand are listed too (after ours, without a description).
    """
    con = _open_for_query(warehouse_path, lock_wait)
    try:
        has_objects = bool(
            con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
                ["_ledger_objects"],
            ).fetchall()[0][0]
        )
        objects = con.sql(_LIST_OBJECTS if has_objects else _LIST_PLAIN_VIEWS).fetchall()
        columns: dict[str, list[tuple[str, str]]] = {}
        for table, column, dtype in con.sql(_COLUMNS).fetchall():
            columns.setdefault(str(table), []).append((str(column), str(dtype)))
    finally:
        con.close()
    return [
        ViewInfo(str(name), str(kind), str(layer), str(desc), tuple(columns.get(str(name), ())))
        for name, kind, layer, desc, _position in objects
    ]


# -- rendering -------------------------------------------------------------------------------------
def render(table: pa.Table, fmt: OutputFormat, out: TextIO) -> None:
    """Write ``table`` to ``out`` as a terminal table, RFC 4180 CSV, or JSON Lines."""
    render_rows(Rows.from_arrow(table), fmt, out)


def render_rows(result: Rows, fmt: OutputFormat, out: TextIO) -> None:
    """Write plain rows (from :func:`fetch_rows`) as a terminal table, RFC 4180 CSV, or JSON Lines."""
    if fmt == "table":
        _render_table(result, out)
    elif fmt == "csv":
        _render_csv(result, out)
    elif fmt == "json":
        _render_json(result, out)
    else:
        raise ConfigError(f"unknown output format {fmt!r}: use table, csv or json")


def _render_json(result: Rows, out: TextIO) -> None:
    for row in result.rows:
        out.write(json.dumps(row, ensure_ascii=False, allow_nan=False))
        out.write("\n")


def _render_csv(result: Rows, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.names)
    for row in result.rows:
        writer.writerow([_cell_text(value) for value in row.values()])


def _render_table(result: Rows, out: TextIO) -> None:
    # rich is imported here so that csv/json output never pays for it.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    count = len(result.rows)
    grid = Table(show_lines=False, caption=f"{count} row{'s' if count != 1 else ''}")
    for name in result.names:
        grid.add_column(Text(name), overflow="fold")
    for row in result.rows:
        grid.add_row(*[Text("NULL", style="dim") if v is None else Text(_cell_text(v)) for v in row.values()])
    console = Console(file=out, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Off a terminal rich assumes 80 columns and folds every cell; let rows run as wide as
        # they need in a pipe or a CI log instead.
        console.width = max(console.width, 240)
    console.print(grid)


def _cell_text(value: Any) -> str:
    """One value as the text of a CSV or table cell: containers as JSON, booleans lower-case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def iter_plain_rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    """Rows as dicts of JSON-ready values (str, int, float, bool, None, dict, list).

    Column names that repeat (``select 1 as a, 2 as a``) get a numeric suffix so no value is lost.
    """
    names = _unique_names(table.column_names)
    columns = [_plain_column(table.column(i)) for i in range(table.num_columns)]
    for values in zip(*columns, strict=True):
        yield dict(zip(names, values, strict=True))


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count}")
    return unique


def _plain_column(column: pa.ChunkedArray) -> list[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = column.type
    if pa.types.is_timestamp(dtype) and dtype.unit == "ns":
        # Python datetimes hold microseconds; ISO output has microseconds everywhere anyway.
        column = pc.cast(column, pa.timestamp("us", dtype.tz), safe=False)
        dtype = column.type
    return [_plain(value, dtype) for value in column.to_pylist()]


def _plain(value: Any, dtype: pa.DataType) -> Any:
    """One Python value from pyarrow, as a JSON-ready value; ``dtype`` guides nested types."""
    import pyarrow as pa

    if value is None:
        return None
    if isinstance(value, pa.MonthDayNano):
        return f"P{value.months}M{value.days}DT{value.nanoseconds / 1e9:g}S"
    if pa.types.is_map(dtype):
        return {str(k): _plain(v, dtype.item_type) for k, v in value}
    if pa.types.is_struct(dtype):
        return {f.name: _plain(value.get(f.name), f.type) for f in dtype}
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return [_plain(v, dtype.value_type) for v in value]
    if pa.types.is_dictionary(dtype):
        return _plain(value, dtype.value_type)
    return _plain_scalar(value)


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"PT{value.total_seconds():g}S"
    if isinstance(value, Decimal):
        # DuckDB's sum() of integers is a HUGEINT, which arrives as a decimal with scale 0.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _plain_value(value: Any) -> Any:
    """One Python value from DuckDB, as a JSON-ready value (the same as :func:`_plain` gives).

    DuckDB hands MAPs and STRUCTs over as dicts and LISTs as lists, so nesting needs no types.
    """
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    return None if value is None else _plain_scalar(value)
