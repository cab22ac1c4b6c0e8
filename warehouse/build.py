"""Apply warehouse/sql/**.sql to warehouse.duckdb: views over the lake, all in one transaction.

Why views and not tables: the lake's Parquet files are the record. The DuckDB file holds only
definitions, so it is tiny, is rebuilt in milliseconds, and never goes stale as new files land (a
glob is expanded again at every query). Why one transaction: a reader opening the file sees
either the old set of views or the new one, never a half-built mix.

Layout: ``sql/<NN_layer>/<name>.sql``, applied in path order; the numbered layers put sources
before core before compliance before ops. Each file holds exactly one ``CREATE OR REPLACE VIEW``
(or ``MACRO``) named like the file, and its leading comment is the description that
``runai-ledger query --list`` shows.

The one value ever put into SQL text is the lake location inside the source views, because DDL
cannot take prepared parameters. A source file writes ``{{ placeholder }}`` where the location
goes, and :func:`render_template` replaces it with :func:`sql_string_literal` (single quotes
doubled, NUL rejected). Nothing else is formatted into SQL; identifiers that are generated (the
empty relations below) come from our own schemas and go through :func:`quote_identifier`.

Day one: ``read_parquet`` fails at view creation when its glob matches no file. A source whose
lake directory is still empty is therefore created as a typed empty relation generated from its
pyarrow schema, so every downstream view exists from the first build. ``_ledger_meta`` records
which sources were empty and a hash of the rendered SQL (which includes the lake location), and
:func:`ensure_views` rebuilds only when that hash changes: first data arrived, SQL edited, lake
moved.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from runai_extract.errors import ConfigError, StorageError
from transforms.schemas import (
    AUDIT_EVENTS,
    AUDIT_EVENTS_DIR,
    INGEST_RUNS,
    INGEST_RUNS_DIR,
    QUARANTINE,
    QUARANTINE_DIR,
    SCHEMA_VERSION,
    STATE_DIR,
    UTC_TS,
)
from transforms.storage import Lake

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
META_TABLE = "_ledger_meta"
OBJECTS_TABLE = "_ledger_objects"
LOCK_WAIT_S = 2.0
# Bumped when the meta tables or the way statements are generated change, to force a rebuild.
_BUILD_FORMAT = 1

ObjectKind = Literal["view", "macro", "table_macro"]

_NAME = r"[a-z_][a-z0-9_]*"
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_CREATE = re.compile(r"create\s+or\s+replace\s+(view|macro)\s+(" + _NAME + r")\b", re.IGNORECASE)
_TABLE_MACRO = re.compile(r"\s*\([^)]*\)\s*as\s+table\b", re.IGNORECASE)
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


# -- sources -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """A source view: where its files live in the lake, and the columns the view exposes."""

    view: str
    placeholder: str
    lake_dir: str
    suffix: str
    schema: pa.Schema

    @property
    def glob(self) -> str:
        """The pattern below ``lake_dir``; '**' also matches zero directories, like list_files."""
        return f"**/*{self.suffix}"


def _with_columns(schema: pa.Schema, *extra: pa.Field) -> pa.Schema:
    return pa.schema([*schema, *extra])


_SOURCE_FILE = pa.field("source_file", pa.string())

# The state files are JSON written by runai_extract/state.py; these are the columns
# src_watermarks.sql exposes (timestamps already cast from their ISO-8601 text).
WATERMARK_COLUMNS = pa.schema(
    [
        pa.field("stream", pa.string()),
        pa.field("watermark", UTC_TS),
        pa.field("updated_at", UTC_TS),
        pa.field("run_id", pa.string()),
        _SOURCE_FILE,
    ]
)

SOURCES: tuple[Source, ...] = (
    Source(
        "src_audit_events",
        "audit_events_glob",
        AUDIT_EVENTS_DIR,
        ".parquet",
        _with_columns(AUDIT_EVENTS, pa.field("event_date", pa.date32()), _SOURCE_FILE),
    ),
    Source(
        "src_ingest_runs",
        "ingest_runs_glob",
        INGEST_RUNS_DIR,
        ".parquet",
        _with_columns(INGEST_RUNS, _SOURCE_FILE),
    ),
    Source(
        "src_quarantine",
        "quarantine_glob",
        QUARANTINE_DIR,
        ".parquet",
        _with_columns(QUARANTINE, _SOURCE_FILE),
    ),
    Source("src_watermarks", "state_glob", STATE_DIR, ".json", WATERMARK_COLUMNS),
)


# -- SQL text --------------------------------------------------------------------------------------
def sql_string_literal(value: str) -> str:
    """``value`` as a DuckDB string literal; the only way a value ever enters our SQL text."""
    if "\x00" in value:
        raise ConfigError(f"a NUL character cannot be put into a SQL string literal: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """``name`` as a quoted DuckDB identifier (double quotes doubled)."""
    if "\x00" in name:
        raise ConfigError(f"a NUL character cannot be part of an identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def render_template(template: str, literals: Mapping[str, str]) -> str:
    """Replace every ``{{ name }}`` with ``literals[name]`` rendered as a SQL string literal."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in literals:
            raise ConfigError(f"unknown placeholder {{{{ {name} }}}} in warehouse SQL")
        return sql_string_literal(literals[name])

    return _PLACEHOLDER.sub(substitute, template)


_SCALAR_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
}
_NAIVE_TIMESTAMPS = {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}


def duckdb_type(dtype: pa.DataType) -> str:
    """The DuckDB type that reading a Parquet column of ``dtype`` produces."""
    if dtype in _SCALAR_TYPES:
        return _SCALAR_TYPES[dtype]
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz is not None else _NAIVE_TIMESTAMPS[dtype.unit]
    if pa.types.is_map(dtype):
        return f"MAP({duckdb_type(dtype.key_type)}, {duckdb_type(dtype.item_type)})"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"{duckdb_type(dtype.value_type)}[]"
    raise ConfigError(f"no DuckDB type is mapped for the pyarrow type {dtype}")


def empty_relation_sql(source: Source) -> str:
    """A CREATE VIEW of ``source`` with its exact columns and types and no rows."""
    columns = ",\n    ".join(
        f"CAST(NULL AS {duckdb_type(field.type)}) AS {quote_identifier(field.name)}"
        for field in source.schema
    )
    # Only identifiers from our schemas and fixed type names are formatted here, never a value.
    return f"CREATE OR REPLACE VIEW {quote_identifier(source.view)} AS\nSELECT\n    {columns}\nWHERE false\n"


# -- the .sql files --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SqlModel:
    """One .sql file: one view or macro, its layer and its description."""

    name: str
    kind: ObjectKind
    layer: str
    path: str
    template: str
    description: str


def load_models(sql_dir: Path = SQL_DIR) -> list[SqlModel]:
    """Every ``<layer>/<name>.sql`` below ``sql_dir``, in the order they must be applied."""
    files = sorted(sql_dir.glob("*/*.sql"), key=lambda p: p.relative_to(sql_dir).as_posix())
    if not files:
        raise ConfigError(f"no warehouse SQL files under {sql_dir}")
    models = [_parse_model(path, sql_dir) for path in files]
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise ConfigError(f"warehouse SQL defines {model.name} twice (second in {model.path})")
        seen.add(model.name)
    missing = {source.view for source in SOURCES} - seen
    if missing:
        raise ConfigError(f"warehouse SQL has no file for the source view(s) {sorted(missing)}")
    return models


def _parse_model(path: Path, sql_dir: Path) -> SqlModel:
    rel = path.relative_to(sql_dir).as_posix()
    text = path.read_text(encoding="utf-8")
    header, body = _split_header(text)
    match = _CREATE.match(body)
    if match is None:
        raise ConfigError(f"{rel}: must start (after its comment) with CREATE OR REPLACE VIEW|MACRO <name>")
    keyword, name = match.group(1).lower(), match.group(2)
    if name != path.stem:
        raise ConfigError(f"{rel}: defines {name}, but the file name says {path.stem}")
    kind: ObjectKind = "view"
    if keyword == "macro":
        kind = "table_macro" if _TABLE_MACRO.match(body, match.end()) else "macro"
    return SqlModel(name, kind, path.parent.name, rel, text, _description(header))


def _split_header(text: str) -> tuple[list[str], str]:
    """The leading '--' comment lines (without the dashes) and the SQL after them."""
    lines = text.splitlines()
    header: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("--"):
            header.append(stripped[2:].strip())
        elif stripped:
            return header, "\n".join(lines[index:])
    return header, ""


def _description(header: list[str]) -> str:
    """The first paragraph of the header comment, on one line."""
    paragraph: list[str] = []
    for line in header:
        if not line:
            if paragraph:
                break
            continue
        paragraph.append(line)
    return " ".join(paragraph)


# -- planning and applying -------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildPlan:
    """The exact statements a build would run against one lake, and their fingerprint."""

    models: tuple[SqlModel, ...]
    statements: tuple[str, ...]
    empty_sources: tuple[str, ...]
    lake_location: str
    sql_hash: str


@dataclass(frozen=True)
class BuildReport:
    """What build_views/ensure_views did; printed by the CLI, small enough for an XCom."""

    warehouse_path: Path
    objects: tuple[str, ...]
    empty_sources: tuple[str, ...]
    sql_hash: str
    rebuilt: bool

    def __str__(self) -> str:
        state = "rebuilt" if self.rebuilt else "already up to date"
        empty = f"; no data yet for {', '.join(self.empty_sources)}" if self.empty_sources else ""
        return f"{len(self.objects)} views and macros {state}{empty}"


def plan_build(lake: Lake, sql_dir: Path = SQL_DIR) -> BuildPlan:
    """Render every statement for ``lake``: cheap (reads the .sql files and lists the lake)."""
    models = tuple(load_models(sql_dir))
    empty = tuple(s.view for s in SOURCES if not lake.list_files(s.lake_dir, s.suffix))
    literals = {s.placeholder: f"{lake.location(s.lake_dir)}/{s.glob}" for s in SOURCES}
    by_view = {s.view: s for s in SOURCES}
    statements = tuple(
        empty_relation_sql(by_view[m.name]) if m.name in empty else render_template(m.template, literals)
        for m in models
    )
    digest = hashlib.sha256(f"format {_BUILD_FORMAT}\n".encode())
    for model, statement in zip(models, statements, strict=True):
        digest.update(f"\n-- {model.path}\n{statement}".encode())
    return BuildPlan(models, statements, empty, lake.location(""), digest.hexdigest())


def build_views(
    warehouse_path: Path, lake: Lake, *, sql_dir: Path = SQL_DIR, lock_wait: float = LOCK_WAIT_S
) -> BuildReport:
    """(Re)create every view and macro in ``warehouse_path`` in one transaction.

    Views that an earlier build created but whose .sql file is gone are dropped in the same
    transaction, so a renamed view does not linger with stale columns. Raises StorageError when
    another process holds the file or a view cannot be built (the file is then left as it was).
    """
    plan = plan_build(lake, sql_dir)
    _apply(plan, warehouse_path, lock_wait)
    log.info("warehouse views built in %s (empty sources: %s)", warehouse_path, plan.empty_sources or "none")
    return _report(plan, warehouse_path, rebuilt=True)


def ensure_views(
    warehouse_path: Path, lake: Lake, *, sql_dir: Path = SQL_DIR, lock_wait: float = LOCK_WAIT_S
) -> BuildReport:
    """Build the views only if the stored build differs from what the lake and the SQL call for.

    Called after every sync: when nothing changed it opens the file read-only for one small
    query and returns, so it neither takes the write lock nor disturbs readers.
    """
    plan = plan_build(lake, sql_dir)
    if stored_hash(warehouse_path, lock_wait=lock_wait) == plan.sql_hash:
        return _report(plan, warehouse_path, rebuilt=False)
    _apply(plan, warehouse_path, lock_wait)
    log.info(
        "warehouse views rebuilt in %s (empty sources: %s)", warehouse_path, plan.empty_sources or "none"
    )
    return _report(plan, warehouse_path, rebuilt=True)


def _report(plan: BuildPlan, warehouse_path: Path, *, rebuilt: bool) -> BuildReport:
    names = tuple(model.name for model in plan.models)
    return BuildReport(warehouse_path, names, plan.empty_sources, plan.sql_hash, rebuilt)


def stored_hash(warehouse_path: Path, *, lock_wait: float = LOCK_WAIT_S) -> str | None:
    """The sql_hash of the last build stored in the file, or None if there is none."""
    if not warehouse_path.exists():
        return None
    con = open_warehouse(warehouse_path, read_only=True, lock_wait=lock_wait)
    try:
        if not _table_exists(con, META_TABLE):
            return None
        rows = con.sql("SELECT sql_hash FROM _ledger_meta").fetchall()
        return str(rows[0][0]) if rows else None
    finally:
        con.close()


def _apply(plan: BuildPlan, warehouse_path: Path, lock_wait: float) -> None:
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = open_warehouse(warehouse_path, read_only=False, lock_wait=lock_wait)
    try:
        previous = _stored_objects(con)
        con.begin()
        try:
            _drop_stale(con, previous, plan.models)
            for model, statement in zip(plan.models, plan.statements, strict=True):
                _execute_model(con, model, statement)
            _write_meta(con, plan)
            con.commit()
        except BaseException:
            _rollback(con)
            raise
    finally:
        con.close()


def _execute_model(con: duckdb.DuckDBPyConnection, model: SqlModel, statement: str) -> None:
    try:
        con.execute(statement)
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot build {model.kind.replace('_', ' ')} {model.name} ({model.path}): {first_line}; "
            "the warehouse was left as it was"
        ) from exc


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.rollback()
    except duckdb.Error as exc:
        # The original error is the one to report; an aborted transaction is discarded on close.
        log.warning("rollback of the view build failed: %s", exc)


_DROP = {
    "view": "DROP VIEW IF EXISTS ",
    "macro": "DROP MACRO IF EXISTS ",
    "table_macro": "DROP MACRO TABLE IF EXISTS ",
}


def _drop_stale(
    con: duckdb.DuckDBPyConnection, previous: Sequence[tuple[str, str]], models: Sequence[SqlModel]
) -> None:
    """Drop objects an earlier build made that no .sql file defines any more (or not as that kind)."""
    current = {(model.name, model.kind) for model in models}
    for name, kind in previous:
        if (name, kind) in current:
            continue
        if kind not in _DROP:
            log.warning("not dropping %s: unknown kind %r recorded in %s", name, kind, OBJECTS_TABLE)
            continue
        con.execute(_DROP[kind] + quote_identifier(name))


def _stored_objects(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    if not _table_exists(con, OBJECTS_TABLE):
        return []
    rows = con.sql("SELECT name, kind FROM _ledger_objects ORDER BY position").fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def _write_meta(con: duckdb.DuckDBPyConnection, plan: BuildPlan) -> None:
    con.execute(
        """
        CREATE OR REPLACE TABLE _ledger_meta (
            sql_hash VARCHAR NOT NULL,
            empty_sources VARCHAR[] NOT NULL,
            lake_location VARCHAR NOT NULL,
            schema_version INTEGER NOT NULL,
            built_at TIMESTAMPTZ NOT NULL
        )
        """
    )
    con.execute(
        "INSERT INTO _ledger_meta VALUES (?, ?, ?, ?, now())",
        [plan.sql_hash, list(plan.empty_sources), plan.lake_location, SCHEMA_VERSION],
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE _ledger_objects (
            position INTEGER NOT NULL,
            name VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            layer VARCHAR NOT NULL,
            file VARCHAR NOT NULL,
            description VARCHAR NOT NULL
        )
        """
    )
    con.executemany(
        "INSERT INTO _ledger_objects VALUES (?, ?, ?, ?, ?, ?)",
        [[i, m.name, m.kind, m.layer, m.path, m.description] for i, m in enumerate(plan.models)],
    )


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])


# -- opening the file ------------------------------------------------------------------------------
def open_warehouse(
    path: Path, *, read_only: bool, lock_wait: float = LOCK_WAIT_S
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file with the session time zone set to UTC.

    DuckDB allows one writing process or many reading ones. A build takes milliseconds, so a
    conflicting lock is retried for ``lock_wait`` seconds before it becomes a StorageError that
    says what to do.
    """
    deadline = time.monotonic() + lock_wait
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise StorageError(f"cannot open the warehouse {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StorageError(_lock_message(path, exc, read_only=read_only)) from exc
            time.sleep(0.05)
            continue
        # TIMESTAMPTZ values render in the session zone; the ledger is UTC end to end.
        con.execute("SET TimeZone = 'UTC'")
        return con


def _is_lock_conflict(exc: duckdb.IOException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _lock_message(path: Path, exc: duckdb.IOException, *, read_only: bool) -> str:
    holder = _LOCK_HOLDER.search(str(exc))
    by = f" (PID {holder.group(1)})" if holder else ""
    if read_only:
        return (
            f"{path.name} is being written by another process{by}, a view build or a duckdb shell "
            f"opened without -readonly; wait for it or close it, then rerun the query ({path})"
        )
    return (
        f"{path.name} is open in another process{by}; close it and rerun `runai-ledger build-views` "
        f"({path}; readers should open it read-only: duckdb -readonly)"
    )
