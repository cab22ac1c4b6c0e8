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
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import orjson

from runai_extract.core.errors import StorageError
from runai_extract.core.settings import Secret
from transforms.schemas import SCHEMA_VERSION
from transforms.storage import Lake
from transforms.tables import Tables
from warehouse import pseudonyms
from warehouse.connection import (
    LOCK_WAIT_S,
    STORAGE_VERSION,
    lake_connection,
    open_warehouse,
    readable_by_duckdb1,
    register_lake,
)
from warehouse.models import (
    SOURCES,
    SQL_DIR,
    SqlModel,
    empty_relation_sql,
    load_models,
    quote_identifier,
    render_template,
)

# Re-exported, so callers keep importing the whole build API from here.
from warehouse.models import WATERMARK_COLUMNS as WATERMARK_COLUMNS
from warehouse.models import ObjectKind as ObjectKind
from warehouse.models import Source as Source
from warehouse.models import duckdb_type as duckdb_type
from warehouse.models import sql_string_literal as sql_string_literal

log = logging.getLogger(__name__)

META_TABLE = "_ledger_meta"
OBJECTS_TABLE = "_ledger_objects"
# Bumped when the meta tables, the way statements are generated or the file's storage format
# change, to force a rebuild (2: files in DuckDB 1.x's format, see connection.STORAGE_VERSION).
_BUILD_FORMAT = 2


# -- planning and applying -------------------------------------------------------------------------
def _source_literals(
    lake: Lake, as_of: datetime | None, views: Collection[str] | None = None
) -> dict[str, bool | str | list[str]]:
    """What each source placeholder stands for: a table's live files, or a glob for the mirrors.

    ``views``: only the sources among these are read (the others' tables are not even opened).
    A table's ``..._union_by_name`` is false when the table is stamped uniform (every file has its
    columns): DuckDB then binds a query from one footer instead of all of them (Tables.uniform).
    """
    tables = Tables(lake)
    literals: dict[str, bool | str | list[str]] = {}
    for source in SOURCES:
        if views is not None and source.view not in views:
            continue
        if source.table is None:
            found = lake.list_files(source.lake_dir, source.suffix)
            literals[source.placeholder] = f"{lake.location(source.lake_dir)}/{source.glob}" if found else ""
            continue
        snapshot = tables.load_as_of(source.table, as_of) if as_of else tables.load(source.table)
        files = tables.live_files(source.table, snapshot=snapshot) if snapshot is not None else []
        literals[source.placeholder] = [tables.file_location(source.table, f.path) for f in files]
        literals[source.union_placeholder] = snapshot is None or not tables.uniform(source.table, snapshot)
    return literals


@dataclass(frozen=True)
class BuildPlan:
    """The exact statements a build would run against one lake, and their fingerprint."""

    models: tuple[SqlModel, ...]
    statements: tuple[str, ...]
    empty_sources: tuple[str, ...]
    lake_location: str
    sql_hash: str
    # The hash of everything but the source views' file lists: when only those changed (new commits),
    # replacing the source views is enough; every other view reads them by name at query time.
    defs_hash: str = ""

    def source_statements(self) -> dict[str, str]:
        sources = {s.view for s in SOURCES}
        return {m.name: s for m, s in zip(self.models, self.statements, strict=True) if m.name in sources}

    def apply_order(self) -> list[tuple[SqlModel, str]]:
        """Every statement in the order to run it: sources as typed empty relations first, real ones last.

        Why: DuckDB binds a view when it is created, and binding a view that reads a source
        reads the footer of every file in the source's list (union_by_name). Built on the real
        sources, each of the ~15 views above the audit log would read all of its files again, a
        cost that grows by a file per day of history. Built on empty relations of the very same
        columns and types (tests/warehouse/test_source_shapes.py holds them equal), the views bind
        in no time; each real source then replaces its stand-in once, and every view reads it by
        name at query time.
        """
        by_view = {s.view: s for s in SOURCES}
        first: list[tuple[SqlModel, str]] = []
        last: list[tuple[SqlModel, str]] = []
        for model, statement in zip(self.models, self.statements, strict=True):
            if model.name in by_view and model.name not in self.empty_sources:
                first.append((model, empty_relation_sql(by_view[model.name])))
                last.append((model, statement))
            else:
                first.append((model, statement))
        return first + last


@dataclass(frozen=True)
class BuildReport:
    """What build_views/ensure_views did; printed by the CLI, small enough for an XCom."""

    warehouse_path: Path
    objects: tuple[str, ...]
    empty_sources: tuple[str, ...]
    sql_hash: str
    rebuilt: bool
    replaced: tuple[str, ...] = ()  # a refresh that replaced only these source views

    def __str__(self) -> str:
        state = "rebuilt" if self.rebuilt else "already up to date"
        if self.replaced:
            state = f"refreshed ({len(self.replaced)} source view(s) read new table versions)"
        empty = f"; no data yet for {', '.join(self.empty_sources)}" if self.empty_sources else ""
        return f"{len(self.objects)} views and macros {state}{empty}"


def plan_build(
    lake: Lake,
    sql_dir: Path = SQL_DIR,
    *,
    as_of: datetime | None = None,
    only: Collection[str] | None = None,
) -> BuildPlan:
    """Render every statement for ``lake``: cheap (reads the .sql files and each table's snapshot).

    ``as_of`` renders the sources from each table as it stood at that moment (time travel).
    ``only`` keeps just these views and what they read, directly or not (in memory for ``status``:
    two views need four sources, not all thirteen tables and fifty statements).
    """
    models = tuple(load_models(sql_dir))
    if only is not None:
        models = _needed_by(models, set(only))
    names = {m.name for m in models}
    literals = _source_literals(lake, as_of, names)
    empty = tuple(s.view for s in SOURCES if s.view in names and not literals[s.placeholder])
    by_view = {s.view: s for s in SOURCES}
    statements = tuple(
        empty_relation_sql(by_view[m.name]) if m.name in empty else render_template(m.template, literals)
        for m in models
    )
    digest = hashlib.sha256(f"format {_BUILD_FORMAT}\n".encode())
    defs = hashlib.sha256(f"format {_BUILD_FORMAT}\nempty {sorted(empty)}\n{lake.location('')}\n".encode())
    sources = {s.view for s in SOURCES}
    for model, statement in zip(models, statements, strict=True):
        digest.update(f"\n-- {model.path}\n{statement}".encode())
        defs.update(f"\n-- {model.path}\n{model.template if model.name in sources else statement}".encode())
    return BuildPlan(models, statements, empty, lake.location(""), digest.hexdigest(), defs.hexdigest())


def _needed_by(models: tuple[SqlModel, ...], wanted: set[str]) -> tuple[SqlModel, ...]:
    """``wanted`` and every model their SQL names, transitively, in the original (build) order."""
    by_name = {m.name: m for m in models}
    unknown = wanted - set(by_name)
    if unknown:
        raise StorageError(f"no such view: {', '.join(sorted(unknown))}")
    needed: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        words = set(_WORD.findall(_COMMENT.sub("", by_name[name].template)))
        todo.extend(other for other in by_name if other in words and other not in needed)
    return tuple(m for m in models if m.name in needed)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT = re.compile(r"--[^\n]*")  # a view named in a comment is not read


def build_views(
    warehouse_path: Path,
    lake: Lake,
    *,
    sql_dir: Path = SQL_DIR,
    lock_wait: float = LOCK_WAIT_S,
    pseudonym_key: Secret | None = None,
) -> BuildReport:
    """(Re)create every view and macro in ``warehouse_path`` in one transaction.

    Views that an earlier build created but whose .sql file is gone are dropped in the same
    transaction, so a renamed view does not linger with stale columns. Raises StorageError when
    another process holds the file or a view cannot be built (the file is then left as it was).
    """
    plan = plan_build(lake, sql_dir)
    _apply(plan, warehouse_path, lock_wait, pseudonym_key)
    log.info("warehouse views built in %s (empty sources: %s)", warehouse_path, plan.empty_sources or "none")
    return _report(plan, warehouse_path, rebuilt=True)


def ensure_views(
    warehouse_path: Path,
    lake: Lake,
    *,
    sql_dir: Path = SQL_DIR,
    lock_wait: float = LOCK_WAIT_S,
    pseudonym_key: Secret | None = None,
) -> BuildReport:
    """Build the views only if the stored build differs from what the lake and the SQL call for.

    Called after every sync: when nothing changed it opens the file read-only for one small
    query and returns, so it neither takes the write lock nor disturbs readers. The pseudonym
    table also counts: a new key, or identities the table does not map yet, call for a build.
    """
    plan = plan_build(lake, sql_dir)
    stored = _stored_meta(warehouse_path, lock_wait)
    stale_pseudonyms = stored is not None and _pseudonyms_stale(warehouse_path, lock_wait, pseudonym_key)
    if stored is not None and stored[0] == plan.sql_hash and not stale_pseudonyms:
        return _report(plan, warehouse_path, rebuilt=False)
    if stored is not None and stored[1] == plan.defs_hash and not stale_pseudonyms:
        replaced = _replace_sources(plan, warehouse_path, lock_wait, stored[2])
        return BuildReport(
            warehouse_path,
            tuple(m.name for m in plan.models),
            plan.empty_sources,
            plan.sql_hash,
            True,
            replaced,
        )
    _apply(plan, warehouse_path, lock_wait, pseudonym_key)
    log.info(
        "warehouse views rebuilt in %s (empty sources: %s)", warehouse_path, plan.empty_sources or "none"
    )
    return _report(plan, warehouse_path, rebuilt=True)


def views_as_of(lake: Lake, as_of: datetime, *, sql_dir: Path = SQL_DIR) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding every view over the tables as they stood at ``as_of``.

    "The ledger as of the day the auditor asked": each source reads the files of its table's
    version at that moment (within the vacuum retention), and every view above is the same SQL.
    Nothing is written; the warehouse file is not touched.
    """
    plan = plan_build(lake, sql_dir, as_of=as_of)
    con = lake_connection(lake)
    pseudonyms.prepare(con)
    execute_plan(con, plan)
    return con


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


def _stored_meta(warehouse_path: Path, lock_wait: float) -> tuple[str, str, dict[str, str]] | None:
    """(sql_hash, defs_hash, source statement hashes) of the last build, or None."""
    if not warehouse_path.exists():
        return None
    con = open_warehouse(warehouse_path, read_only=True, lock_wait=lock_wait)
    try:
        if not _table_exists(con, META_TABLE):
            return None
        columns = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [META_TABLE]
            ).fetchall()
        }
        if "defs_hash" not in columns:
            return None  # built by an older version: rebuild everything once
        rows = con.sql("SELECT sql_hash, defs_hash, source_hashes FROM _ledger_meta").fetchall()
        if not rows:
            return None
        return str(rows[0][0]), str(rows[0][1]), dict(orjson.loads(rows[0][2]))
    finally:
        con.close()


def _replace_sources(
    plan: BuildPlan, warehouse_path: Path, lock_wait: float, stored: dict[str, str]
) -> tuple[str, ...]:
    """Replace only the source views whose file lists changed, in one transaction."""
    changed = {name: s for name, s in plan.source_statements().items() if stored.get(name) != _hash(s)}
    by_name = {m.name: m for m in plan.models}
    con = open_warehouse(warehouse_path, read_only=False, lock_wait=lock_wait)
    try:
        register_lake(con, plan.lake_location)
        with _transaction(con):
            for name, statement in sorted(changed.items()):
                _execute_model(con, by_name[name], statement)
            _write_meta(con, plan)
    finally:
        con.close()
    log.info("warehouse source views refreshed in %s: %s", warehouse_path, ", ".join(sorted(changed)))
    return tuple(sorted(changed))


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: a reader sees the old set of views or the new one, never a mix."""
    con.begin()
    try:
        yield
        con.commit()
    except BaseException:
        _rollback(con)
        raise


def _hash(statement: str) -> str:
    return hashlib.sha256(statement.encode()).hexdigest()


def _pseudonyms_stale(warehouse_path: Path, lock_wait: float, key: Secret | None) -> bool:
    con = open_warehouse(warehouse_path, read_only=True, lock_wait=lock_wait)
    try:
        return pseudonyms.is_stale(con, key)
    finally:
        con.close()


def _apply(plan: BuildPlan, warehouse_path: Path, lock_wait: float, key: Secret | None = None) -> None:
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = _open_for_build(warehouse_path, lock_wait)
    try:
        register_lake(con, plan.lake_location)  # the views read the lake's files as they are created
        previous = _stored_objects(con)
        with _transaction(con):
            _drop_stale(con, previous, plan.models)
            pseudonyms.prepare(con)  # the pseudonymised views read these tables
            execute_plan(con, plan)
            pseudonyms.refresh(con, key)
            _write_meta(con, plan)
    finally:
        con.close()


def _open_for_build(warehouse_path: Path, lock_wait: float) -> duckdb.DuckDBPyConnection:
    """Open the file for a build, first replacing one that DuckDB 1.x clients cannot read.

    A file written by an earlier version of ours is in DuckDB 2.0's own format; everything in it
    is rebuilt by this build (views, macros, the pseudonym table from the lake and the key), so
    the file is recreated rather than converted. Readers that still hold the old file keep
    reading it until they close it.
    """
    con = open_warehouse(warehouse_path, read_only=False, lock_wait=lock_wait)
    if readable_by_duckdb1(con):
        return con
    log.info("recreating %s in storage format %s for DuckDB 1.x clients", warehouse_path, STORAGE_VERSION)
    con.close()
    for path in (warehouse_path, warehouse_path.with_name(warehouse_path.name + ".wal")):
        path.unlink(missing_ok=True)
    return open_warehouse(warehouse_path, read_only=False, lock_wait=lock_wait)


def execute_plan(con: duckdb.DuckDBPyConnection, plan: BuildPlan) -> None:
    """Run the plan's statements in :meth:`BuildPlan.apply_order`, checking each real source's shape.

    A real source must expose exactly the columns and types of the stand-in the views were bound
    to; if it did not, a view would fail (or change) only when queried, so it is refused here.
    """
    stand_ins: dict[str, list[tuple[str, str]]] = {}
    for model, statement in plan.apply_order():
        if model.name in stand_ins:
            _execute_model(con, model, statement)
            if _columns(con, model.name) != stand_ins[model.name]:
                raise StorageError(
                    f"cannot build view {model.name} ({model.path}): its columns differ from the table's "
                    "schema in transforms/catalog.py that the views were built on; the warehouse was left "
                    "as it was"
                )
            continue
        _execute_model(con, model, statement)
        if model.name in _SOURCE_VIEWS and model.name not in plan.empty_sources:
            stand_ins[model.name] = _columns(con, model.name)


_SOURCE_VIEWS = frozenset(s.view for s in SOURCES)


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
        [view],
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


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
            defs_hash VARCHAR NOT NULL,
            source_hashes VARCHAR NOT NULL,
            empty_sources VARCHAR[] NOT NULL,
            lake_location VARCHAR NOT NULL,
            schema_version INTEGER NOT NULL,
            built_at TIMESTAMPTZ NOT NULL
        )
        """
    )
    con.execute(
        "INSERT INTO _ledger_meta VALUES (?, ?, ?, ?, ?, ?, now())",
        [
            plan.sql_hash,
            plan.defs_hash,
            orjson.dumps({name: _hash(s) for name, s in plan.source_statements().items()}).decode(),
            list(plan.empty_sources),
            plan.lake_location,
            SCHEMA_VERSION,
        ],
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
