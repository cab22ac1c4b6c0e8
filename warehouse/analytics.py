"""The analyst's surface: a ledger's warehouse as pandas DataFrames, opened read-only.

Why a module of its own: people who live in notebooks ask the same few usage questions (GPU-hours
by department per week, who used the most, what failed) and should not have to learn the view
chain or DuckDB's API to get a DataFrame. Every call opens warehouse.duckdb read-only for just
that query (so a notebook never holds the lock a sync's view build needs), binds its values as
parameters, and leaves grouping, resampling and pivots to pandas. The SQL is in
warehouse/analytics/*.sql, one query per file; docs/analytics.md has examples to paste.

Periods are half-open ``[start, end)`` in UTC; GPU-hours are kept per UTC day by the views, so
the usage questions take whole days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from runai_extract.core.errors import ConfigError, StorageError
from runai_extract.core.settings import load_settings
from runai_extract.core.times import format_utc, parse_time
from warehouse.connection import LOCK_WAIT_S
from warehouse.query import _check_read_only, _first_line, _open_for_query

ANALYTICS_SQL_DIR = Path(__file__).resolve().parent / "analytics"

# dimension -> (the column that identifies a member, the column that names it)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "department": ("department_id", "department_name"),
    "project": ("project_id", "project_name"),
    "submitter": ("submitted_by", "submitted_by"),
    "cluster": ("cluster_id", "cluster_id"),
    "workload_type": ("workload_type", "workload_type"),
}
# frequency -> pandas offset; weeks start on Monday (ISO), months on the 1st, both labelled by their first day
FREQUENCIES: dict[str, str] = {"day": "D", "week": "W-MON", "month": "MS"}
OUTCOMES = ("Completed", "Failed", "Stopped", "Preempted")
COVERAGE_STATUSES = ("sealed", "provisional", "pending", "mismatch", "missing")

TimeLike = str | date | datetime


@dataclass(frozen=True)
class Ledger:
    """A read-only handle on one ledger's warehouse; every method returns a fresh DataFrame.

    ``Ledger.open()`` finds the warehouse the way the CLI does (``--home``, else
    RUNAI_LEDGER_HOME, else ~/.runai-ledger); ``Ledger(Path(".../warehouse.duckdb"))`` opens a
    file directly.
    """

    warehouse_path: Path
    lock_wait: float = LOCK_WAIT_S
    # DuckDB's parallel aggregation adds floats in no fixed order, so a sum can differ in its last
    # bit from run to run; one thread gives the same bits every time (the report needs that).
    single_thread: bool = False

    @classmethod
    def open(cls, home: str | Path | None = None) -> Ledger:
        settings = load_settings(None, home=home) if home is not None else load_settings(None)
        return cls(settings.warehouse_path)

    # -- SQL to a DataFrame ------------------------------------------------------------------------
    def sql(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only SELECT with bound parameters (``?`` or ``$name``) to a DataFrame.

        Timestamps come back as UTC-aware pandas timestamps; anything but a single SELECT fails
        with "query is read-only".
        """
        con = _open_for_query(self.warehouse_path, self.lock_wait)
        try:
            if self.single_thread:
                con.execute("SET threads = 1")
            _check_read_only(con, sql)
            bound: list[Any] | dict[str, Any] | None
            bound = (
                dict(params) if isinstance(params, Mapping) else list(params) if params is not None else None
            )
            try:
                return con.sql(sql, params=bound).df()
            except duckdb.IOException as exc:
                raise StorageError(f"query could not read the lake: {_first_line(exc)}") from exc
            except duckdb.Error as exc:
                raise ConfigError(f"query failed: {_first_line(exc)}") from exc
        finally:
            con.close()

    def period_query(self, name: str, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """One of warehouse/analytics/<name>.sql over [start, end)."""
        lo, hi = period(start, end)
        return self.sql(analytics_sql(name), {"start": lo, "end": hi})

    # -- usage -------------------------------------------------------------------------------------
    def gpu_hours(
        self, start: TimeLike, end: TimeLike, by: str = "department", freq: str = "day"
    ) -> pd.DataFrame:
        """GPU-hours per period (rows, labelled by the period's first day) and ``by`` (columns).

        Every day/week/month of [start, end) is a row, idle ones with 0, so ``.plot.area()``
        draws the period as it was. Columns are member names (the names units had at the time).
        """
        lo, hi = whole_days(start, end)
        column = _dimension(by)[1]
        rows = self.period_query("gpu_hours_daily", lo, hi)
        wide = daily_pivot(rows, column, lo, hi)
        return resample(wide, freq)

    def top_consumers(
        self, start: TimeLike, end: TimeLike, by: str = "project", n: int | None = 10
    ) -> pd.DataFrame:
        """The biggest ``by`` members of [start, end): rank (1 = most), id, name, GPU-hours, share.

        Ranked like the usage_top_consumers view (ties share a rank); over a calendar month the
        figures equal that view's rows for the month.
        """
        lo, hi = whole_days(start, end)
        rows = self.period_query("gpu_hours_daily", lo, hi)
        return rank_consumers(rows, by, n)

    def gpu_efficiency(self, start: TimeLike, end: TimeLike, by: str = "department") -> pd.DataFrame:
        """Per ``by`` member over [start, end): GPU-hours allocated, utilised and idle, and efficiency.

        efficiency = utilised / allocated over the hours that have metrics (usage_gpu_efficiency_daily).
        """
        lo, hi = whole_days(start, end)
        rows = self.period_query("gpu_efficiency", lo, hi)
        return summarise_efficiency(rows, by)

    def idle_workloads(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Workloads that held GPUs under 5% for over an hour in [start, end), most idle GPU-hours first."""
        return self.period_query("idle_workloads", start, end)

    def workload_outcomes(self, start: TimeLike, end: TimeLike, freq: str = "day") -> pd.DataFrame:
        """Workloads that completed, failed, were stopped or were preempted, per period (rows)."""
        lo, hi = period(start, end)
        rows = self.period_query("workload_outcomes", lo, hi)
        return count_per_period(rows, "at", "outcome", OUTCOMES, lo, hi, freq)

    def queue_times(self, start: TimeLike, end: TimeLike, by: str = "workload_type") -> pd.DataFrame:
        """Time spent Pending, in minutes, for spans that ended in [start, end): count, median, p90, max per ``by``."""
        rows = self.period_query("queue_times", start, end)
        return summarise_queue(rows, _dimension(by)[1])

    # -- audit -------------------------------------------------------------------------------------
    def sign_ins(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Every sign-in, sign-out and password reset of [start, end)."""
        return self.period_query("sign_ins", start, end)

    def sign_ins_per_day(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Per UTC day of [start, end): succeeded and failed sign-in events (every day listed)."""
        lo, hi = period(start, end)
        rows = self.period_query("sign_ins", lo, hi)
        rows["outcome"] = rows["success"].map({True: "succeeded", False: "failed"})
        return count_per_period(rows, "event_time", "outcome", ("succeeded", "failed"), lo, hi, "day")

    def failed_actions(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Every failed action of [start, end) (compliance_failed_actions)."""
        return self.period_query("failed_actions", start, end)

    def failed_actions_per_day(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Per UTC day of [start, end): failed actions by HTTP status class (4xx, 5xx, none)."""
        lo, hi = period(start, end)
        rows = self.period_query("failed_actions", lo, hi)
        rows["status_class"] = rows["http_status_class"].fillna("none")
        classes = tuple(sorted(set(rows["status_class"]) | {"4xx", "5xx"}))
        return count_per_period(rows, "event_time", "status_class", classes, lo, hi, "day")

    def privileged_changes(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Changes to access rules, roles, users, applications, settings and org units in [start, end)."""
        return self.period_query("privileged_changes", start, end)

    def entity_changes(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Creates, updates and deletes of any entity in [start, end)."""
        return self.period_query("entity_changes", start, end)

    def coverage(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Every UTC hour of [start, end) with the audit log's coverage status (see fill_hours)."""
        lo, hi = period(start, end)
        graded = self.period_query("coverage_hours", lo, hi)
        return fill_hours(graded, lo, hi)


# -- periods -----------------------------------------------------------------------------------------
def to_utc(value: TimeLike, what: str) -> datetime:
    """A date (midnight UTC), an aware datetime, or ISO text, as an aware UTC datetime."""
    if isinstance(value, str):
        return parse_time(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{what} must carry a time zone (got naive {value.isoformat()}); use UTC")
        utc = value.astimezone(UTC)  # a plain datetime, also for subclasses such as pendulum's
        return datetime.combine(utc.date(), utc.time(), tzinfo=UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def period(start: TimeLike, end: TimeLike) -> tuple[datetime, datetime]:
    lo, hi = to_utc(start, "start"), to_utc(end, "end")
    if hi <= lo:
        raise ConfigError(f"start must be before end (got {format_utc(lo)} .. {format_utc(hi)})")
    return lo, hi


def whole_days(start: TimeLike, end: TimeLike) -> tuple[datetime, datetime]:
    """[start, end) for questions the views answer per UTC day: both ends must be midnight."""
    lo, hi = period(start, end)
    for what, moment in (("start", lo), ("end", hi)):
        if moment.timetz() != time(0, tzinfo=UTC):
            raise ConfigError(
                f"GPU-hours are kept per UTC day: {what} must be a midnight (got {format_utc(moment)})"
            )
    return lo, hi


def analytics_sql(name: str) -> str:
    path = ANALYTICS_SQL_DIR / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ANALYTICS_SQL_DIR.glob("*.sql")))
        raise ConfigError(f"no analytics query {name!r}; known: {known}")
    return path.read_text(encoding="utf-8")


def _dimension(by: str) -> tuple[str, str]:
    if by not in DIMENSIONS:
        raise ConfigError(f"unknown dimension {by!r}: use one of {', '.join(DIMENSIONS)}")
    return DIMENSIONS[by]


def _offset(freq: str) -> str:
    if freq not in FREQUENCIES:
        raise ConfigError(f"unknown frequency {freq!r}: use one of {', '.join(FREQUENCIES)}")
    return FREQUENCIES[freq]


# -- pandas: the shaping that is pandas' natural job -------------------------------------------------
def _day_index(lo: datetime, hi: datetime) -> pd.DatetimeIndex:
    days = pd.date_range(lo.date(), hi.date(), freq="D", inclusive="left", name="period")
    return days.as_unit("us")


def daily_pivot(rows: pd.DataFrame, column: str, lo: datetime, hi: datetime) -> pd.DataFrame:
    """GPU-hours per day (every day of the period) and member of ``column``; members sorted by name."""
    frame = rows.assign(day=pd.to_datetime(rows["usage_date"]).dt.as_unit("us"))
    frame[column] = frame[column].fillna("(unknown)").astype(str)
    wide = frame.pivot_table(index="day", columns=column, values="gpu_hours", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(_day_index(lo, hi), fill_value=0.0)
    wide = wide.reindex(columns=sorted(wide.columns)).astype(float)
    wide.columns.name = column
    return wide


def resample(daily: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Daily rows summed per day, ISO week (Monday) or month; each row labelled by its first day."""
    offset = _offset(freq)
    if offset == "D":
        return daily
    if offset == "W-MON":
        out = daily.resample(offset, label="left", closed="left").sum()
    else:
        out = daily.resample(offset).sum()
    out.index.name = "period"
    return out


def summarise_efficiency(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """Allocated, utilised and idle GPU-hours per member of ``by``, most allocated first."""
    column = _dimension(by)[1]
    frame = rows.assign(**{column: rows[column].fillna("(unknown)").astype(str)})
    measures = ["allocated_gpu_hours", "utilised_gpu_hours", "idle_gpu_hours", "gpu_hours_without_metrics"]
    totals = frame.groupby(column)[measures].sum().astype(float)
    measured = totals["allocated_gpu_hours"] - totals["gpu_hours_without_metrics"]
    totals["efficiency"] = (totals["utilised_gpu_hours"] / measured.where(measured > 0)).astype(float)
    return totals.sort_values("allocated_gpu_hours", ascending=False, kind="stable")


def rank_consumers(rows: pd.DataFrame, by: str, n: int | None) -> pd.DataFrame:
    """Members of ``by`` ranked by GPU-hours (ties share the lower rank), with their share of the total."""
    id_column, name_column = _dimension(by)
    frame = rows.assign(
        member_id=rows[id_column].fillna("(unknown)"), name=rows[name_column].fillna("(unknown)")
    )
    totals = (
        frame.groupby("member_id", as_index=False)
        .agg(name=("name", "max"), gpu_hours=("gpu_hours", "sum"))
        .rename(columns={"member_id": "id"})
    )
    grand = float(totals["gpu_hours"].sum())
    totals["share"] = totals["gpu_hours"] / grand if grand else 0.0
    totals["rank"] = totals["gpu_hours"].rank(method="min", ascending=False).astype("int64")
    ranked = totals.sort_values(["rank", "name", "id"], kind="stable").reset_index(drop=True)
    ranked = ranked[["rank", "id", "name", "gpu_hours", "share"]]
    return ranked.head(n) if n is not None else ranked


def count_per_period(
    rows: pd.DataFrame,
    time_column: str,
    category: str,
    categories: Sequence[str],
    lo: datetime,
    hi: datetime,
    freq: str,
) -> pd.DataFrame:
    """Rows counted per UTC day (then resampled) and ``category`` value; every day and category present."""
    days = pd.to_datetime(rows[time_column], utc=True).dt.tz_localize(None).dt.floor("D").dt.as_unit("us")
    frame = pd.DataFrame({"day": days, category: rows[category].astype(str)})
    wide = pd.crosstab(frame["day"], frame[category]) if len(frame) else pd.DataFrame()
    wide = wide.reindex(index=_day_index(lo, hi), columns=list(categories), fill_value=0).astype("int64")
    wide.columns.name = category
    return resample(wide, freq)


def summarise_queue(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Queue minutes per member of ``column``: spans, median, 90th percentile, longest; sorted by name."""
    frame = pd.DataFrame(
        {
            column: rows[column].fillna("(unknown)").astype(str),
            "minutes": rows["queued_seconds"].astype(float) / 60.0,
        }
    )
    grouped = frame.groupby(column)["minutes"]
    summary = pd.DataFrame(
        {
            "spans": grouped.size(),
            "median_minutes": grouped.median(),
            "p90_minutes": grouped.quantile(0.9),
            "max_minutes": grouped.max(),
        }
    )
    return summary.sort_index().reset_index()


def fill_hours(graded: pd.DataFrame, lo: datetime, hi: datetime) -> pd.DataFrame:
    """One row per UTC hour overlapping [lo, hi), each with a status.

    The coverage view grades hours from the first stored window up to now. An hour it does not
    list before the last one it grades was never ingested ('missing', as an export counts it);
    one after the last graded hour lies in the future, which the next sync will read ('pending').
    """
    first = pd.Timestamp(lo).floor("h")
    hours = pd.date_range(first, hi, freq="h", inclusive="left", name="period_start").as_unit("us")
    frame = graded.assign(period_start=pd.to_datetime(graded["period_start"], utc=True).dt.as_unit("us"))
    frame = frame.set_index("period_start")[["status", "rows"]]
    out = frame.reindex(hours)
    if len(frame):
        out.loc[out.index > frame.index.max(), "status"] = "pending"
    out["status"] = out["status"].fillna("missing").astype(str)
    out["rows"] = out["rows"].fillna(0).astype("int64")
    return out.reset_index()
