"""The one fixture the warehouse tests share: a warehouse built over the full fixture lake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.warehouse.fixtures import populate
from transforms.storage import Lake
from warehouse.build import build_views


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A warehouse over the full fixture lake; a quote and a snowman in the lake path on purpose."""
    root = tmp_path_factory.mktemp("populated")
    lake = Lake(str(root / 'it\'s a "lake" \u2603'))
    populate(lake)
    warehouse = root / "warehouse.duckdb"
    build_views(warehouse, lake)
    yield warehouse
