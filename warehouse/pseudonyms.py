"""Keyed pseudonyms for subjects and source IPs: a small table the pseudonymised views join on.

Why a table built here and not a UDF or ingest-time columns (docs/privacy.md has the long form):
DuckDB has no keyed HMAC, and a Python UDF would exist only on connections we open, so the views
would break in ``duckdb -readonly`` and every BI tool. Pseudonymising at ingest would put
pseudonyms into the immutable Parquet record and make a key rotation a rewrite of the lake.
Instead, every view build computes ``HMAC-SHA256(key, kind NUL value)`` in Python for each
distinct subject and source IP and stores ``(kind, identity_sha256, pseudonym)`` in
``_pseudonyms``. The key stays in process memory (a Secret, never logged); the DuckDB file holds
pseudonyms, a key id (an HMAC of a fixed label, which cannot be turned back into the key) and
unkeyed digests of identities as the join key, never the identities or the key.

The ids of user, application and login entities (the target of "who changed which account")
are identities too: they are mapped in the subject domain, so an account that acts and is acted
upon carries one pseudonym in both columns; any entity id equal to a subject is replaced too.

Without a key the tables exist but are empty and ``_pseudonym_meta.keyed`` is false, so the
pseudonymised views still build and refuse every query with a message saying what to set.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import duckdb

from runai_extract.core.settings import Secret

log = logging.getLogger(__name__)

KEY_ENV = "RUNAI_LEDGER_PSEUDONYM_KEY"
PSEUDONYM_HEX = 20  # 80 bits: collisions are negligible for any tenant's number of users and IPs
_PREFIX = {"subject": "sub", "source_ip": "ip"}  # so a pseudonym says what it stands for
_KEY_ID_LABEL = b"runai-ledger pseudonym key id v1"


def pseudonym(key: Secret, kind: str, value: str) -> str:
    """The stable pseudonym of ``value``; ``kind`` separates domains (a subject is never an IP's twin)."""
    mac = hmac.new(key.reveal().encode(), f"{kind}\x00{value}".encode(), hashlib.sha256)
    return f"{_PREFIX.get(kind, kind)}_{mac.hexdigest()[:PSEUDONYM_HEX]}"


def key_id(key: Secret) -> str:
    """A short fingerprint naming which key made the pseudonyms (for rotation), revealing nothing of it."""
    return hmac.new(key.reveal().encode(), _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:12]


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Create the (empty) tables the pseudonymised views read, so those views can be created."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS _pseudonyms (
            kind VARCHAR NOT NULL,
            identity_sha256 VARCHAR NOT NULL,
            pseudonym VARCHAR NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS _pseudonym_meta (
            keyed BOOLEAN NOT NULL,
            key_id VARCHAR,
            identities BIGINT NOT NULL,
            built_at TIMESTAMPTZ NOT NULL
        )
        """
    )
    if not con.execute("SELECT count(*) FROM _pseudonym_meta").fetchall()[0][0]:
        con.execute("INSERT INTO _pseudonym_meta VALUES (false, NULL, 0, now())")


def refresh(con: duckdb.DuckDBPyConnection, key: Secret | None) -> int:
    """Recompute the table from the identities src_audit_events holds now; returns how many it maps."""
    prepare(con)
    con.execute("DELETE FROM _pseudonyms")
    con.execute("DELETE FROM _pseudonym_meta")
    if not key:
        con.execute("INSERT INTO _pseudonym_meta VALUES (false, NULL, 0, now())")
        log.info("no %s set: the pseudonymised views are built but refuse queries", KEY_ENV)
        return 0
    rows = [
        (kind, hashlib.sha256(value.encode()).hexdigest(), pseudonym(key, kind, value))
        for kind, value in _identities(con)
    ]
    if rows:
        con.executemany("INSERT INTO _pseudonyms VALUES (?, ?, ?)", rows)
    con.execute("INSERT INTO _pseudonym_meta VALUES (true, ?, ?, now())", [key_id(key), len(rows)])
    return len(rows)


def is_stale(con: duckdb.DuckDBPyConnection, key: Secret | None) -> bool:
    """True when the stored table was made with another key (or none) or misses a newer identity."""
    if not _has_tables(con):
        return True
    keyed, stored_id = con.execute("SELECT keyed, key_id FROM _pseudonym_meta").fetchall()[0]
    if not key:
        return bool(keyed)
    if not keyed or stored_id != key_id(key):
        return True
    unmapped = con.execute(
        """
        WITH ids AS (
            SELECT DISTINCT 'subject' AS kind, subject AS value FROM src_audit_events
            WHERE subject IS NOT NULL
            UNION
            SELECT DISTINCT 'subject', entity_id FROM src_audit_events
            WHERE entity_id IS NOT NULL AND entity_kind(entity_type) IN ('user', 'application', 'login')
            UNION
            SELECT DISTINCT 'source_ip', source_ip FROM src_audit_events WHERE source_ip IS NOT NULL
        )
        SELECT count(*) FROM ids ANTI JOIN _pseudonyms AS p
            ON p.kind = ids.kind AND p.identity_sha256 = sha256(ids.value)
        """
    ).fetchall()
    return bool(unmapped[0][0])


def _identities(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        """
        SELECT DISTINCT 'subject', subject FROM src_audit_events WHERE subject IS NOT NULL
        UNION
        SELECT DISTINCT 'subject', entity_id FROM src_audit_events
        WHERE entity_id IS NOT NULL AND entity_kind(entity_type) IN ('user', 'application', 'login')
        UNION
        SELECT DISTINCT 'source_ip', source_ip FROM src_audit_events WHERE source_ip IS NOT NULL
        """
    ).fetchall()
    return [(str(kind), str(value)) for kind, value in rows]


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
        "AND table_name IN ('_pseudonyms', '_pseudonym_meta')"
    ).fetchall()
    return int(rows[0][0]) == 2
