"""A small simulated tenant with workloads, and helpers that read the warehouse the way a user does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runai_extract.core.settings import Settings
from runai_extract.fake import FakeConfig, FakeControlPlane, FaultConfig
from tests.conftest import fake_config, settings_for
from transforms.catalog import STREAM_TABLES
from transforms.storage import Lake
from transforms.tables import Tables
from warehouse.build import build_views

# GPU-hours are sums of a few thousand float64 products of seconds and GPU counts: the rounding
# error is ~1e-15 relative per operation, so 1e-9 leaves six orders of margin for the arithmetic
# while a real error (one GPU-second on a 1000 GPU-hour key is 3e-7) fails.
GPU_HOURS_REL = 1e-9


def usage_config(faults: FaultConfig | None = None, events_per_day: int = 400) -> FakeConfig:
    """Two audit days of 400 events: ~170 workloads, quick to sync with their history and events."""
    return fake_config(days=2, events_per_day=events_per_day, faults=faults, seed=23)


@pytest.fixture
def usage_fake(start_fake: Callable[..., FakeControlPlane]) -> FakeControlPlane:
    return start_fake(usage_config())


def views(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Build the views over the lake and open them (UTC session, as the CLI does)."""
    build_views(settings.warehouse_path, Lake(settings.lake_uri))
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def lake_files(home: Path) -> list[str]:
    """Data files the usage streams' tables hold now (run records, manifests and state excluded)."""
    tables = Tables(Lake(str(home / "lake")))
    specs = [*STREAM_TABLES["workloads"], *STREAM_TABLES["org"]]
    return sorted(f"{spec.name}/{f.path}" for spec in specs for f in tables.live_files(spec))


__all__ = ["GPU_HOURS_REL", "lake_files", "rows", "settings_for", "usage_config", "views"]
