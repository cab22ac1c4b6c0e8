"""The pandas surface for analysts, against a ledger synced from the fake: its numbers equal the views'."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import Settings
from tests.synced_ledger import MONTH, PERIOD, SEALED_DAY, synced_ledger
from warehouse.analytics import Ledger, fill_hours

__all__ = ["synced_ledger"]  # the session fixture, imported so pytest finds it here


def _views(settings: Settings, sql: str, *params: object) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def ledger(synced_ledger: Settings) -> Ledger:
    return Ledger.open(synced_ledger.home)


def test_gpu_hours_per_day_and_department_equal_the_daily_view(
    ledger: Ledger, synced_ledger: Settings
) -> None:
    wide = ledger.gpu_hours(*PERIOD, by="department", freq="day")
    expected = _views(
        synced_ledger,
        "select usage_date, department_name, sum(gpu_hours) from usage_gpu_hours_daily "
        "where usage_date >= ? and usage_date < ? group by all",
        PERIOD[0].date(),
        PERIOD[1].date(),
    )
    assert len(expected) >= 4, "the fake tenant should have used GPUs in several departments"
    assert list(wide.index) == list(pd.date_range("2026-11-18", periods=3, freq="D"))
    for day, department, hours in expected:
        assert wide.loc[pd.Timestamp(day), department] == pytest.approx(hours, rel=1e-12)
    assert wide.to_numpy().sum() == pytest.approx(sum(float(h) for *_, h in expected), rel=1e-12)


def test_gpu_hours_per_month_equal_the_monthly_view(ledger: Ledger, synced_ledger: Settings) -> None:
    monthly = ledger.gpu_hours(*MONTH, by="project", freq="month")
    weekly = ledger.gpu_hours(*MONTH, by="project", freq="week")
    expected = dict(
        _views(
            synced_ledger,
            "select project_name, sum(gpu_hours) from usage_gpu_hours_monthly where usage_month = ? group by 1",
            date(2026, 11, 1),
        )
    )
    assert list(monthly.index) == [pd.Timestamp("2026-11-01")]
    assert monthly.iloc[0].to_dict() == pytest.approx(expected, rel=1e-12)
    # ISO weeks labelled by their Monday; the month's first days fall in the week of Monday 26 October.
    assert weekly.index[0] == pd.Timestamp("2026-10-26") and all(d.weekday() == 0 for d in weekly.index)
    assert weekly.sum().to_dict() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("by", "kind"), [("project", "project"), ("submitter", "user"), ("department", "department")]
)
def test_top_consumers_of_a_month_equal_the_top_consumers_view(
    ledger: Ledger, synced_ledger: Settings, by: str, kind: str
) -> None:
    top = ledger.top_consumers(*MONTH, by=by, n=None)
    expected = _views(
        synced_ledger,
        "select rank, consumer_id, gpu_hours, share from usage_top_consumers "
        "where usage_month = ? and consumer_kind = ? order by rank, consumer_name, consumer_id",
        date(2026, 11, 1),
        kind,
    )
    assert len(top) == len(expected) > 1
    for row, (rank, consumer_id, hours, share) in zip(top.itertuples(), expected, strict=True):
        assert (row.rank, row.id) == (rank, consumer_id)
        assert row.gpu_hours == pytest.approx(hours, rel=1e-12)
        assert row.share == pytest.approx(share, rel=1e-12)
    assert len(ledger.top_consumers(*MONTH, by=by, n=2)) == 2


def test_workload_outcomes_count_final_phases_and_preemptions(
    ledger: Ledger, synced_ledger: Settings
) -> None:
    outcomes = ledger.workload_outcomes(*PERIOD)
    final = dict(_views(synced_ledger, "select phase, count(*) from workloads group by 1"))
    preempted = _views(
        synced_ledger,
        "select count(*) from workload_phase_history where phase = 'Pending' and phase_message like 'Preempted%'",
    )[0][0]
    totals = outcomes.sum()
    for phase in ("Completed", "Failed", "Stopped"):
        assert totals[phase] == final.get(phase, 0)
    assert totals["Preempted"] == preempted
    assert totals["Completed"] > 0 and totals["Failed"] > 0


def test_queue_times_summarise_the_pending_spans(ledger: Ledger, synced_ledger: Settings) -> None:
    queue = ledger.queue_times(*PERIOD, by="workload_type").set_index("workload_type")
    expected = _views(
        synced_ledger,
        "select w.type, count(*), median(h.duration_seconds) / 60, max(h.duration_seconds) / 60 "
        "from workload_phase_history h join workloads w using (workload_id) "
        "where h.phase = 'Pending' and h.ended_at >= ? and h.ended_at < ? group by 1",
        *PERIOD,
    )
    assert expected
    for kind, spans, median, longest in expected:
        assert queue.loc[kind, "spans"] == spans
        assert queue.loc[kind, "median_minutes"] == pytest.approx(median)
        assert queue.loc[kind, "max_minutes"] == pytest.approx(longest)


def test_sign_ins_and_failed_actions_per_day_equal_the_compliance_views(
    ledger: Ledger, synced_ledger: Settings
) -> None:
    sign_ins = ledger.sign_ins_per_day(*PERIOD)
    expected = _views(
        synced_ledger,
        "select event_date, count_if(success), count_if(not success) from compliance_sign_ins "
        "where event_time >= ? and event_time < ? group by 1",
        *PERIOD,
    )
    assert expected
    for day, ok, failed in expected:
        assert (sign_ins.loc[pd.Timestamp(day), "succeeded"], sign_ins.loc[pd.Timestamp(day), "failed"]) == (
            ok,
            failed,
        )
    assert sign_ins.to_numpy().sum() == len(ledger.sign_ins(*PERIOD))

    failed = ledger.failed_actions_per_day(*PERIOD)
    per_day = _views(
        synced_ledger,
        "select event_date, count(*) from compliance_failed_actions where event_time >= ? and event_time < ? group by 1",
        *PERIOD,
    )
    assert per_day
    for day, count in per_day:
        assert failed.loc[pd.Timestamp(day)].sum() == count
    assert len(ledger.failed_actions(*PERIOD)) == sum(c for _, c in per_day)


@pytest.mark.parametrize(
    ("method", "sql"),
    [
        (
            "privileged_changes",
            "select event_id from compliance_privileged_changes where event_time >= ? and event_time < ? "
            "order by event_time, event_id",
        ),
        (
            "entity_changes",
            "select event_id from compliance_entity_changes where event_time >= ? and event_time < ? "
            "order by event_time, event_id",
        ),
    ],
)
def test_privileged_and_entity_changes_are_the_views_rows_of_the_period(
    ledger: Ledger, synced_ledger: Settings, method: str, sql: str
) -> None:
    frame = getattr(ledger, method)(*PERIOD)
    ids = _views(synced_ledger, sql, *PERIOD)
    assert list(frame["event_id"]) == [i for (i,) in ids] and len(ids) > 0
    assert str(frame["event_time"].dt.tz) == "UTC"


def test_coverage_lists_every_hour_with_the_views_status(ledger: Ledger, synced_ledger: Settings) -> None:
    hours = ledger.coverage(*PERIOD)
    assert len(hours) == 72
    graded = dict(
        _views(
            synced_ledger,
            "select period_start, status from coverage where stream = 'audit' and period_start >= ? and period_start < ?",
            *PERIOD,
        )
    )
    for row in hours.itertuples():
        assert row.status == graded.get(row.period_start.to_pydatetime(), "missing")
    sealed = hours[hours["status"] == "sealed"]["period_start"]
    assert len(sealed) == 24 and sealed.min() == pd.Timestamp(SEALED_DAY)


def test_sql_binds_parameters_and_refuses_to_write(ledger: Ledger) -> None:
    frame = ledger.sql(
        "select count(*) as n from audit_events where event_time >= $start", {"start": PERIOD[0]}
    )
    assert int(frame["n"].iloc[0]) > 0
    assert ledger.sql("select ? as x", ["it's"])["x"].iloc[0] == "it's"
    with pytest.raises(ConfigError, match="query is read-only"):
        ledger.sql("create table t as select 1")


def test_bad_questions_get_one_clear_line(ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dimension 'team'"):
        ledger.gpu_hours(*PERIOD, by="team")
    with pytest.raises(ConfigError, match="unknown frequency 'hour'"):
        ledger.gpu_hours(*PERIOD, freq="hour")
    with pytest.raises(ConfigError, match="end must be a midnight"):
        ledger.gpu_hours(PERIOD[0], datetime(2026, 11, 20, 12, tzinfo=UTC))
    with pytest.raises(ConfigError, match="start must be before end"):
        ledger.sign_ins(PERIOD[1], PERIOD[0])
    with pytest.raises(ConfigError, match="run `runai-ledger build-views` first"):
        Ledger.open(tmp_path).sign_ins(*PERIOD)


def test_hours_the_coverage_view_does_not_list_are_missing_before_and_pending_after() -> None:
    graded = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2026-11-18T02:00Z", "2026-11-18T03:00Z"]),
            "status": ["sealed", "provisional"],
            "rows": [5, 7],
        }
    )
    hours = fill_hours(graded, datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 18, 6, tzinfo=UTC))
    assert list(hours["status"]) == ["missing", "missing", "sealed", "provisional", "pending", "pending"]
    assert list(hours["rows"]) == [0, 0, 5, 7, 0, 0]
