"""A record of every request the fake answered, for tests to assert on ("retried 3 times").

Only the method, path, query and status are kept: never headers or bodies, so a bearer token
or a client secret can't end up in a test failure message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]  # decoded; the last value wins for a repeated parameter
    query_string: str  # as sent
    status: int
    at: float  # time.monotonic() when the response started
    received: float = 0.0  # time.monotonic() when the request arrived: [received, at] is in flight


class RequestLog:
    """Thread-safe, append-only list of :class:`RequestRecord` (written by the server's thread)."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def count(self, path: str, method: str | None = None) -> int:
        return sum(1 for r in self.snapshot() if r.path == path and (method is None or r.method == method))

    def peak_in_flight(self, path: str) -> int:
        """The most requests to ``path`` the server was handling at the same moment."""
        edges = sorted(
            edge
            for r in self.snapshot()
            if r.path == path
            for edge in ((r.received, 1), (r.at, -1))  # at a tie the end sorts first
        )
        peak = current = 0
        for _, step in edges:
            current += step
            peak = max(peak, current)
        return peak

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class RequestLogMiddleware:
    """Pure ASGI middleware: notes each HTTP response's status as it starts."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self._app = app
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        raw_query = scope.get("query_string", b"").decode("latin-1")
        received = time.monotonic()

        async def noting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._log.append(
                    RequestRecord(
                        method=scope["method"],
                        path=scope["path"],
                        query=dict(parse_qsl(raw_query, keep_blank_values=True)),
                        query_string=raw_query,
                        status=int(message["status"]),
                        at=time.monotonic(),
                        received=received,
                    )
                )
            await send(message)

        await self._app(scope, receive, noting_send)
