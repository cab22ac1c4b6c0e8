"""The HTTP ``Date`` header in simulated time, on every response.

An extractor takes "now on the server" from ``Date`` (a workload still running has run until
then), so the fake must send the simulator's ``sim_now``, not the wall clock: uvicorn's own
header is switched off (``date_header=False``) and this middleware adds the simulated one, in
RFC 7231 IMF-fixdate form (``Tue, 03 Jun 2025 12:00:00 GMT``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


class SimulatedDateMiddleware:
    """Adds ``Date: <sim_now>`` to each HTTP response (replacing any Date already set)."""

    def __init__(self, app: ASGIApp, clock: Callable[[], datetime]) -> None:
        self._app = app
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def dated_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["date"] = http_date(self._clock())
            await send(message)

        await self._app(scope, receive, dated_send)
