"""Fault injection for the fake control plane: the trouble a real tenant causes, on demand.

The real 2.24 API documents no 429, no rate limits and no ``Retry-After`` (README section 8),
yet gateways in front of it do answer 429/502/503/504. An extractor has to survive all of them,
so the fake can produce each one deliberately and reproducibly: faults are drawn from a seeded
RNG, so a failing test replays the same sequence of answers.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from runai_extract.fake.badrecords import BAD_RECORD_KINDS

RETRY_AFTER_FORMS = ("seconds", "http-date", "none")
BAD_BODY_FORMS = ("html", "truncated")

# What a proxy answers with a 200 when it, not the API, handled the request.
PROXY_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><h1>Corporate proxy</h1><p>Please sign in to continue.</p></body></html>"
)

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
    """Every knob is off by default, so a plain fake behaves like a healthy tenant.

    Rates are fractions of data requests (``GET /api/v1/audit/log``; the token route never
    misbehaves), drawn from the seeded RNG in a fixed order per request: slow, reset, error,
    bad body; at most one fault per request (a stalled request then answers normally), so the
    ``injected`` counts equal the retries a client needs. A knob at 0 draws nothing, so turning
    one on never reshuffles another's sequence.

    * ``error_rate``/``error_statuses``/``retry_after``: answer 429/5xx (Retry-After on 429/503).
    * ``latency_s``: added to every data request.
    * ``reset_rate``: send the status line, headers and half the body, then drop the connection
      (the client sees the peer close mid-body: a reset, never a complete response).
    * ``slow_rate``/``slow_s``: sleep ``slow_s`` before answering (longer than a read timeout).
    * ``ignore_offset``: every page is answered as if offset were 0 (page one forever).
    * ``next_backwards``: after the first page, ``next`` points before the page just served.
    * ``lying_total``: added to the true ``total`` of every page (negative: fewer than exist),
      constant across pages; ``next`` stays honest.
    * ``bad_body_rate``: a 200 whose body is an HTML proxy page or truncated JSON, drawn only
      for requests that got this far
      (``bad_body_forms`` picks which; alternated by the RNG when both).
    * ``bad_record_rate``/``bad_record_kinds``: that fraction of rows is served as a corrupt
      variant (see :mod:`runai_extract.fake.badrecords`); chosen by a hash of the row id, so
      ground truth (``TenantSimulator.corrupt_ids``) knows which rows and how.
    * ``token_lifetime_s``, ``late_arrivals``, ``insert_during_paging``: tokens, late rows, drift.
    """

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (429, 503, 500, 502, 504)
    retry_after: str = "seconds"  # one of RETRY_AFTER_FORMS (a plain str so CLI flags pass through)
    retry_after_seconds: int = 1
    latency_s: float = 0.0
    token_lifetime_s: int = 3600
    late_arrivals: int = 0
    late_arrival_delay_s: float = 5.0
    insert_during_paging: int = 0
    reset_rate: float = 0.0
    slow_rate: float = 0.0
    slow_s: float = 0.0
    ignore_offset: bool = False
    next_backwards: bool = False
    lying_total: int = 0
    bad_body_rate: float = 0.0
    bad_body_forms: tuple[str, ...] = BAD_BODY_FORMS
    bad_record_rate: float = 0.0
    bad_record_kinds: tuple[str, ...] = BAD_RECORD_KINDS

    def __post_init__(self) -> None:
        for name in ("error_rate", "reset_rate", "slow_rate", "bad_body_rate", "bad_record_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {rate}")
        if self.slow_rate > 0 and self.slow_s <= 0:
            raise ValueError("slow_s must be positive when slow_rate > 0")
        if self.slow_s < 0:
            raise ValueError("slow_s must not be negative")
        if not self.bad_body_forms or set(self.bad_body_forms) - set(BAD_BODY_FORMS):
            raise ValueError(f"bad_body_forms must be a non-empty subset of {BAD_BODY_FORMS}")
        if not self.bad_record_kinds or set(self.bad_record_kinds) - set(BAD_RECORD_KINDS):
            raise ValueError(f"bad_record_kinds must be a non-empty subset of {BAD_RECORD_KINDS}")
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
        self._injected: Counter[str] = Counter()

    @property
    def injected(self) -> Counter[str]:
        """How many of each fault were injected so far: ``reset``, ``slow``, ``html``, ``429``, ..."""
        with self._lock:
            return Counter(self._injected)

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def draw_slow(self) -> float:
        """Seconds to stall this request (0 = answer normally)."""
        with self._lock:
            if not self._roll(self._config.slow_rate):
                return 0.0
            self._injected["slow"] += 1
            return self._config.slow_s

    def draw_reset(self) -> bool:
        """Whether to cut this request's connection mid-response."""
        with self._lock:
            if not self._roll(self._config.reset_rate):
                return False
            self._injected["reset"] += 1
            return True

    def draw_bad_body(self) -> str | None:
        """``html``, ``truncated`` or None: how to spoil this 200's body."""
        with self._lock:
            if not self._roll(self._config.bad_body_rate):
                return None
            form = self._rng.choice(self._config.bad_body_forms)
            self._injected[form] += 1
            return form

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
            self._injected[str(status)] += 1
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
