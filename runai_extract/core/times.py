"""Time values, always aware UTC: the API's wire format, the ledger's own, user input, windows.

The control plane speaks ISO-8601 UTC with a ``Z`` and milliseconds (``2025-06-02T08:00:00.000Z``).
We send exactly that shape: runapy sends naive datetimes with no offset at all, which a server
then reads in whatever zone it likes, and that is how windows shift and rows get lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from runai_extract.core.errors import ConfigError

_RELATIVE = re.compile(r"-(\d+)([smhdw])")
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_HELP = "use ISO-8601 like 2025-06-01T00:00:00Z, a date, or -2d"


def require_utc(value: datetime, what: str) -> datetime:
    """Return ``value`` converted to UTC, refusing naive datetimes (their zone is a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}")
    utc = value.astimezone(UTC)
    # Rebuild as a plain datetime: subclasses (pendulum's DateTime, which Airflow hands to tasks)
    # lose a stdlib tzinfo when deep-copied, and that turned an aware time naive downstream.
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC
    )


def format_api_time(value: datetime) -> str:
    """Format as the API's own shape: UTC, millisecond precision, ``Z`` suffix."""
    utc = require_utc(value, "an API time")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# The one ISO-8601 grammar of the project: a date, then optionally 'T', 't' or ' ' and hh:mm, then
# optionally :ss with any number of fractional digits, then optionally a zone ('Z', +hh:mm, +hhmm
# or +hh). re.ASCII keeps \d from matching non-ASCII digits.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?",
    re.ASCII,
)


def parse_iso(text: str, *, seconds: bool = False) -> tuple[datetime, bool]:
    """Parse ISO-8601 to aware UTC; the flag says the text carried no zone (it is read as UTC).

    Every reader of times uses this one grammar: the audit wire (``seconds=True``: a full
    date-time down to the second, as the API emits), the API's other times, command-line input
    and the fake's query parameters. Fractional digits beyond the microsecond are truncated (as
    pydantic does). Raises ValueError naming the problem.
    """
    match = _ISO.fullmatch(text)
    if match is None or (seconds and match.group(6) is None):
        raise ValueError("not an ISO-8601 date-time")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    tz: timezone = UTC
    if sign:
        if int(off_h) > 23 or int(off_m or 0) > 59:
            raise ValueError("zone offset out of range")
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        tz = timezone(-offset if sign == "-" else offset)
    clock = (int(hour or 0), int(minute or 0), int(second or 0), micro)
    try:
        return datetime(int(year), int(month), int(day), *clock, tzinfo=tz).astimezone(UTC), not (
            zulu or sign
        )
    except OverflowError as exc:  # 9999-12-31T23:00:00-05:00 is past datetime.max in UTC
        raise ValueError("date-time out of range") from exc


def parse_api_time(text: str) -> datetime:
    """Parse a time as the API emits it; values without a zone are UTC.

    Lenient on purpose: telemetry and report examples use ``2023-06-06 12:09:18.211`` (space, no
    zone) and some values carry nanoseconds, which are truncated to microseconds.
    """
    try:
        return parse_iso(text.strip())[0]
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 time: {text[:64]!r} ({exc})") from exc


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header, in either of its two forms.

    RFC 9110 allows delta-seconds (``120``) or an HTTP-date (``Wed, 21 Oct 2015 07:28:00 GMT``).
    A date in the past means "now" (0 s). Anything unreadable is ignored (None) rather than
    trusted, and capping is the caller's job.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _retry_after_date(text, now)
    if seconds != seconds or seconds < 0:  # NaN or negative: not a usable delay
        return None
    return seconds


def _retry_after_date(text: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC says HTTP-dates are GMT; "-0000" parses naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def format_utc(dt: datetime) -> str:
    """ISO-8601 UTC with microseconds and a Z: sortable, unambiguous, what DuckDB reads."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        # A bare date is its midnight; naive input means UTC (local time would shift windows).
        return parse_iso(raw)[0]
    except ValueError:
        raise ConfigError(f"cannot read time {original!r}: {_TIME_HELP}") from None
