"""Client-credentials authentication for the Run:ai control plane, as an ``httpx.Auth``.

Why a custom Auth rather than a header set once: long backfills outlive a token (airbyte#13660,
#70223 treat the resulting 401 as fatal). We refresh shortly before the JWT's ``exp``, and if a
data request still gets a 401 (revoked token, clock skew) we fetch one new token and retry that
request once; a second 401 means the credentials themselves are no good, so we stop.

Several worker threads share one TokenAuth. A lock around refresh makes them wait for a single
token request instead of each asking for its own, so there is one token request per expiry.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from runai_extract.core.errors import ApiContractError, AuthError, FatalApiError
from runai_extract.core.settings import Secret, Settings

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/v1/token"
DEFAULT_REFRESH_MARGIN = 60.0  # runapy's token_refresh_margin; tokens usually live an hour
DEFAULT_LIFETIME = 300.0  # when neither the JWT nor expiresIn says: assume short, refresh often

TokenPoster = Callable[[Mapping[str, str]], Any]
"""POSTs a JSON body to the token endpoint with the client's retry policy; returns parsed JSON."""

# Statuses the token endpoint uses for bad credentials: 400 per the spec, 401/403 in practice.
_REJECTED = frozenset({400, 401, 403})


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and the wall-clock times (epoch seconds) it expires and should be replaced."""

    value: str = field(repr=False)
    expires_at: float
    refresh_at: float


class TokenAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` to each request, refreshing before expiry and once on 401."""

    def __init__(
        self,
        settings: Settings,
        post: TokenPoster,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        default_lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        self._client_id = settings.client_id
        self._secret: Secret = settings.client_secret
        self._post = post
        self._clock = clock
        self._margin = refresh_margin
        self._default_lifetime = default_lifetime
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the current token; on 401 refresh once and resend; a second 401 is fatal.

        Overridden (not ``auth_flow``) because this flow does blocking I/O and takes a lock,
        which httpx documents as the reason to override the sync flow directly.
        """
        used = self.current_token()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code != 401:
            return
        response.read()  # release the connection before the token request borrows one
        log.info(
            "HTTP 401 on %s %s: fetching a new token and retrying once", request.method, request.url.path
        )
        request.headers["Authorization"] = f"Bearer {self._replace_rejected(used)}"
        response = yield request
        if response.status_code == 401:
            raise AuthError(
                f"the control plane rejected a freshly issued token for {self._client_id} on "
                f"{request.method} {request.url.path} (HTTP 401 twice): check the client's access"
            )

    def current_token(self) -> str:
        """A token valid for at least the refresh margin, fetching one only when needed."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        with self._lock:
            # Double-checked: another thread may have refreshed while we waited for the lock.
            token = self._token
            if token is None or self._clock() >= token.refresh_at:
                token = self._token = self._fetch()
            return token.value

    def _replace_rejected(self, rejected: str) -> str:
        """Fetch a new token unless another thread already replaced the rejected one."""
        with self._lock:
            token = self._token
            if token is None or token.value == rejected:
                token = self._token = self._fetch()
            return token.value

    def _fetch(self) -> AccessToken:
        requested_at = self._clock()
        body = {
            "grantType": "client_credentials",
            "clientId": self._client_id,
            "clientSecret": self._secret.reveal(),  # the one place the secret leaves the process
        }
        try:
            answer = self._post(body)
        except FatalApiError as exc:
            if exc.status in _REJECTED:
                raise AuthError(
                    f"the control plane rejected the client credentials for {self._client_id} "
                    f"(HTTP {exc.status} from {TOKEN_PATH})"
                ) from exc
            raise
        return self._read_answer(answer, requested_at)

    def _read_answer(self, answer: Any, requested_at: float) -> AccessToken:
        value = answer.get("accessToken") if isinstance(answer, dict) else None
        if not isinstance(value, str) or not value:
            raise ApiContractError(
                f"{TOKEN_PATH} answered 200 without an accessToken", status=200, url=TOKEN_PATH
            )
        expires_at = self._expiry(value, answer.get("expiresIn"), requested_at)
        # A token that lives less than twice the margin is replaced at half its life instead, so a
        # short-lived token does not turn into one token request per data request.
        margin = min(self._margin, (expires_at - requested_at) / 2)
        return AccessToken(value=value, expires_at=expires_at, refresh_at=expires_at - margin)

    def _expiry(self, token: str, expires_in: Any, now: float) -> float:
        """JWT ``exp`` first (the authority), then ``expiresIn``, then a conservative default."""
        exp = jwt_expiry(token)
        if exp is not None and exp > now:
            return exp
        if exp is not None:
            log.warning(
                "token exp is %.0f s in the past by our clock (clock skew?); using expiresIn", now - exp
            )
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return now + float(expires_in)
        return now + self._default_lifetime


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying the signature (we only schedule refresh).

    JWT segments are base64url without padding; runapy uses standard base64 here and breaks on
    ``-``/``_``, which is why we decode with the URL-safe alphabet and restore the padding.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(segment))
    except ValueError:  # binascii.Error and orjson.JSONDecodeError are both ValueErrors
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)
