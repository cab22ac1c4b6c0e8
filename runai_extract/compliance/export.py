"""Export bundles: "give me exactly this period in files I can hand over".

A bundle holds the rows of the chosen compliance views for [start, end), sorted by
(event_time, event_id), one file per view, plus manifest.json and SHA256SUMS (layout in
runai_extract/bundles.py). Everything in it is a pure function of the lake's content, the period
and the code: no "now" anywhere, sorted keys, fixed Parquet writer options. So the same period
exported twice gives byte-identical files, and a bundle can be re-cut later and compared.

The SQL of each view's export is a file in warehouse/exports/ with the period bound as
parameters; the manifest carries that SQL and the bound values verbatim, the coverage of the
period (runai_extract/period_coverage.py) and the manifest chain head the bundle was cut from.
A period that is not completely ingested is exported with that said loudly, or refused with
``refuse_incomplete`` before a single file is written.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from runai_extract.compliance.bundles import MANIFEST, SUMS, bundle_file_name, manifest_bytes, sums_bytes
from runai_extract.compliance.period_coverage import EXPORT_SQL_DIR, PeriodCoverage, period_coverage, sql_text
from runai_extract.core.errors import ConfigError, LedgerError, StorageError
from runai_extract.core.settings import Settings
from runai_extract.core.times import format_utc
from runai_extract.ledger.manifests import chain_head, code_version
from transforms.catalog import ALL_TABLES
from transforms.schemas import SCHEMA_VERSION
from transforms.storage import Lake
from transforms.tables import Tables
from transforms.writer import WRITER_OPTIONS
from warehouse.build import ensure_views
from warehouse.connection import open_warehouse
from warehouse.query import render

BUNDLE_FORMAT = 1
FORMATS = ("csv", "jsonl", "parquet")


class IncompletePeriodError(LedgerError):
    """The period has gaps or unsealed hours and the caller asked to refuse such an export."""


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the period, the file format, and which views (empty: all of them)."""

    start: datetime
    end: datetime
    fmt: str
    views: tuple[str, ...] = ()
    refuse_incomplete: bool = False
    stream: str = "audit"


@dataclass(frozen=True)
class Bundle:
    """What an export wrote: where, the rows per file, the coverage, and the manifest itself."""

    location: str
    rows: dict[str, int]
    coverage: PeriodCoverage
    manifest: dict[str, Any]


def compliance_views() -> list[str]:
    """Views that have an export SQL file (warehouse/exports/compliance_*.sql)."""
    return sorted(p.stem for p in EXPORT_SQL_DIR.glob("compliance_*.sql"))


def export_compliance(
    settings: Settings,
    request: ExportRequest,
    out: Lake,
    prefix: str = "",
    attachments: Mapping[str, bytes] | None = None,
) -> Bundle:
    """Cut a bundle of ``request`` from the warehouse into ``out`` under ``prefix``.

    ``attachments`` (file name -> bytes, e.g. the period's HTML report) are written beside the
    view files, listed in manifest.json and covered by SHA256SUMS like them; they must be as
    deterministic as the views for the bundle to stay byte-identical.
    Raises IncompletePeriodError (nothing written) when the period is not complete and
    ``request.refuse_incomplete`` is set; ConfigError for a bad format, view, period or attachment name.
    """
    views = _check(request)
    extra = _check_attachments(attachments or {}, {bundle_file_name(v, request.fmt) for v in views})
    lake = Lake(settings.lake_uri)
    ensure_views(settings.warehouse_path, lake)
    con = open_warehouse(settings.warehouse_path, read_only=True)
    try:
        coverage = period_coverage(con, request.stream, request.start, request.end)
        if request.refuse_incomplete and not coverage.complete:
            raise IncompletePeriodError(
                f"period {format_utc(request.start)} .. {format_utc(request.end)} is {coverage.summary()}; "
                "nothing was written (drop --refuse-incomplete to export it with that noted)"
            )
        params = {"start": request.start, "end": request.end}
        tables = {view: con.sql(sql_text(view), params=params).to_arrow_table() for view in views}
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"export could not read the lake ({first}); nothing was written. Run `runai-ledger verify`"
        ) from exc
    finally:
        con.close()
    head = chain_head(lake, request.stream)
    files = {
        bundle_file_name(view, request.fmt): serialise(table, request.fmt) for view, table in tables.items()
    }
    doc = {
        "bundle_format": BUNDLE_FORMAT,
        "kind": "compliance",
        "period": {"start": format_utc(request.start), "end": format_utc(request.end)},
        "format": request.fmt,
        "stream": request.stream,
        "views": [_view_entry(view, request, tables[view]) for view in views],
        "coverage": coverage.to_dict(),
        "chain_head": {"stream": head.stream, "seq": head.seq, "sha256": head.sha256} if head else None,
        # The table versions behind the views, so the bundle can be re-derived (query --as-of) later.
        "table_versions": table_versions(lake),
        "code_version": code_version(),
        "schema_version": SCHEMA_VERSION,
    }
    if extra:
        doc["attachments"] = [
            {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in sorted(extra.items())
        ]
        files.update(extra)
    files[MANIFEST] = manifest_bytes(doc)
    _refuse_foreign_files(out, prefix, set(files) | {SUMS})
    for name, data in sorted(files.items()):
        out.write_bytes(prefix + name, data)
    out.write_bytes(prefix + SUMS, sums_bytes(files))  # last: a bundle with SHA256SUMS is whole
    rows = {bundle_file_name(v, request.fmt): tables[v].num_rows for v in views}
    return Bundle(out.location(prefix.rstrip("/")), rows, coverage, doc)


def serialise(table: pa.Table, fmt: str) -> bytes:
    """The bytes of one exported file: RFC 4180 CSV, JSON Lines, or Parquet with fixed options."""
    if fmt == "parquet":
        buffer = io.BytesIO()
        pq.write_table(table.replace_schema_metadata(None), buffer, **WRITER_OPTIONS)
        return buffer.getvalue()
    text = io.StringIO(newline="")
    render(table, "csv" if fmt == "csv" else "json", text)
    return text.getvalue().encode("utf-8")


def table_versions(lake: Lake) -> dict[str, int]:
    """The current version of every table of the lake (what the views were just refreshed to)."""
    tables = Tables(lake)
    versions = {}
    for spec in ALL_TABLES:
        table = tables.load(spec)
        if table is not None:
            versions[spec.name] = table.version()
    return versions


def _view_entry(view: str, request: ExportRequest, table: pa.Table) -> dict[str, Any]:
    return {
        "view": view,
        "file": bundle_file_name(view, request.fmt),
        "rows": table.num_rows,
        "sql": sql_text(view),
        "parameters": {"start": format_utc(request.start), "end": format_utc(request.end)},
        "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
    }


def _check(request: ExportRequest) -> list[str]:
    if request.fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {request.fmt!r})")
    if request.end <= request.start:
        raise ConfigError(
            f"--start must be before --end (got {format_utc(request.start)} .. {format_utc(request.end)})"
        )
    known = compliance_views()
    unknown = sorted(set(request.views) - set(known))
    if unknown:
        raise ConfigError(f"unknown view(s) {', '.join(unknown)}; choose from: {', '.join(known)}")
    return sorted(set(request.views)) if request.views else known


def _check_attachments(attachments: Mapping[str, bytes], view_files: set[str]) -> dict[str, bytes]:
    """Plain file names that collide with nothing the bundle writes itself."""
    for name in attachments:
        if (
            not name
            or "/" in name
            or "\\" in name
            or name.startswith(".")
            or name in view_files | {MANIFEST, SUMS}
        ):
            raise ConfigError(
                f"attachment name {name!r} must be a plain file name not used by the bundle itself"
            )
    return dict(attachments)


def _refuse_foreign_files(out: Lake, prefix: str, ours: set[str]) -> None:
    """An output directory may hold only an earlier bundle's files, never anything of someone else's."""
    existing = (
        {p[len(prefix) :] for p in out.list_files(prefix.rstrip("/"), "")}
        if prefix
        else set(out.list_files("", ""))
    )
    foreign = sorted(p for p in existing if p not in ours and ".tmp-" not in p)
    if foreign:
        raise ConfigError(
            f"the output directory {out.location(prefix.rstrip('/'))} already holds other files "
            f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); choose an empty directory"
        )


def scheduled_bundle(
    settings: Settings,
    start: datetime,
    end: datetime,
    label: str,
    fmt: str = "parquet",
    attachments: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """A scheduled bundle in the lake (exports/compliance/<label>/): re-cut until its period is complete.

    Airflow calls this on every audit update; a bundle whose manifest already says "complete"
    is left alone (a sealed period cannot change), anything else is cut again, byte-identical
    when nothing changed. Returns a small summary for XCom.
    """
    lake = Lake(settings.lake_uri)
    prefix = f"exports/compliance/{label}/"
    stored = lake.read_bytes(prefix + MANIFEST)
    if stored is not None and orjson.loads(stored).get("coverage", {}).get("status") == "complete":
        return {"bundle": lake.location(prefix.rstrip("/")), "skipped": "already complete"}
    bundle = export_compliance(settings, ExportRequest(start, end, fmt), lake, prefix, attachments)
    return {"bundle": bundle.location, "rows": bundle.rows, "coverage": bundle.manifest["coverage"]["status"]}
