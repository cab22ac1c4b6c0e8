"""Without a coverage view, an export period is graded from the stored windows in ingest_runs."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from runai_extract.compliance.period_coverage import period_coverage

T = datetime(2026, 11, 19, tzinfo=UTC)


def at(hour: int) -> datetime:
    return T.replace(hour=hour)


def test_gaps_mismatches_and_provisional_stretches_are_named() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "create table ingest_runs (stream varchar, run_id varchar, window_start timestamptz, "
        "window_end timestamptz, status varchar, finished_at timestamptz)"
    )
    windows = [
        ("r1", at(0), at(6), "committed"),
        ("r1", at(8), at(12), "mismatch"),
        ("r2", at(8), at(12), "committed"),  # a later rerun of the same window settles it
        ("r2", at(12), at(16), "mismatch"),
        ("r3", at(12), at(18), "failed"),  # failed windows cover nothing
    ]
    for run, start, end, status in windows:
        con.execute(
            "insert into ingest_runs values ('audit', ?, ?, ?, ?, ?)",
            [run, start, end, status, f"2026-11-2{run[1]}"],
        )
    found = period_coverage(con, "audit", at(1), at(20))
    assert not found.complete
    assert found.to_dict()["source"].startswith("ingest_runs")
    assert [(i.start.hour, i.end.hour, i.status) for i in found.issues] == [
        (1, 6, "provisional"),
        (6, 8, "missing"),
        (8, 12, "provisional"),
        (12, 16, "mismatch"),
        (16, 20, "missing"),
    ]
