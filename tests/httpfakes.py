"""HTTP-level fakes for unit tests: a scriptable Run:ai control plane behind httpx.MockTransport.

Tests fake the server, never our own functions: the client, auth and paginator under test run
unchanged, and every behaviour is observed through the requests the fake received.
"""

from __future__ import annotations

import base64
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from runai_extract.api.client import RequestStats, RunaiClient
from runai_extract.core.settings import Secret, Settings

SECRET = "s3cr3t-Very-Private-Client-Value"
CLIENT_ID = "svc-ingest"
BASE_URL = "https://acme.run.ai"
TOKEN_PATH = "/api/v1/token"
AUDIT_PATH = "/api/v1/audit/log"

Route = Callable[[dict[str, str]], Any]
"""Answers a data request: gets the query params, returns a JSON-able body or an httpx.Response."""


def make_settings(**changes: Any) -> Settings:
    """Settings for unit tests: fast retries, a known secret, nothing read from the environment."""
    base = Settings(
        base_url=BASE_URL,
        client_id=CLIENT_ID,
        client_secret=Secret(SECRET),
        home=Path("/nonexistent/ledger-home"),
        lake_uri="/nonexistent/lake",
        max_attempts=4,
        backoff_base=0.5,
        backoff_cap=4.0,
        retry_after_cap=120.0,
    )
    return base.with_overrides(**changes)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with the given claims (the client never verifies signatures)."""
    header = b64url(orjson.dumps({"alg": "RS256", "typ": "JWT"}))
    return f"{header}.{b64url(orjson.dumps(claims))}.c2lnbmF0dXJl"


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, start: float = 1_748_851_200.0) -> None:  # 2025-06-02T08:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    """Records requested sleeps instead of sleeping; optionally moves a FakeClock along."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls: list[float] = []
        self._clock = clock

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self._clock is not None:
            self._clock.advance(seconds)


class FixedJitter(random.Random):
    """An rng whose jitter is always the low (0.0) or the high end of the range."""

    def __init__(self, high: bool = False) -> None:
        super().__init__(0)
        self._high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self._high else a


class CountingTransport(httpx.HTTPTransport):
    """httpx's real network transport, counting the requests it was asked to send.

    For loopback tests of connection failures, where no server sees the attempts to count them.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent += 1
        return super().handle_request(request)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"code": status, "message": message}, headers=headers)


Fault = httpx.Response | Exception


class FakeControlPlane:
    """A scriptable control plane: issues tokens, enforces bearer auth, serves routes, injects faults.

    ``faults`` and ``token_faults`` are consumed in order, one per request, before normal service;
    an Exception fault is raised from the transport (connect errors, timeouts, resets).
    """

    def __init__(self, clock: FakeClock, *, token_lifetime: float = 3600.0) -> None:
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.token_answer: Callable[[str], dict[str, Any]] | None = None  # override the token body
        self.token_delay = 0.0
        self.requests: list[httpx.Request] = []
        self.data_auth: list[str | None] = []  # Authorization as sent (httpx reuses a request on resend)
        self.issued: list[str] = []
        self.expiry: dict[str, float] = {}
        self.revoked: set[str] = set()
        self.reject_all_tokens = False
        self.faults: deque[Fault] = deque()
        self.token_faults: deque[Fault] = deque()
        self.routes: dict[str, Route] = {}
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, settings: Settings | None = None, **kwargs: Any) -> RunaiClient:
        kwargs.setdefault("sleep", SleepRecorder())
        kwargs.setdefault("rng", FixedJitter())
        kwargs.setdefault("clock", self.clock)
        kwargs.setdefault("stats", RequestStats())
        return RunaiClient(settings or make_settings(), transport=self.transport(), **kwargs)

    def data_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != TOKEN_PATH]

    def token_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == TOKEN_PATH]

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            is_token = request.url.path == TOKEN_PATH
            if not is_token:
                self.data_auth.append(request.headers.get("Authorization"))
            queue = self.token_faults if is_token else self.faults
            fault = queue.popleft() if queue else None
        if isinstance(fault, Exception):
            raise fault
        if fault is not None:
            return fault
        return self._token(request) if is_token else self._data(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        if body.get("clientId") != CLIENT_ID or body.get("clientSecret") != SECRET:
            return error_response(401, "invalid client credentials")
        time.sleep(self.token_delay)  # real sleep: lets threads pile up on the refresh lock
        with self._lock:
            exp = int(self.clock() + self.token_lifetime)
            token = make_jwt({"exp": exp, "sub": CLIENT_ID, "jti": next(self._serial)})
            self.issued.append(token)
            self.expiry[token] = exp
        answer = self.token_answer(token) if self.token_answer else {"accessToken": token, "expiresIn": 3600}
        return httpx.Response(200, json=answer)

    def _data(self, request: httpx.Request) -> httpx.Response:
        if not self._authorised(request.headers.get("Authorization", "")):
            return error_response(401, "Issuer is not familiar.")
        route = self.routes.get(request.url.path)
        if route is None:
            return error_response(404, "Resource id not found.")
        answer = route(dict(request.url.params))
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    def _authorised(self, header: str) -> bool:
        token = header.removeprefix("Bearer ")
        if not token or token not in self.expiry or token in self.revoked or self.reject_all_tokens:
            return False
        return self.clock() < self.expiry[token]


def audit_record(n: int, start: datetime | None = None) -> dict[str, Any]:
    """A Run:ai-shaped audit record; ``n`` makes the id and timestamp unique and ordered."""
    at = (start or datetime(2025, 6, 2, 8, tzinfo=UTC)) + timedelta(seconds=n)
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "tenant_id": "1001",
        "subject": "jane.doe@example.com",
        "subject_type": "User",
        "action": "create",
        "result": "Succeeded",
    }


def paged_route(
    records: Iterable[Any],
    *,
    items_key: str | None = "audit_logs",
    size_param: str = "numberOfSamples",
    with_total: bool = True,
    with_next: bool = True,
    server_cap: int | None = None,
) -> Route:
    """A well-behaved offset route: ``next = offset + len(page)`` while more remain, else absent."""
    rows = list(records)

    def route(params: dict[str, str]) -> Any:
        offset = int(params.get("offset", "0"))
        size = int(params.get(size_param, "20"))
        if server_cap is not None:
            size = min(size, server_cap)
        page = rows[offset : offset + size]
        if items_key is None:
            return page
        body: dict[str, Any] = {items_key: page}
        if with_total:
            body["total"] = len(rows)
        if with_next and offset + len(page) < len(rows):
            body["next"] = offset + len(page)
        return body

    return route
