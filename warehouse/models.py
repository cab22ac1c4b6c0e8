"""What the warehouse is made of, as SQL text: the source views, the .sql files, and safe rendering.

Why a module of its own: turning the lake's layout and warehouse/sql/**.sql into statements is
pure text work with no database in sight. It holds the only code that puts a value into SQL (the
lake location, as a string literal) and the generated empty relations for sources without data
yet; warehouse/build.py's docstring explains both rules. Keeping it apart from applying the
statements lets it be read, reviewed and tested without opening a DuckDB file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from runai_extract.core.errors import ConfigError
from transforms.catalog import (
    AUDIT_EVENTS_TABLE,
    INGEST_RUNS_TABLE,
    METRIC_FETCHES_TABLE,
    ORG_TABLES,
    ORG_UNIT_METRIC_SAMPLES_TABLE,
    QUARANTINE_TABLE,
    RECONCILIATION_TABLE,
    RUNAI_REPORTS_TABLE,
    WORKLOAD_EVENTS_TABLE,
    WORKLOAD_HISTORY_TABLE,
    WORKLOAD_METRIC_SAMPLES_TABLE,
    WORKLOAD_SNAPSHOTS_TABLE,
)
from transforms.orgunits import ORG_KINDS
from transforms.schemas import STATE_DIR, UTC_TS
from transforms.tables import TableSpec

SQL_DIR = Path(__file__).parent / "sql"

ObjectKind = Literal["view", "macro", "table_macro"]

_NAME = r"[a-z_][a-z0-9_]*"
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_CREATE = re.compile(r"create\s+or\s+replace\s+(view|macro)\s+(" + _NAME + r")\b", re.IGNORECASE)
_TABLE_MACRO = re.compile(r"\s*\([^)]*\)\s*as\s+table\b", re.IGNORECASE)


# -- sources -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """A source view: the table (or, for watermarks, the files) it reads, and the columns it exposes.

    A Delta table's source reads exactly the data files of the table's current snapshot (a list
    rendered at build time), never a glob: a glob would also see files a compaction retired and
    files staged by a writer that has not committed yet.
    """

    view: str
    placeholder: str
    schema: pa.Schema
    table: TableSpec | None = None
    lake_dir: str = ""  # only for a source without a table: files matched by glob below it
    suffix: str = ".parquet"

    @property
    def union_placeholder(self) -> str:
        """Where the source's ``union_by_name`` goes: true only while its files' columns differ."""
        return f"{self.placeholder.removesuffix('_files')}_union_by_name"

    @property
    def glob(self) -> str:
        """The pattern below ``lake_dir``; '**' also matches zero directories, like list_files."""
        return f"**/*{self.suffix}"


def _with_columns(schema: pa.Schema, *extra: pa.Field) -> pa.Schema:
    return pa.schema([*schema, *extra])


def _table_source(name: str, spec: TableSpec) -> Source:
    return Source(f"src_{name}", f"{name}_files", _with_columns(spec.schema, _SOURCE_FILE), spec)


_SOURCE_FILE = pa.field("source_file", pa.string())

# The state mirrors are JSON written by runai_extract/ledger/watermarks.py; these are the columns
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

_SOURCES: tuple[Source, ...] = (
    _table_source("audit_events", AUDIT_EVENTS_TABLE),
    _table_source("ingest_runs", INGEST_RUNS_TABLE),
    _table_source("quarantine", QUARANTINE_TABLE),
    _table_source("reconciliation", RECONCILIATION_TABLE),
    Source("src_watermarks", "state_glob", WATERMARK_COLUMNS, None, STATE_DIR, ".json"),
    _table_source("workload_snapshots", WORKLOAD_SNAPSHOTS_TABLE),
    _table_source("workload_history", WORKLOAD_HISTORY_TABLE),
    _table_source("workload_events", WORKLOAD_EVENTS_TABLE),
    *(_table_source(kind, spec) for kind, spec in sorted(ORG_TABLES.items())),
    # GPU efficiency (issue 15)
    _table_source("workload_metric_samples", WORKLOAD_METRIC_SAMPLES_TABLE),
    _table_source("org_unit_metric_samples", ORG_UNIT_METRIC_SAMPLES_TABLE),
    _table_source("metric_fetches", METRIC_FETCHES_TABLE),
    _table_source("runai_consumption_reports", RUNAI_REPORTS_TABLE),
)
# In the order the .sql files apply (by name), so plans and reports list them the same way.
SOURCES: tuple[Source, ...] = tuple(sorted(_SOURCES, key=lambda source: source.view))


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


def render_template(template: str, literals: Mapping[str, bool | str | Sequence[str]]) -> str:
    """Replace every ``{{ name }}`` with ``literals[name]``: a boolean, a string literal, or a list of them."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in literals:
            raise ConfigError(f"unknown placeholder {{{{ {name} }}}} in warehouse SQL")
        value = literals[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return sql_string_literal(value)
        return "[" + ", ".join(sql_string_literal(item) for item in value) + "]"

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
    files = sorted(
        [*sql_dir.glob("*/*.sql"), *sql_dir.glob(f"*/*{_PER_ORG_KIND_SUFFIX}")],
        key=lambda p: p.relative_to(sql_dir).as_posix(),
    )
    if not files:
        raise ConfigError(f"no warehouse SQL files under {sql_dir}")
    models = sorted(
        (model for path in files for model in _models_of(path, sql_dir)),
        key=lambda model: model.path,
    )
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise ConfigError(f"warehouse SQL defines {model.name} twice (second in {model.path})")
        seen.add(model.name)
    missing = {source.view for source in SOURCES} - seen
    if missing:
        raise ConfigError(f"warehouse SQL has no file for the source view(s) {sorted(missing)}")
    return models


# A <name>.sql.per_org_kind file (src_{kind} in 10_sources, {kind}_history in 22_org_history, {kind}
# in 23_org) is one definition written out for every kind of org unit as <name>.sql: {kind} becomes
# the kind's name, {id_column} its id column. Both come from transforms.orgunits.ORG_KINDS (our own registry, checked to be plain
# identifiers), never from data. The suffix keeps the template itself from reading as a model.
_PER_ORG_KIND = "{kind}"
_PER_ORG_KIND_SUFFIX = ".sql.per_org_kind"


def _models_of(path: Path, sql_dir: Path) -> list[SqlModel]:
    """The model of one .sql file, or of a per-kind file one model per org-unit kind."""
    if not path.name.endswith(_PER_ORG_KIND_SUFFIX):
        return [_parse_model(path, sql_dir)]
    template = path.read_text(encoding="utf-8")
    models = []
    for kind in sorted(ORG_KINDS.values(), key=lambda k: k.name):
        names = {"{kind}": kind.name, "{id_column}": kind.id_column}
        if not all(re.fullmatch(_NAME, identifier) for identifier in names.values()):
            raise ConfigError(f"org kind {kind.name!r} / {kind.id_column!r} is not a plain identifier")
        text = template
        for placeholder, identifier in names.items():
            text = text.replace(placeholder, identifier)
        name = path.name.removesuffix(".per_org_kind").replace(_PER_ORG_KIND, kind.name)
        models.append(_parse_model(path.with_name(name), sql_dir, text))
    return models


def _parse_model(path: Path, sql_dir: Path, text: str | None = None) -> SqlModel:
    rel = path.relative_to(sql_dir).as_posix()
    text = path.read_text(encoding="utf-8") if text is None else text
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
