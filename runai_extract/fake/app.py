"""The HTTP surface of the fake control plane: a Starlette app speaking one release's API.

Routes: ``POST /api/v1/token``, ``GET /api/v1/audit/log`` (2.19 on), ``GET /v1/k8s/audit``
(2.18 and 2.19, legacy_audit.py) and the workload/lookup routes of workload_routes.py; which of
them exist is decided by the release table (releases.py), never by comparing versions here. Everything else is 404 with the API's ``Error`` body (not Starlette's
plain-text page), because clients parse error bodies. Every response carries a ``Date`` header
in simulated time (simdate.py).

Order of checks on a data request, as a gateway in front of the real API does it: added
latency, a stall (``slow_rate``), a connection cut (``reset_rate``), then an injected fault (a
429/5xx comes from the gateway before auth runs), then the bearer token (401), then parameter
validation (400), and last a spoiled 200 body (``bad_body_rate``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from runai_extract.fake.deprecation import DeprecationMiddleware
from runai_extract.fake.faults import PROXY_PAGE, FaultInjector
from runai_extract.fake.filters import AuditQuery, parse_audit_query
from runai_extract.fake.legacy_audit import LEGACY_AUDIT_PATH, parse_legacy_query
from runai_extract.fake.metric_routes import Answer, gpu_routes
from runai_extract.fake.problems import ApiProblem
from runai_extract.fake.requestlog import RequestLog, RequestLogMiddleware
from runai_extract.fake.simdate import SimulatedDateMiddleware
from runai_extract.fake.simulator import TenantSimulator
from runai_extract.fake.tokens import TokenIssuer
from runai_extract.fake.workload_routes import Render, workload_routes

JSON = "application/json"
TOKEN_PATH = "/api/v1/token"
AUDIT_LOG_PATH = "/api/v1/audit/log"


class FakeApi:
    """Request handlers over one tenant; the pieces are injected so tests can reach each."""

    def __init__(
        self, simulator: TenantSimulator, issuer: TokenIssuer, faults: FaultInjector, log: RequestLog
    ) -> None:
        self.simulator = simulator
        self.issuer = issuer
        self.faults = faults
        self.log = log
        # FakeConfig.pre_encode: audit pages by query (paging included), encoded once.
        self._encoded: dict[AuditQuery, bytes] | None = {} if simulator.config.pre_encode else None

    def asgi_app(self) -> Starlette:
        config = self.simulator.config
        served = config.release
        routes = [Route(TOKEN_PATH, self.token, methods=["POST"])]
        if served.has("audit.modern"):
            routes.append(Route(AUDIT_LOG_PATH, self.audit_log, methods=["GET"]))
        if served.has("audit.legacy"):
            routes.append(Route(LEGACY_AUDIT_PATH, self.legacy_audit_log, methods=["GET"]))
        routes.extend(workload_routes(self, self.simulator.workloads, served))
        routes.extend(gpu_routes(self, self.simulator.workloads, config))
        deprecated: dict[str, str | None] = dict.fromkeys(served.deprecated_paths())
        deprecated.update(config.sunsets)
        return Starlette(
            routes=routes,
            middleware=[
                Middleware(RequestLogMiddleware, log=self.log),
                Middleware(SimulatedDateMiddleware, clock=lambda: self.simulator.sim_now),
                Middleware(DeprecationMiddleware, deprecated=deprecated),
            ],
            exception_handlers={
                ApiProblem: _problem_response,
                HTTPException: _http_exception_response,
                Exception: _unexpected_error_response,
            },
        )

    async def token(self, request: Request) -> Response:
        """Exchange client or app credentials for a JWT (faults never apply to the token route)."""
        granted = self.issuer.grant(await request.body(), self.faults.config.token_lifetime_s)
        return _json(granted)

    async def audit_log(self, request: Request) -> Response:
        # One injected fault per request: a stalled one then answers normally (to a client that
        # has most likely given up), so injected counts match the retries a client needs.
        stalled = await self._stall()
        fault = None if stalled else self._misbehave()
        if fault is not None:
            return fault
        self.issuer.verify(request.headers.get("authorization"))
        query = parse_audit_query(request.query_params.multi_items())
        # Off the event loop: a filtered sort over a million rows takes a moment, and the
        # loop must keep answering token requests and timing other requests' latency.
        body = await self._audit_page(query)
        if query.offset == 0:
            # Offset drift: new rows land in this window after its first page went out.
            self.simulator.drift(query, self.faults.drift_rows_for(query.window))
        spoiled = None if stalled else self.faults.draw_bad_body()
        if spoiled == "html":
            return Response(PROXY_PAGE, media_type="text/html; charset=utf-8")
        if spoiled == "truncated":
            return Response(body[: len(body) // 2], media_type=JSON)
        return Response(body, media_type=JSON)

    async def _audit_page(self, query: AuditQuery) -> bytes:
        cached = None if self._encoded is None else self._encoded.get(query)
        if cached is not None:
            return cached
        body = await run_in_threadpool(self.simulator.page_json, query)
        if self._encoded is not None:
            self._encoded[query] = body
        return body

    async def legacy_audit_log(self, request: Request) -> Response:
        """``GET /v1/k8s/audit`` (2.18/2.19): same faults and auth as any data route."""
        simulator, faults = self.simulator, self.faults

        def render(params: Sequence[tuple[str, str]], path: Mapping[str, str]) -> bytes:
            query = parse_legacy_query(params, simulator.now)
            body = simulator.legacy_page_json(query)
            if query.offset == 0:  # offset drift, as on the modern log: new rows after page one
                window = AuditQuery(query.start_us, query.end_us)
                simulator.drift(window, faults.drift_rows_for(window.window))
            return body

        return await self.data(request, render)

    async def data(self, request: Request, render: Render) -> Response:
        """A data route other than the audit log (workloads, lookups): same faults, auth, spoiling."""
        stalled = await self._stall()
        fault = None if stalled else self._misbehave()
        if fault is not None:
            return fault
        self.issuer.verify(request.headers.get("authorization"))
        body = await run_in_threadpool(render, request.query_params.multi_items(), request.path_params)
        spoiled = None if stalled else self.faults.draw_bad_body()
        if spoiled == "html":
            return Response(PROXY_PAGE, media_type="text/html; charset=utf-8")
        if spoiled == "truncated":
            return Response(body[: len(body) // 2], media_type=JSON)
        return Response(body, media_type=JSON)

    async def respond(self, request: Request, answer: Answer) -> Response:
        """A data route that picks its own status and media type (metrics' 207, reports' 202/204/CSV)."""
        stalled = await self._stall()
        fault = None if stalled else self._misbehave()
        if fault is not None:
            return fault
        self.issuer.verify(request.headers.get("authorization"))
        body = await request.body()
        status, payload, media = await run_in_threadpool(
            answer, request.query_params.multi_items(), request.path_params, body
        )
        return Response(payload, status_code=status, media_type=media)

    async def _stall(self) -> bool:
        """Added latency for every request; True when this one was also stalled (``slow_rate``)."""
        latency = self.faults.config.latency_s
        if latency > 0:
            await asyncio.sleep(latency)
        stall = self.faults.draw_slow()
        if stall > 0:
            await asyncio.sleep(stall)
        return stall > 0

    def _misbehave(self) -> Response | None:
        if self.faults.draw_reset():
            return _CutConnection()
        fault = self.faults.draw()
        if fault is None:
            return None
        problem = ApiProblem(fault.status, fault.message)
        return Response(problem.json(), status_code=fault.status, headers=fault.headers, media_type=JSON)


class _CutConnection(Response):
    """Promise a body, send part of it, then return: uvicorn closes the connection mid-body.

    To the client this is a peer that vanished mid-response (httpx: RemoteProtocolError), the
    way a reset behind a load balancer looks; no complete response ever arrives.
    """

    _PARTIAL = b'{"total":'

    def __init__(self) -> None:
        super().__init__(media_type=JSON)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", JSON.encode()), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self._PARTIAL, "more_body": True})


def _json(payload: object) -> Response:
    return Response(orjson.dumps(payload), media_type=JSON)


async def _problem_response(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiProblem):  # registered for ApiProblem only; narrows the type
        raise exc
    return Response(exc.json(), status_code=exc.status, media_type=JSON)


async def _http_exception_response(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 rendered as the API's Error body."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    messages = {404: "Resource not found.", 405: "Method not allowed."}
    problem = ApiProblem(
        exc.status_code,
        messages.get(exc.status_code, str(exc.detail)),
        f"{request.method} {request.url.path}",
    )
    return Response(problem.json(), status_code=exc.status_code, headers=exc.headers, media_type=JSON)


async def _unexpected_error_response(request: Request, exc: Exception) -> Response:
    """A bug in the fake still answers with the API's 500 Error body (and is logged by uvicorn)."""
    return Response(ApiProblem(500, "Something went wrong.").json(), status_code=500, media_type=JSON)
