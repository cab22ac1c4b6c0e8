"""Reading and writing the API's time values, always as aware UTC.

The control plane speaks ISO-8601 UTC with a ``Z`` and milliseconds (``2025-06-02T08:00:00.000Z``).
We send exactly that shape: runapy sends naive datetimes with no offset at all, which a server
then reads in whatever zone it likes, and that is how windows shift and rows get lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from runai_extract.errors import ConfigError


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


def parse_api_time(text: str) -> datetime:
    """Parse a time as the API emits it; values without a zone are UTC.

    Lenient on purpose: telemetry and report examples use ``2023-06-06 12:09:18.211`` (space, no
    zone) and some values carry nanoseconds, which are truncated to microseconds.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 time: {text[:64]!r}") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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
