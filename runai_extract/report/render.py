"""``render_report``: the lake and a period in, the bytes of one HTML page out.

Why bytes: the same function feeds `runai-ledger report --out` and the monthly compliance
bundle, which lists the page in its manifest and SHA256SUMS; a page that is a pure function of
the lake and the period can be re-cut later and compared byte for byte.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runai_extract.core.errors import StorageError
from runai_extract.core.settings import Settings
from runai_extract.report.data import ReportData, gather
from runai_extract.report.page import render_page
from transforms.storage import Lake
from warehouse.analytics import Ledger
from warehouse.build import ensure_views


@dataclass(frozen=True)
class Rendered:
    """A rendered page with what the command line tells its user about it."""

    html: bytes
    data: ReportData
    seconds: float


def render_report(
    settings: Settings, start: datetime, end: datetime, *, key: bytes | None = None
) -> Rendered:
    """Refresh the views if the lake moved on, gather the period's figures, and render the page.

    ``key`` is the HMAC key of the signed chain heads; without it verify checks chains and files
    and reports a signed head as "not checked".
    """
    started = time.monotonic()
    lake = Lake(settings.lake_uri)
    ensure_views(settings.warehouse_path, lake, pseudonym_key=settings.pseudonym_key)
    data = gather(Ledger(settings.warehouse_path, single_thread=True), lake, start, end, key)
    html = render_page(data).encode("utf-8")
    return Rendered(html, data, time.monotonic() - started)


def write_page(path: Path, html: bytes) -> None:
    """Write through a temporary name and rename, so a reader never opens half a page."""
    path = path.expanduser()
    if path.is_dir():
        raise StorageError(f"--out {path} is a directory; give a file name such as {path / 'report.html'}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(html)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
