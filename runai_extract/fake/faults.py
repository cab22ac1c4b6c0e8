"""Fault injection for the fake control plane: the trouble a real tenant causes, on demand.

The real 2.24 API documents no 429, no rate limits and no ``Retry-After`` (README section 8),
yet gateways in front of it do answer 429/502/503/504. An extractor has to survive all of them,
so the fake can produce each one deliberately and reproducibly: faults are drawn from a seeded
RNG, so a failing test replays the same sequence of answers.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

RETRY_AFTER_FORMS = ("seconds", "http-date", "none")

# Statuses that carry Retry-After when asked to: the two RFC 9110 names it for.
RETRY_AFTER_STATUSES = frozenset({429, 503})

# Messages follow the spec's examples where it has one (500, 503); the rest are gateway-style.
FAULT_MESSAGES: dict[int, str] = {
    429: "Too many requests, slow down.",
    500: "Something went wrong.",
    502: "Bad gateway.",
    503: "Please try again in few minutes.",
    504: "Gateway timeout.",
}


@dataclass(frozen=True)
class FaultConfig:
    """Every knob is off by default, so a plain fake behaves like a healthy tenant."""

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (429, 503, 500, 502, 504)
    retry_after: str = "seconds"  # one of RETRY_AFTER_FORMS (a plain str so CLI flags pass through)
    retry_after_seconds: int = 1
    latency_s: float = 0.0
    token_lifetime_s: int = 3600
    late_arrivals: int = 0
    late_arrival_delay_s: float = 5.0
    insert_during_paging: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within 0..1, got {self.error_rate}")
        if self.error_rate > 0 and not self.error_statuses:
            raise ValueError("error_statuses must not be empty when error_rate > 0")
        if self.retry_after not in RETRY_AFTER_FORMS:
            raise ValueError(f"retry_after must be seconds, http-date or none, got {self.retry_after!r}")
        if self.token_lifetime_s < 1:
            raise ValueError("token_lifetime_s must be at least 1")
        if min(self.latency_s, self.late_arrival_delay_s) < 0:
            raise ValueError("latency and delays must not be negative")
        if min(self.late_arrivals, self.insert_during_paging, self.retry_after_seconds) < 0:
            raise ValueError("counts and retry_after_seconds must not be negative")


@dataclass(frozen=True)
class InjectedFault:
    """One fault to answer with instead of the real response."""

    status: int
    message: str
    headers: dict[str, str]


class FaultInjector:
    """Holds the live FaultConfig and decides, per data request, whether to misbehave.

    The config can be swapped while the server runs (tests flip faults mid-run); the lock keeps
    the swap and the RNG draws consistent between the test thread and the server's loop thread.
    """

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self._config = config
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()
        self._drifted_windows: set[tuple[int, int]] = set()

    @property
    def config(self) -> FaultConfig:
        return self._config

    def set_config(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config

    def draw(self) -> InjectedFault | None:
        """Decide whether this data request fails, and how."""
        with self._lock:
            config = self._config
            if config.error_rate <= 0 or self._rng.random() >= config.error_rate:
                return None
            status = self._rng.choice(config.error_statuses)
        message = FAULT_MESSAGES.get(status, "Injected fault.")
        return InjectedFault(status=status, message=message, headers=retry_after_headers(config, status))

    def drift_rows_for(self, window: tuple[int, int]) -> int:
        """How many rows to insert now that the first page of ``window`` was served (once per window).

        Once per window keeps it deterministic: a client that restarts paging from offset 0
        sees a stable window afterwards instead of an ever-growing one.
        """
        with self._lock:
            count = self._config.insert_during_paging
            if count <= 0 or window in self._drifted_windows:
                return 0
            self._drifted_windows.add(window)
            return count


def retry_after_headers(config: FaultConfig, status: int) -> dict[str, str]:
    """The Retry-After header for ``status`` in the configured form (RFC 9110: delay-seconds or HTTP-date)."""
    if status not in RETRY_AFTER_STATUSES or config.retry_after == "none":
        return {}
    if config.retry_after == "seconds":
        return {"Retry-After": str(config.retry_after_seconds)}
    # HTTP-dates have whole seconds: round up so the client never waits less than asked.
    when = datetime.now(UTC) + timedelta(seconds=config.retry_after_seconds)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return {"Retry-After": format_datetime(when, usegmt=True)}
