"""Window planning: which half-open time range [start, end) a run extracts, and how it is sliced.

A run reads ``[watermark - overlap, min(until, now - settle_lag))``:
- the end sits ``settle_lag`` behind now because rows committed just before a read can still
  appear afterwards (dlt#2269); a closed past window also keeps offset paging stable;
- the start re-reads ``overlap`` before the watermark, so rows sharing the boundary timestamp or
  written late are read again and deduplicated by id rather than lost (estuary#5205).
The end is fixed once, before any request, so a long run does not chase a moving "now".

Slices are cut at every UTC midnight so each one maps to exactly one day partition in the lake.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from runai_extract.core.errors import ConfigError
from runai_extract.core.times import Window, require_utc

_DAY = timedelta(days=1)


def plan_window(
    watermark: datetime | None,
    *,
    now: datetime,
    until: datetime | None,
    overlap: timedelta,
    settle_lag: timedelta,
    initial_lookback: timedelta,
    start: datetime | None = None,
) -> Window | None:
    """The window to extract now, or None when there is nothing settled to read yet.

    ``start`` (a backfill's explicit start) wins over the watermark, which wins over the initial
    lookback of a first run. ``now`` is passed in, never read here, so callers fix it once.
    """
    if overlap < timedelta(0) or settle_lag < timedelta(0) or initial_lookback <= timedelta(0):
        raise ConfigError("overlap and settle lag must be non-negative and the initial lookback positive")
    now = require_utc(now, "now")
    if start is not None:
        begin = require_utc(start, "the start time")
    elif watermark is not None:
        begin = require_utc(watermark, "the watermark") - overlap
    else:
        begin = now - initial_lookback
    end = now - settle_lag
    if until is not None:
        end = min(end, require_utc(until, "the until time"))
    return Window(begin, end) if end > begin else None


def split_window(window: Window, slice_length: timedelta) -> list[Window]:
    """Contiguous slices that tile ``window`` exactly, each within one UTC day and at most ``slice_length``."""
    if slice_length <= timedelta(0):
        raise ConfigError(f"slice length must be positive, got {slice_length}")
    slices: list[Window] = []
    cursor = window.start
    while cursor < window.end:
        midnight = datetime.combine(cursor.date(), time(0), tzinfo=UTC) + _DAY
        cut = min(window.end, cursor + slice_length, midnight)
        slices.append(Window(cursor, cut))
        cursor = cut
    return slices
