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

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from runai_extract.errors import ConfigError
from runai_extract.timefmt import require_utc

_DAY = timedelta(days=1)
_RELATIVE = re.compile(r"-(\d+)([smhdw])")
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_HELP = "use ISO-8601 like 2025-06-01T00:00:00Z, a date, or -2d"


@dataclass(frozen=True, order=True)
class Window:
    """A half-open UTC time range [start, end); empty or naive windows cannot be built."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", require_utc(self.start, "a window start"))
        object.__setattr__(self, "end", require_utc(self.end, "a window end"))
        if self.end <= self.start:
            raise ConfigError(
                f"a window must end after it starts: [{self.start.isoformat()}, {self.end.isoformat()})"
            )

    @property
    def length(self) -> timedelta:
        return self.end - self.start


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


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """Read a time given on the command line as aware UTC.

    Accepts ISO-8601 with ``Z`` or an offset, a bare date (midnight UTC), a naive time (taken as
    UTC, never local time), ``now``, and relative forms such as ``-2d``, ``-6h``, ``-30m``.
    """
    raw = text.strip()
    reference = require_utc(now, "now") if now is not None else datetime.now(UTC)
    if raw.lower() == "now":
        return reference
    relative = _RELATIVE.fullmatch(raw.lower())
    if relative is None:
        return _parse_absolute(raw, text)
    try:
        return reference - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    except OverflowError:
        raise ConfigError(f"cannot read time {text!r}: it is too far in the past") from None


def parse_duration(text: str) -> timedelta:
    """Read a duration such as ``10m``, ``2h``, ``1d`` (for overlap, settle lag, slice length)."""
    match = _DURATION.fullmatch(text.strip().lower())
    try:
        if match is not None:
            return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        pass  # falls through to the same message as any other unreadable duration
    raise ConfigError(f"cannot read duration {text!r}: use a number and a unit, like 10m, 2h or 1d")


def _parse_absolute(raw: str, original: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw)  # a bare date parses as its midnight
    except ValueError:
        raise ConfigError(f"cannot read time {original!r}: {_TIME_HELP}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # naive input means UTC: local time shifts windows
    return parsed.astimezone(UTC)
