"""The parameters and the answer every metrics route of the fake shares (README 4.6 and 7).

``metricType`` (required, comma-joined, each name from the route's enum), ``start`` and ``end``
(required, ISO-8601, start not after end) and ``numberOfSamples`` (0..1000, default 20); a bad
one is a 400 naming the parameter. The answer is 200, or 207 Partial success when a requested
type of the enum is not simulated (it is left out of ``measurements``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from runai_extract.fake.filters import datetime_to_us, integer_param, parse_instant
from runai_extract.fake.problems import bad_request, missing_parameter

Params = Sequence[tuple[str, str]]

MAX_SAMPLES = 1000
DEFAULT_SAMPLES = 20


@dataclass(frozen=True)
class MetricsQuery:
    types: tuple[str, ...]
    start_ms: int
    end_ms: int
    samples: int

    def instants(self) -> list[int]:
        """``samples`` instants evenly over [start, end], both ends included."""
        if self.samples == 0:
            return []
        if self.samples == 1:
            return [self.start_ms]
        span = self.end_ms - self.start_ms
        return [self.start_ms + span * i // (self.samples - 1) for i in range(self.samples)]


def parse_metrics_query(params: Params, allowed: frozenset[str]) -> MetricsQuery:
    """Validate the metrics parameters the way the API does: 400 with a named parameter."""
    single = dict(params)
    raw_types = [value for key, value in params if key == "metricType"]
    if not raw_types or not any(raw_types):
        raise missing_parameter("metricType")
    types = tuple(dict.fromkeys(t.strip() for raw in raw_types for t in raw.split(",") if t.strip()))
    unknown = [t for t in types if t not in allowed]
    if unknown:
        raise bad_request(f"query parameter 'metricType' has an unknown value {unknown[0]!r}")
    for name in ("start", "end"):
        if not single.get(name):
            raise missing_parameter(name)
    start = datetime_to_us(parse_instant(single["start"], "start")) // 1000
    end = datetime_to_us(parse_instant(single["end"], "end")) // 1000
    if start > end:
        raise bad_request("query parameter 'start' must not be after 'end'")
    samples = integer_param(single, "numberOfSamples", DEFAULT_SAMPLES, minimum=0, maximum=MAX_SAMPLES)
    return MetricsQuery(types, start, end, samples)


def served_instants(query: MetricsQuery, now_ms: int, retention_ms: int) -> list[int]:
    """The query's instants that the control plane still has: not future, not expired."""
    oldest = now_ms - retention_ms
    return [t for t in query.instants() if oldest <= t <= now_ms]


def answer(
    query: MetricsQuery, measurements: Sequence[Mapping[str, object]], simulated: tuple[str, ...]
) -> tuple[int, bytes]:
    partial = any(kind not in simulated for kind in query.types)
    return (207 if partial else 200), orjson.dumps({"measurements": measurements})


def number(value: float) -> str:
    """A metric value as the API writes it: '2', '0.5', '91.25'."""
    return str(int(value)) if float(value).is_integer() else repr(round(float(value), 6))
