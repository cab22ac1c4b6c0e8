"""Opening warehouse.duckdb: the session settings every connection needs, and lock conflicts.

Why a module of its own: both the view build (a writer) and queries (readers) open the same file,
and DuckDB lets one writing process or many reading ones hold it. Waiting briefly for a conflicting
lock and, failing that, telling the user which process holds it and what to do is one job, shared
by warehouse/build.py and warehouse/query.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from runai_extract.core.errors import ConfigError, StorageError

if TYPE_CHECKING:  # `runai-ledger query` must not pay for pyarrow (transforms.storage imports it)
    from transforms.object_store import ObjectStore
    from transforms.storage import Lake

LOCK_WAIT_S = 2.0
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")

# The storage format a new warehouse file is written in. DuckDB 2.0 writes format 69 by default,
# which DuckDB 1.x clients (the PyPI duckdb-cli 1.5.6, DBeaver's driver) refuse to open ("we can
# only read versions between 64 and 68"). The file holds view definitions and two small tables,
# so nothing is lost by the older format. docs/duckdb2.md.
STORAGE_VERSION = "v1.5.0"


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
            # The setting only decides the format of a file this call creates; see storage_version.
            config: dict[str, str | bool | int | float | list[str]] = (
                {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
            )
            con = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise StorageError(f"cannot open the warehouse {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StorageError(_lock_message(path, exc, read_only=read_only)) from exc
            time.sleep(0.05)
            continue
        # TIMESTAMPTZ values render in the session zone; the ledger is UTC end to end.
        con.execute("SET TimeZone = 'UTC'")
        register_lake(con, _built_for(con))
        return con


def lake_connection(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (UTC) that can read ``lake``'s files wherever the lake is."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    register_lake(con, lake.location(""), lake.store)
    return con


def register_lake(con: duckdb.DuckDBPyConnection, location: str, store: ObjectStore | None = None) -> None:
    """Let ``con`` read files under ``location``: nothing to do locally; s3:// needs a filesystem.

    DuckDB reads s3:// through its httpfs extension, which it downloads on first use; offline (and
    on workers without egress) there is none, so an fsspec filesystem (s3fs) configured from the
    same AWS variables as the writers is registered instead. Where httpfs is already installed it
    is used, with the credentials in a temporary (in-memory) secret.
    """
    from transforms.object_store import ObjectStore, is_s3

    if not is_s3(location):
        return
    if "s3" in con.list_filesystems() or _httpfs_loaded(con):
        return  # already registered on this connection
    store = store if store is not None else ObjectStore.from_env()
    # Never download an extension mid-query: no network is the normal case on a locked-down worker.
    con.execute("SET autoinstall_known_extensions = false")
    try:
        con.register_filesystem(store.fsspec_fs())
        return
    except ConfigError:
        if not _httpfs_installed(con):
            raise
    con.execute("LOAD httpfs")
    _create_s3_secret(con, store)


def _httpfs_loaded(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchall()
    return bool(rows and rows[0][0])


def _httpfs_installed(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT installed FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchall()
    return bool(rows and rows[0][0])


def _create_s3_secret(con: duckdb.DuckDBPyConnection, store: ObjectStore) -> None:
    """A temporary S3 secret for httpfs. DDL takes no parameters; values are quoted, never echoed."""
    from urllib.parse import urlsplit

    from warehouse.models import sql_string_literal

    parts = urlsplit(store.endpoint_url) if store.endpoint_url else None
    fields = {
        "KEY_ID": store.access_key_id,
        "SECRET": store.secret_access_key.reveal(),
        "SESSION_TOKEN": store.session_token.reveal(),
        "REGION": store.region or "us-east-1",
        "ENDPOINT": parts.netloc if parts else "",
    }
    body = ", ".join(f"{k} {sql_string_literal(v)}" for k, v in fields.items() if v)
    extra = ", URL_STYLE 'path', USE_SSL false" if parts and parts.scheme == "http" else ""
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET runai_ledger_lake (TYPE s3, {body}{extra})")
    except duckdb.Error:
        # The statement holds the secret key: report that it failed, not what it said.
        raise ConfigError("DuckDB's httpfs refused the S3 settings (check the AWS_* variables)") from None


def _built_for(con: duckdb.DuckDBPyConnection) -> str:
    """The lake location the file's views were built for ('' before the first build)."""
    try:
        rows = con.execute("SELECT lake_location FROM _ledger_meta").fetchall()
    except duckdb.Error:  # no build yet, or one from before the column existed (it gets rebuilt)
        return ""
    return str(rows[0][0]) if rows else ""


def storage_version(con: duckdb.DuckDBPyConnection) -> str:
    """The storage format the open database file was created in, e.g. ``v1.5.0+``.

    A file's format is fixed at creation: opening an existing file with another
    ``storage_compatibility_version`` does not convert it.
    """
    rows = con.sql(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] is not None else ""


def readable_by_duckdb1(con: duckdb.DuckDBPyConnection) -> bool:
    return storage_version(con).removesuffix("+") == STORAGE_VERSION


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
