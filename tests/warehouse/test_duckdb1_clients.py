"""warehouse.duckdb opens in a stock DuckDB 1.x client, and every view answers there as it does here.

DuckDB 2.0 writes storage format 69 by default, which the PyPI ``duckdb-cli`` 1.5.6 (and DBeaver's
1.x driver) refuse to open. The build writes the older format, and the views must avoid SQL that
only 2.0 parses. This test syncs a small simulated tenant (audit, org units, workloads), builds
the views with a pseudonym key, then runs the real 1.5.6 CLI (a dev dependency) from another
directory against every view and compares its row count with DuckDB 2.0's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from runai_extract.audit.sync import sync_audit
from runai_extract.core.settings import Secret
from runai_extract.fake import FakeControlPlane
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.workloads import sync_workloads
from tests.conftest import FAKE_NOW, fake_config, settings_for
from transforms.storage import Lake
from warehouse.build import build_views, ensure_views
from warehouse.connection import STORAGE_VERSION

CLI_VERSION = "v1.5.6"


@pytest.fixture(scope="module")
def duckdb1() -> str:
    """The DuckDB 1.5 command line installed next to this interpreter by the dev extra."""
    found = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    assert found, "the duckdb 1.x CLI is missing: pip install -e '.[dev]' (it brings duckdb-cli==1.5.6)"
    version = subprocess.run([found, "-version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith(CLI_VERSION), version
    return found


def _cli(duckdb1: str, warehouse: Path, sql: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [duckdb1, "-readonly", "-csv", "-noheader", str(warehouse), "-c", sql],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def _views(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    return [str(name) for (name,) in names]


def _every_row(view: str) -> str:
    """Count a view's rows with SELECT * inside, so every column is bound and computed.

    View names come from duckdb_views() of our own build; identifiers cannot be bound parameters.
    """
    return f'SELECT count(*) FROM (SELECT * FROM "{view}")'  # noqa: S608


def _count(warehouse: Path, view: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.sql(_every_row(view)).fetchall()[0][0])


def test_every_view_answers_in_the_duckdb_1_5_cli(
    duckdb1: str, start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(fake_config(days=2, events_per_day=300, seed=23))
    settings = settings_for(fake, tmp_path / "home", pseudonym_key="k" * 32)
    now = FAKE_NOW + timedelta(minutes=5)
    sync_audit(settings, now=now)
    sync_org(settings)
    sync_workloads(settings)
    warehouse = settings.warehouse_path
    build_views(warehouse, Lake(settings.lake_uri), pseudonym_key=Secret("k" * 32))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    views = _views(warehouse)
    assert len(views) > 40 and "audit_events" in views and "audit_events_pseudonymised" in views
    answered: dict[str, int] = {}
    for view in views:
        result = _cli(duckdb1, warehouse, _every_row(view), elsewhere)
        assert result.returncode == 0, f"{view}: {result.stderr.strip()}"
        answered[view] = int(result.stdout.strip())
    assert answered == {view: _count(warehouse, view) for view in views}
    assert (
        answered["audit_events"] > 0 and answered["workloads"] > 0 and answered["workload_gpu_intervals"] > 0
    )


def test_a_warehouse_from_duckdb_2_format_is_recreated_readable(duckdb1: str, tmp_path: Path) -> None:
    """Files written before this change (DuckDB 2.0's own format) are replaced on the next build."""
    warehouse, lake = tmp_path / "warehouse.duckdb", Lake(str(tmp_path / "lake"))
    with duckdb.connect(str(warehouse)) as con:  # what an older build left: format 69
        con.execute("CREATE TABLE leftover (x INTEGER)")
    refused = _cli(duckdb1, warehouse, "SELECT 1", tmp_path)
    assert refused.returncode != 0 and "version number" in refused.stderr
    report = ensure_views(warehouse, lake)
    assert report.rebuilt
    with duckdb.connect(str(warehouse), read_only=True) as con:
        version = con.sql(
            "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()[0][0]
    assert version.removesuffix("+") == STORAGE_VERSION
    opened = _cli(duckdb1, warehouse, "SELECT count(*) FROM audit_events", tmp_path)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == "0"
