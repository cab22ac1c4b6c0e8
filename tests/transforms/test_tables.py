"""The Delta table layer: first use by several writers at once, and a conflict named for the caller."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from runai_extract.core.errors import ConcurrentCommitError
from transforms.catalog import INGEST_RUNS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables


@pytest.mark.parametrize("attempt", range(3))
def test_many_writers_creating_a_table_at_once_all_get_it(lake_uri: str, attempt: int) -> None:
    """Each worker's first run creates the tables it writes; the losers of that race must not fail."""
    lake = Lake(f"{lake_uri}/attempt-{attempt}")
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: Tables(lake).ensure(INGEST_RUNS_TABLE), range(8)))
    assert len(got) == 8  # nobody failed
    assert Tables(lake).live_files(INGEST_RUNS_TABLE) == []
    assert Tables(lake).append(INGEST_RUNS_TABLE, INGEST_RUNS_TABLE.schema.empty_table()).adds == ()


def test_two_commits_that_set_one_app_transaction_conflict(lake_uri: str) -> None:
    """The rule concurrent writers rely on, on local disk and on S3 (conditional puts)."""
    tables = Tables(Lake(lake_uri))
    snapshot = tables.ensure(INGEST_RUNS_TABLE)
    tables.commit(INGEST_RUNS_TABLE, [], snapshot=snapshot, app_txns={"runai-ledger/test/commit": 1})
    with pytest.raises(ConcurrentCommitError, match="re-read and retry"):
        tables.commit(INGEST_RUNS_TABLE, [], snapshot=snapshot, app_txns={"runai-ledger/test/commit": 2})
    assert tables.app_version(INGEST_RUNS_TABLE, "runai-ledger/test/commit") == 1


def test_a_reader_that_keeps_its_snapshot_still_sees_every_later_commit_and_a_removed_table(
    lake_uri: str,
) -> None:
    """Reads answer from a snapshot kept per Lake (opening a year-old table costs ~14 ms); it must
    never answer from a stale version: other writers' commits, from other processes or Lake
    objects, show at the next read, and a table removed from under it reads as absent."""
    reader = Tables(Lake(lake_uri))
    assert reader.version(INGEST_RUNS_TABLE) is None
    writer = Tables(Lake(lake_uri))
    writer.ensure(INGEST_RUNS_TABLE)
    assert reader.version(INGEST_RUNS_TABLE) == 0
    for value in (1, 2):
        writer.commit(INGEST_RUNS_TABLE, [], app_txns={"runai-ledger/test/watermark": value})
        assert reader.app_version(INGEST_RUNS_TABLE, "runai-ledger/test/watermark") == value
    written = writer.append(INGEST_RUNS_TABLE, INGEST_RUNS_TABLE.schema.empty_table())
    assert reader.version(INGEST_RUNS_TABLE) == written.version
    assert [f.path for f in reader.live_files(INGEST_RUNS_TABLE)] == [
        f.path for f in writer.live_files(INGEST_RUNS_TABLE)
    ]

    reader.lake.fs.delete_dir(reader.lake.full_path(INGEST_RUNS_TABLE.name))
    assert reader.version(INGEST_RUNS_TABLE) is None
    assert reader.app_version(INGEST_RUNS_TABLE, "runai-ledger/test/watermark") is None
