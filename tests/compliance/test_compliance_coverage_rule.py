"""An export period is graded by the warehouse's one coverage rule; without it, a clear error."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from runai_extract.compliance.period_coverage import period_coverage
from runai_extract.core.errors import StorageError

T = datetime(2026, 11, 19, tzinfo=UTC)


def test_a_warehouse_without_the_coverage_view_is_an_error_not_a_second_rule() -> None:
    con = duckdb.connect()
    con.execute(
        "create table ingest_runs (stream varchar, run_id varchar, window_start timestamptz, "
        "window_end timestamptz, status varchar, finished_at timestamptz)"
    )
    with pytest.raises(StorageError, match="no coverage view; run `runai-ledger build-views`"):
        period_coverage(con, "audit", T, T.replace(hour=6))
