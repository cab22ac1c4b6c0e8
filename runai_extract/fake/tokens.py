"""Issuing and checking bearer tokens the way ``POST /api/v1/token`` does.

Two quirks of the real API and its official client shape this module (README section 2):

* Body keys are matched case-insensitively: the docs send ``clientId``, the spec's example
  ``clientID`` and runapy 1.224 ``{"grantType": "app_token", "AppId": .., "AppSecret": ..}``,
  and all of them work against a real tenant.
* runapy decodes the JWT payload with *standard* base64 (``b64decode(payload + "==")``), so a
  ``-`` or ``_`` in the base64url text breaks it. Tokens are re-minted with a fresh nonce until
  the header and payload segments are free of both.

Tokens are HMAC-signed with a key that lives only in this process: a token from another fake
(or a forged one) is "not familiar", exactly like a token from another tenant's issuer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import orjson

from runai_extract.fake.problems import ApiProblem

ISSUER = "https://fake.run.ai/auth/realms/runai-ledger"
_HEADER = {"alg": "HS256", "typ": "JWT"}

# grantType -> (id key, secret key), both lower-cased for the case-insensitive lookup.
_GRANT_KEYS: dict[str, tuple[str, str]] = {
    "client_credentials": ("clientid", "clientsecret"),
    "app_token": ("appid", "appsecret"),
}


class TokenResponseBody(TypedDict):
    accessToken: str
    expiresIn: int


@dataclass(frozen=True)
class Claims:
    sub: str
    tenant_id: str
    iat: int
    exp: int


class TokenIssuer:
    """Knows the one client credential pair this tenant accepts and the signing key."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        tenant_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._tenant_id = tenant_id
        self._clock = clock
        self._key = secrets.token_bytes(32)

    def grant(self, raw_body: bytes, lifetime_s: int) -> TokenResponseBody:
        """Answer a token request body, or raise ApiProblem (400 malformed, 401 rejected)."""
        fields = _parse_body(raw_body)
        grant_type = fields.get("granttype")
        if not isinstance(grant_type, str) or not grant_type:
            raise ApiProblem(400, "Required parameter is missing", "body field 'grantType' is required")
        keys = _GRANT_KEYS.get(grant_type)
        if keys is None:
            raise ApiProblem(401, f"Unsupported grant type {grant_type!r}.")
        given_id, given_secret = (fields.get(key) for key in keys)
        if not (
            self._matches(given_id, self._client_id) and self._matches(given_secret, self._client_secret)
        ):
            raise ApiProblem(401, "Invalid client credentials.")
        return {"accessToken": self.mint(self._client_id, lifetime_s), "expiresIn": lifetime_s}

    def mint(self, subject: str, lifetime_s: int) -> str:
        """A signed JWT whose first two segments are plain-base64 safe (no '-' or '_')."""
        now = int(self._clock())
        header = _b64url(orjson.dumps(_HEADER))
        # Only '>', '?', '~' or DEL in the third byte of a 3-byte group encode to '-'/'_', so
        # a leading nonce whose length shifts the alignment of everything after it clears them.
        for attempt in range(64):
            claims = {
                "nonce": "0" * attempt,
                "iss": ISSUER,
                "sub": subject,
                "tenant_id": self._tenant_id,
                "iat": now,
                "exp": now + lifetime_s,
            }
            payload = _b64url(orjson.dumps(claims))
            if _plain_base64_safe(header) and _plain_base64_safe(payload):
                signing_input = f"{header}.{payload}"
                return f"{signing_input}.{self._sign(signing_input)}"
        raise RuntimeError("could not mint a base64-safe token (odd characters in the client id?)")

    def verify(self, authorization: str | None) -> Claims:
        """Check an ``Authorization`` header value; raise ApiProblem(401) unless valid and unexpired."""
        if not authorization:
            raise ApiProblem(401, "Authorization header is missing.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise ApiProblem(401, "Issuer is not familiar.")
        header, payload, signature = token.strip().split(".")
        if not hmac.compare_digest(signature, self._sign(f"{header}.{payload}")):
            raise ApiProblem(401, "Issuer is not familiar.")
        claims = _decode_claims(payload)
        if claims.exp <= self._clock():
            raise ApiProblem(401, "Token is expired.")
        return claims

    def revoke_all(self) -> None:
        """Rotate the signing key: every token minted so far fails verification (401)."""
        self._key = secrets.token_bytes(32)

    def _sign(self, signing_input: str) -> str:
        return _b64url(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    @staticmethod
    def _matches(given: object, expected: str) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def _parse_body(raw_body: bytes) -> dict[str, Any]:
    """Lower-case the body's keys: the real endpoint matches them case-insensitively."""
    try:
        parsed = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise ApiProblem(400, "Invalid request body", "the body must be a JSON object") from exc
    if not isinstance(parsed, Mapping):
        raise ApiProblem(400, "Invalid request body", "the body must be a JSON object")
    return {str(key).lower(): value for key, value in parsed.items()}


def _decode_claims(payload: str) -> Claims:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return Claims(sub=data["sub"], tenant_id=data["tenant_id"], iat=data["iat"], exp=int(data["exp"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiProblem(401, "Issuer is not familiar.") from exc


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _plain_base64_safe(segment: str) -> bool:
    return "-" not in segment and "_" not in segment
