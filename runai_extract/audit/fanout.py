"""A backfill cut into days that run anywhere, in any order: the work behind DAG ``runai_backfill``.

Why days and not one long run: a big tenant's first install backfills 90 days (millions of
rows). One task per day lets many workers page at once, and a day that fails is retried alone
while the others stay committed. Each day is an ordinary backfill (its slices commit their rows
independently; the table log orders concurrent writers), so nothing here adds a new way to write.

The one new rule is the watermark's. A day moves it only when it starts at or before it (a
backfill past a gap must not hide the gap), so days that finish out of order leave it behind;
:func:`advance_watermark` then moves it over every stored window contiguous with it, and no
further: the first day that is missing (failed, or not run yet) stops it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from runai_extract.audit.sync import STREAM, backfill_audit
from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import Settings
from runai_extract.core.times import format_utc
from runai_extract.ledger.watermarks import StateStore
from transforms.catalog import INGEST_RUNS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables

# A window counts as stored when its rows were committed (the covered_spans view's rule).
_STORED = ("committed", "mismatch")
MAX_DAYS = 400


def plan_days(start: str | date, end: str | date) -> list[str]:
    """The UTC days of [start, end) as ISO dates: one mapped task each."""
    first, after = _day(start, "start"), _day(end, "end")
    if after <= first:
        raise ConfigError(f"backfill range is empty or inverted: start {first} >= end {after}")
    count = (after - first).days
    if count > MAX_DAYS:
        raise ConfigError(f"backfill range has {count} days; at most {MAX_DAYS} at once")
    return [(first + timedelta(days=i)).isoformat() for i in range(count)]


def anchor_watermark(settings: Settings, start: str | date) -> datetime | None:
    """On a ledger with no audit watermark yet, put it at ``start``; returns the watermark.

    Without an anchor, whichever day committed first would set it, and days before that one
    would sit behind a watermark they never reached. The anchor says "the ledger begins here".
    """
    store = StateStore(Lake(settings.lake_uri))
    state = store.read(STREAM)
    if state is not None:
        return state.watermark
    moment = datetime.combine(_day(start, "start"), datetime.min.time(), UTC)
    return store.commit(STREAM, moment, "backfill-anchor").watermark


def backfill_day(settings: Settings, day: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Backfill one UTC day, then advance the watermark over what is contiguous; a small summary."""
    first = datetime.combine(_day(day, "day"), datetime.min.time(), UTC)
    summary = backfill_audit(settings, start=first, end=first + timedelta(days=1), now=now)
    watermark = advance_watermark(settings)
    return {
        "day": day,
        "run_id": summary.run_id,
        "rows_new": summary.rows_new,
        "watermark": format_utc(watermark) if watermark else None,
    }


def advance_watermark(settings: Settings) -> datetime | None:
    """Move the audit watermark over the stored windows that touch or overlap it; never backwards."""
    lake = Lake(settings.lake_uri)
    store = StateStore(lake)
    state = store.read(STREAM)
    if state is None:
        return None
    reach = contiguous_end(_stored_windows(lake), state.watermark)
    if reach <= state.watermark:
        return state.watermark
    return store.commit(STREAM, reach, "backfill-advance").watermark


def first_gap(
    settings: Settings, start: str | date, end: str | date, *, now: datetime | None = None
) -> datetime | None:
    """The first moment of [start, min(end, now - settle lag)) no stored window covers; None when all is.

    What the fan-out's last task checks, so a run whose day failed for good fails too (naming
    where the stored range stops) instead of looking green because the last task ran.
    """
    first = datetime.combine(_day(start, "start"), datetime.min.time(), UTC)
    after = datetime.combine(_day(end, "end"), datetime.min.time(), UTC)
    target = min(after, (now or datetime.now(UTC)) - settings.settle_lag)
    reach = contiguous_end(_stored_windows(Lake(settings.lake_uri)), first)
    return None if reach >= target else reach


def contiguous_end(windows: list[tuple[datetime, datetime]], watermark: datetime) -> datetime:
    """How far windows that overlap or touch reach from ``watermark`` (a gap stops them)."""
    reach = watermark
    for start, end in sorted(windows):
        if start > reach:
            break
        reach = max(reach, end)
    return reach


def _stored_windows(lake: Lake) -> list[tuple[datetime, datetime]]:
    runs = Tables(lake).read(INGEST_RUNS_TABLE, ["stream", "status", "window_start", "window_end"])
    return [
        (row["window_start"], row["window_end"])
        for row in runs.to_pylist()
        if row["stream"] == STREAM and row["status"] in _STORED
    ]


def _day(value: str | date, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ConfigError(f"backfill {what} must be a date (YYYY-MM-DD), got {value!r}") from None
