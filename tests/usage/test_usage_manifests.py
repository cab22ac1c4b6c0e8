"""The usage streams are tamper-evident too: every run is manifested and `verify` walks their chains."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.verify import verify_lake
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.workloads import sync_workloads
from tests.usage.conftest import settings_for
from transforms.storage import Lake


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
    assert _problems(lake) == {"audit": [], "org": [], "workloads": []}

    snapshot = sorted(lake.list_files("workload_snapshots"))[0]
    path = Path(lake.full_path(snapshot))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    stray = "org/projects/observed_date=2026-11-20/part-planted.parquet"
    Path(lake.full_path(stray)).write_bytes(
        Path(lake.full_path(lake.list_files("org/projects")[0])).read_bytes()
    )

    problems = _problems(lake)
    assert ("changed", snapshot) in problems["workloads"]
    assert problems["org"] == [("inserted", stray)]
