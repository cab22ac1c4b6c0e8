"""The HTTP client for the Run:ai control plane: timeouts, bounded retries and error mapping.

Everything that talks to the API goes through :class:`RunaiClient` so that retry policy, error
names and secret scrubbing live in one place. The ``httpx`` transport is injected: unit tests pass
an ``httpx.MockTransport``, integration tests use the real fake server over loopback, and
production uses httpx's default transport with TLS verification on.

What is retried, and why:
- 429 and 500/502/503/504, honouring ``Retry-After`` (seconds or HTTP-date), capped so a server
  or proxy asking for a day cannot stall a run (elastic/connectors#1702);
- transport trouble (connect errors, timeouts, resets, protocol errors);
- a 200 whose body is not JSON: proxies and gateways answer HTML error pages with 200.
Everything else (400, 403, 404, ...) fails at once: retrying a wrong request does not fix it.

First contact is different. Until the control plane has answered once, a refused connection, an
unknown host or a certificate we do not trust means the address or the trust store is wrong, not
that the server is busy: one quick retry, then a ConfigError that names the URL. Callers make that
first contact with :meth:`RunaiClient.connect` in their own thread before starting workers, so a
typo'd port costs a second, not eight backed-off attempts per slice. A 403 on the first data call
means the application lacks a role: an AuthError, said once.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from runai_extract import __version__
from runai_extract.api.auth import DEFAULT_REFRESH_MARGIN, TOKEN_PATH, TokenAuth
from runai_extract.core.errors import (
    ApiContractError,
    ApiError,
    AuthError,
    ConfigError,
    FatalApiError,
    RetriableApiError,
    RetriesExhaustedError,
)
from runai_extract.core.settings import Secret, Settings, require_api
from runai_extract.core.times import parse_retry_after

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transient request failures. DecodingError (a truncated or corrupt gzip body) is not a
# TransportError in httpx, but it is the same kind of trouble: a connection cut mid-body.
_RETRY_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx.DecodingError,
)
# Failing to connect at all, as opposed to a connection cut or stalled once established.
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
FIRST_CONTACT_ATTEMPTS = 2  # one attempt plus one quick retry (a listener restarting, a DNS blip)
FIRST_CONTACT_PAUSE = 0.5  # seconds; no backoff: nothing has answered yet that could be overloaded
_MESSAGE_LIMIT = 300
_WARN_FROM_ATTEMPT = 3


class RequestStats:
    """Thread-safe counters of what the client did, for run summaries and tests.

    ``requests`` counts every HTTP request sent (token requests and 401 resends included);
    ``token_requests`` counts the POSTs to the token endpoint among them.
    """

    FIELDS = ("requests", "retries", "throttled_429", "server_errors", "transport_errors", "token_requests")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)
        # The same counts per thread, carried into the page-ahead requests a thread starts
        # (RunaiClient.prefetch_json runs them in the starting thread's context): thread_snapshot.
        self._mine: contextvars.ContextVar[dict[str, int]] = contextvars.ContextVar("request_counts")

    def add(self, name: str, amount: int = 1) -> None:
        if name not in self._counts:
            raise KeyError(f"unknown counter {name!r}")
        mine = self.thread_counts()
        with self._lock:
            self._counts[name] += amount
            mine[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def thread_snapshot(self) -> dict[str, int]:
        """The counts of requests made by the calling thread and the pages it had fetched ahead.

        Slices run on worker threads sharing one client; a slice charges itself with the
        difference of two of these snapshots, so concurrent slices never count each other's
        requests (every request, retry and token refresh is counted for the thread that needed it).
        """
        mine = self.thread_counts()
        with self._lock:
            return dict(mine)

    def thread_counts(self) -> dict[str, int]:
        """The calling context's live counts, created on first use (before any context is copied)."""
        counts = self._mine.get(None)
        if counts is None:
            counts = dict.fromkeys(self.FIELDS, 0)
            self._mine.set(counts)
        return counts

    @property
    def requests(self) -> int:
        return self._counts["requests"]

    @property
    def retries(self) -> int:
        return self._counts["retries"]

    @property
    def throttled_429(self) -> int:
        return self._counts["throttled_429"]

    @property
    def server_errors(self) -> int:
        return self._counts["server_errors"]

    @property
    def transport_errors(self) -> int:
        return self._counts["transport_errors"]

    @property
    def token_requests(self) -> int:
        return self._counts["token_requests"]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with capped exponential backoff and full jitter (AWS's "full jitter")."""

    max_attempts: int
    backoff_base: float
    backoff_cap: float
    retry_after_cap: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.max_attempts, settings.backoff_base, settings.backoff_cap, settings.retry_after_cap
        )

    def wait(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to pause before retry number ``retry`` (1 = the pause before the second attempt).

        With a Retry-After we wait at least what the server asked, plus a little jitter so that
        threads told the same instant do not return together, and never more than the cap.
        """
        if retry_after is not None:
            return min(self.retry_after_cap, retry_after + rng.uniform(0, self.backoff_base))
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(retry - 1, 62))
        return rng.uniform(0, ceiling)


_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+(?:\.[\w-]*)?")
_KEYED = re.compile(
    r"(?i)((?:access_?token|refresh_?token|id_?token|client_?secret|app_?secret|password|authorization)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,;}]+"
)


class Redactor:
    """Scrubs anything token-like from text before it reaches a message or a log line.

    Catches bearer headers, JWT-shaped strings and ``secret=...``-style pairs, plus the literal
    client secret in case a server echoes it back in an error message.
    """

    def __init__(self, secrets: Sequence[Secret] = ()) -> None:
        self._secrets = tuple(secrets)

    def __call__(self, text: str) -> str:
        text = _BEARER.sub(r"\1***", text)
        text = _JWT.sub("***", text)
        text = _KEYED.sub(r"\1***", text)
        for secret in self._secrets:
            value = secret.reveal()  # compared, never emitted
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text


redact = Redactor()
"""Scrubs token-like text; for callers without a client secret at hand."""


class _Transient(Exception):
    """Internal: one attempt failed in a way that another attempt may fix."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


class RunaiClient:
    """GETs JSON from the control plane with authentication, bounded retries and clear errors.

    ``transport``, ``sleep``, ``rng`` and ``clock`` are the test seams (an ``httpx.MockTransport``
    or the loopback fake; recorded sleeps; fixed jitter; a fake wall clock for token expiry and
    HTTP-date Retry-After). One client is safe to share between worker threads.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        stats: RequestStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        token_refresh_margin: float = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        require_api(settings)
        self.stats = stats if stats is not None else RequestStats()
        self._policy = RetryPolicy.from_settings(settings)
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._redact = Redactor([settings.client_secret])
        self._base_url = settings.base_url
        self._client_id = settings.client_id
        self._server_time: datetime | None = None
        # Set by the first HTTP answer of any kind: from then on the address and TLS are known good
        # and connection trouble is transient. _data_answered: the first 2xx of a data request.
        self._answered = threading.Event()
        self._data_answered = threading.Event()
        self._deprecated: dict[str, tuple[str, str | None]] = {}  # path -> (Deprecation, Sunset)
        self._http = _build_http(settings, transport, self._count_request, self._count_response)
        self._auth = TokenAuth(settings, self._post_token, clock=clock, refresh_margin=token_refresh_margin)
        # One limit for every data request of this client: parallel slices, their pages fetched
        # ahead, workload details. Token requests do not take a slot (a thread holding one may
        # need a token), and nobody waits on another request while holding one, so no deadlock.
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._ahead_pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.page_ahead = settings.concurrency if settings.concurrency > 1 else 0
        """How many pages a paginator may have in flight ahead of the one it reads (0: serial)."""

    def get_json(self, path: str, params: Mapping[str, str | int]) -> Any:
        """GET ``path`` (relative to the base URL) and return the parsed JSON body."""
        return self._call("GET", path, params=params, body=None, auth=self._auth)

    def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON body (a consumption report request) and return the parsed JSON answer.

        Retried like a GET on 429/5xx: a request the server did not act on is safe to repeat; one
        it acted on before failing may leave a duplicate report behind, which costs nothing.
        """
        return self._call("POST", path, params=None, body=body, auth=self._auth)

    def get_text(self, path: str) -> str:
        """GET ``path`` and return the body as text (a report's CSV file)."""
        return str(self._call("GET", path, params=None, body=None, auth=self._auth, expect="text"))

    def delete(self, path: str) -> None:
        """DELETE ``path`` (204, no body)."""
        self._call("DELETE", path, params=None, body=None, auth=self._auth, expect="none")

    def connect(self) -> None:
        """Make first contact now, in the calling thread: fetch the token (kept for later requests).

        Call it before starting worker threads, so a wrong address, an untrusted certificate or
        rejected credentials fail once, in a second or two, instead of once per worker after each
        has retried with backoff.
        """
        self._auth.current_token()

    def prefetch_json(self, path: str, params: Mapping[str, str | int]) -> Future[Any]:
        """Start ``get_json`` on the client's pool and return its future (paging ahead).

        The request is counted for the calling thread (see RequestStats.thread_snapshot) and
        waits for a slot like any data request, so paging ahead never exceeds the concurrency.
        """
        self.stats.thread_counts()  # create the caller's counts before its context is copied
        context = contextvars.copy_context()
        return self._pool().submit(context.run, self.get_json, path, params)

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._ahead_pool is None:
                workers = max(1, self.page_ahead)
                self._ahead_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ledger-page")
            return self._ahead_pool

    def close(self) -> None:
        with self._pool_lock:
            pool, self._ahead_pool = self._ahead_pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def __enter__(self) -> RunaiClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _post_token(self, body: Mapping[str, str]) -> Any:
        # The token request gets the same retry policy as data requests, but no bearer auth.
        return self._call("POST", TOKEN_PATH, params=None, body=body, auth=None)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None,
        body: Mapping[str, Any] | None,
        auth: httpx.Auth | None,
        expect: str = "json",
    ) -> Any:
        if not path.startswith("/"):
            raise ValueError(f"API paths are relative to the base URL and start with '/', got {path!r}")
        target = self._target(method, path, params)
        attempt = 1
        while True:  # ends in a return or a raise: the last attempt's error is what we give up with
            try:
                request = self._http.build_request(method, path, params=params, json=body)
                return self._attempt(request, target, auth, expect)
            except _Transient as fault:
                error = fault.error
                if self._is_first_contact_failure(error):
                    if attempt >= FIRST_CONTACT_ATTEMPTS:
                        raise self._unreachable(error) from error
                    self._pause(target, attempt, error, first_contact=True)
                elif attempt >= self._policy.max_attempts:
                    raise self._give_up(target, error) from error
                else:
                    self._pause(target, attempt, error)
                attempt += 1

    def _attempt(
        self, request: httpx.Request, target: str, auth: httpx.Auth | None, expect: str = "json"
    ) -> Any:
        try:
            if auth is None:
                response = self._http.send(request)
            else:
                with self._slots:
                    response = self._http.send(request, auth=auth)
        except httpx.RequestError as exc:
            self.stats.add("transport_errors")
            raise self._transport_failure(exc, target) from exc
        status = response.status_code
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
            detail = f"HTTP {status}: {self._server_message(response)}"
            raise _Transient(RetriableApiError(detail, status=status, url=target, retry_after=retry_after))
        if not 200 <= status < 300:
            message = f"{target} failed with HTTP {status}: {self._server_message(response)}"
            if status == 403 and auth is not None and not self._data_answered.is_set():
                raise AuthError(
                    f"{message}; the token was accepted but the application {self._client_id} may not "
                    "read this: give its role access to it"
                )
            raise FatalApiError(message, status=status, url=target)
        if auth is not None:
            self._data_answered.set()
        if expect == "text":
            return response.text
        if expect == "none":
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            kind = response.headers.get("Content-Type", "no content type")
            detail = f"HTTP {status} with a body that is not JSON ({kind}, {len(response.content)} bytes)"
            raise _Transient(ApiContractError(detail, status=status, url=target)) from None

    def _transport_failure(self, exc: httpx.RequestError, target: str) -> Exception:
        """Map an httpx transport error: transient ones are retried, the rest are fatal."""
        detail = self._clean(f"{type(exc).__name__}: {exc}")
        if _is_tls_verification_failure(exc):
            message = (
                f"{target}: TLS certificate verification failed ({detail}); install the CA certificate, "
                "or set RUNAI_VERIFY_TLS=false only for a test tenant"
            )
            # Before any answer it is the configuration (the trust store or the URL); later, a
            # certificate changed under a running sync, which no retry fixes either.
            return FatalApiError(message, url=target) if self._answered.is_set() else ConfigError(message)
        if isinstance(exc, _RETRY_ERRORS):
            error = RetriableApiError(detail, url=target)
            error.__cause__ = exc
            return _Transient(error)
        return FatalApiError(f"{target}: {detail}", url=target)

    def _is_first_contact_failure(self, error: ApiError) -> bool:
        """A failure to connect at all, before the control plane ever answered."""
        return not self._answered.is_set() and isinstance(error.__cause__, _CONNECT_ERRORS)

    def _unreachable(self, last: ApiError) -> ConfigError:
        return ConfigError(
            f"cannot reach the control plane at {self._base_url} ({last}; tried {FIRST_CONTACT_ATTEMPTS} "
            "times): check RUNAI_BASE_URL (--base-url) and that the host is reachable from here"
        )

    def _pause(self, target: str, attempt: int, error: ApiError, *, first_contact: bool = False) -> None:
        retry_after = error.retry_after if isinstance(error, RetriableApiError) else None
        wait = FIRST_CONTACT_PAUSE if first_contact else self._policy.wait(attempt, retry_after, self._rng)
        attempts = FIRST_CONTACT_ATTEMPTS if first_contact else self._policy.max_attempts
        # One or two failures are routine on a busy control plane; from the third on it is worth
        # seeing at the default level, since the backoff starts to add up.
        level = logging.WARNING if attempt >= _WARN_FROM_ATTEMPT else logging.INFO
        log.log(
            level,
            "%s: %s; attempt %d of %d failed, retrying in %.2f s",
            target,
            error,
            attempt,
            attempts,
            wait,
        )
        self.stats.add("retries")
        self._sleep(wait)

    def _give_up(self, target: str, last: ApiError) -> ApiError:
        attempts = self._policy.max_attempts
        if isinstance(last, ApiContractError):
            # A proxy that keeps answering non-JSON is not "try later": the endpoint is wrong.
            return ApiContractError(
                f"{target} answered {last} in all {attempts} attempts", status=last.status, url=target
            )
        return RetriesExhaustedError(
            f"{target}: still failing after {attempts} attempts; last: {last}", status=last.status, url=target
        )

    def _target(self, method: str, path: str, params: Mapping[str, str | int] | None) -> str:
        """The request as messages show it: method, URL and query; never headers or bodies.

        The base URL is included because "connection refused" is useless without the host, and
        Settings guarantees it carries no credentials.
        """
        query = f"?{urlencode(params, safe=':,')}" if params else ""  # readable times and filters
        return self._redact(f"{method} {self._base_url}{path}{query}")

    def _server_message(self, response: httpx.Response) -> str:
        """The Error body's ``message`` (Run:ai's ``{code, message}``), or a short excerpt."""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            for key in ("message", "error_description", "error", "details"):
                if isinstance(body.get(key), str) and body[key]:
                    return self._clean(body[key])
        text = response.content[:_MESSAGE_LIMIT].decode("utf-8", "replace")
        return self._clean(text) or "(empty body)"

    def _clean(self, text: str) -> str:
        """Redact, fold whitespace and control characters, and keep messages one short line."""
        flat = " ".join(self._redact(text).split())
        return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 3] + "..."

    def _count_request(self, request: httpx.Request) -> None:
        self.stats.add("requests")
        if request.url.path.endswith(TOKEN_PATH):
            self.stats.add("token_requests")

    @property
    def server_time(self) -> datetime | None:
        """The server's clock (its ``Date`` header) at the latest response, or None if it sent none.

        Live lists (workloads) say what is true "now" on the server; this is that now, free of
        our own clock's skew.
        """
        return self._server_time

    @property
    def deprecation_headers(self) -> dict[str, tuple[str, str | None]]:
        """Path -> (Deprecation, Sunset) for every path that answered with a Deprecation or Sunset header."""
        return dict(self._deprecated)

    def _count_response(self, response: httpx.Response) -> None:
        self._answered.set()
        deprecation, sunset = response.headers.get("Deprecation"), response.headers.get("Sunset")
        if deprecation or sunset:
            self._deprecated[response.request.url.path] = (deprecation or "", sunset)
        stamp = response.headers.get("Date")
        if stamp:
            # A garbled Date header is not worth failing a request over.
            with contextlib.suppress(TypeError, ValueError):
                self._server_time = parsedate_to_datetime(stamp).astimezone(UTC)
        if response.status_code == 429:
            self.stats.add("throttled_429")
        elif response.status_code >= 500:
            self.stats.add("server_errors")


def _build_http(
    settings: Settings,
    transport: httpx.BaseTransport | None,
    on_request: Callable[[httpx.Request], None],
    on_response: Callable[[httpx.Response], None],
) -> httpx.Client:
    return httpx.Client(
        base_url=settings.base_url,
        transport=transport,
        verify=settings.verify_tls,
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        # Redirects are not followed: a redirected API call means a wrong base URL, and following
        # it silently could carry the bearer token somewhere else.
        follow_redirects=False,
        headers={"Accept": "application/json", "User-Agent": f"runai-ledger/{__version__}"},
        limits=httpx.Limits(max_connections=max(10, 2 * settings.concurrency)),
        event_hooks={"request": [on_request], "response": [on_response]},
    )


def _is_tls_verification_failure(exc: BaseException) -> bool:
    """httpx reports a bad certificate as a ConnectError; retrying it 8 times only hides the cause."""
    seen: BaseException | None = exc
    for _ in range(16):  # exception chains are short; the bound guards against a cycle
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
