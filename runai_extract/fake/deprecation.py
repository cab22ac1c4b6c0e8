"""``Deprecation`` and ``Sunset`` headers on the paths a release deprecates (RFC 9745, RFC 8594).

Self-hosted releases deprecate an endpoint for two releases before removing it (releases.py:
``DEPRECATIONS``); SaaS announces a removal date instead. The fake marks every 2xx answer on a
deprecated path with ``Deprecation: true``, plus ``Sunset: <HTTP-date>`` for the paths given in
``FakeConfig.sunsets`` (a SaaS tenant announcing a removal), so a client can be tested on both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


class DeprecationMiddleware:
    """Adds the headers to successful responses on the given path templates."""

    def __init__(self, app: ASGIApp, deprecated: Mapping[str, str | None]) -> None:
        """``deprecated``: path template -> Sunset HTTP-date (None: Deprecation only)."""
        self._app = app
        self._rules = [(_pattern(template), sunset) for template, sunset in deprecated.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = None
        if scope["type"] == "http":
            rule = next((r for r in self._rules if r[0].match(scope["path"])), None)
        if rule is None:
            await self._app(scope, receive, send)
            return
        sunset = rule[1]

        async def marked_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                headers = MutableHeaders(scope=message)
                headers["deprecation"] = "true"
                if sunset is not None:
                    headers["sunset"] = sunset
            await send(message)

        await self._app(scope, receive, marked_send)
