"""The usage streams are tamper-evident too: every run is manifested and `verify` walks their chains."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.verify import verify_lake
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.workloads import sync_workloads
from tests.usage.conftest import settings_for
from transforms.catalog import ORG_TABLES, WORKLOAD_SNAPSHOTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables


def _problems(lake: Lake) -> dict[str, list[tuple[str, str]]]:
    return {r.stream: [(p.kind, p.path) for p in r.problems] for r in verify_lake(lake, None, None)}


def test_workload_and_org_runs_verify_clean_and_a_changed_snapshot_is_named(
    usage_fake: FakeControlPlane, tmp_path: Path
) -> None:
    settings = settings_for(usage_fake, tmp_path)
    sync_org(settings)
    sync_workloads(settings)
    usage_fake.simulator.advance(timedelta(hours=1))
    sync_workloads(settings)
    lake = Lake(settings.lake_uri)
    assert _problems(lake) == {"audit": [], "ledger": [], "org": [], "workloads": []}

    tables = Tables(lake)
    snapshot = f"workload_snapshots/{tables.live_files(WORKLOAD_SNAPSHOTS_TABLE)[0].path}"
    path = Path(lake.full_path(snapshot))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    # A commit made outside the ledger (say, a notebook appending to the table): no manifest names it.
    projects = ORG_TABLES["projects"]
    planted = tables.append(projects, tables.read(projects, projects.schema.names).slice(0, 1))
    stray = f"{projects.name}/{planted.adds[0].path}"

    problems = _problems(lake)
    assert ("changed", snapshot) in problems["workloads"]
    assert problems["org"] == [("inserted", stray)]
