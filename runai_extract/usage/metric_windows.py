"""Which samples a metrics fetch asks for: aligned instants, at most 1000 per request, no expired span.

The metrics endpoints return ``numberOfSamples`` (at most 1000) instants spread evenly over
[start, end], both ends included. We ask for instants at multiples of the resolution (default 60 s)
so a sample always stands for the same [t, t + resolution) in the views and two runs never ask for
the same instant twice: a fetch covers [start, end) and is cut into requests of at most 1000
instants (``end`` of a request = its last instant). The control plane forgets samples older than
its retention, so the part of a fetch that lies before ``now - retention`` is a *gap*: stored as
such and reported, never silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from runai_extract.core.errors import ConfigError

MAX_SAMPLES = 1000  # the API's cap on numberOfSamples
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SampleRequest:
    """One request: ``samples`` instants from ``first`` to ``last``, ``resolution`` apart."""

    first: datetime
    last: datetime
    samples: int


@dataclass(frozen=True)
class FetchPlan:
    """What one entity's fetch reads, and the span it had to give up on (expired)."""

    start: datetime
    end: datetime
    gap: tuple[datetime, datetime] | None

    @property
    def empty(self) -> bool:
        return self.start >= self.end


def check_resolution(resolution: timedelta) -> timedelta:
    """A resolution of whole seconds, 1 s .. 1 day; a clear error otherwise."""
    seconds = resolution.total_seconds()
    if seconds < 1 or seconds > 86_400 or seconds != int(seconds):
        raise ConfigError(f"metrics resolution must be whole seconds between 1 and 86400, got {seconds:g}")
    return resolution


def align_down(moment: datetime, resolution: timedelta) -> datetime:
    """The latest multiple of ``resolution`` (since the epoch) at or before ``moment``."""
    return _EPOCH + ((moment - _EPOCH) // resolution) * resolution


def align_up(moment: datetime, resolution: timedelta) -> datetime:
    down = align_down(moment, resolution)
    return down if down == moment else down + resolution


def plan_fetch(start: datetime, end: datetime, oldest: datetime, resolution: timedelta) -> FetchPlan:
    """[start, end) with every instant before ``oldest`` (the retention edge) split off as a gap."""
    start, end, oldest = align_up(start, resolution), align_up(end, resolution), align_up(oldest, resolution)
    if start >= oldest or start >= end:
        return FetchPlan(start, end, None)
    gap_end = min(oldest, end)
    return FetchPlan(gap_end, end, (start, gap_end))


def sample_requests(start: datetime, end: datetime, resolution: timedelta) -> list[SampleRequest]:
    """The instants start, start + resolution, ... before ``end``, in requests of <= 1000."""
    out: list[SampleRequest] = []
    first = align_up(start, resolution)
    while first < end:
        count = min(MAX_SAMPLES, -(-(end - first) // resolution))
        last = first + (count - 1) * resolution
        out.append(SampleRequest(first, last, count))
        first = last + resolution
    return out
