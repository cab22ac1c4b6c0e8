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
