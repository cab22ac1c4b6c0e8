"""POST /api/v1/token and bearer checks, as a client sees them."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import httpx
import pytest

from runai_extract.fake import FakeControlPlane, FaultConfig

TOKEN = "/api/v1/token"
AUDIT = "/api/v1/audit/log"
WINDOW = {"start": "2025-06-03T00:00:00Z", "end": "2025-06-03T12:00:00Z"}


def _claims(token: str) -> dict[str, object]:
    """Decode the payload the way runapy does: *standard* base64 with '==' appended."""
    claims: dict[str, object] = json.loads(base64.b64decode(token.split(".")[1] + "=="))
    return claims


@pytest.mark.parametrize(
    "body",
    [
        {"grantType": "client_credentials", "clientId": "ledger-demo", "clientSecret": "ledger-demo-secret"},
        {"grantType": "client_credentials", "clientID": "ledger-demo", "clientSecret": "ledger-demo-secret"},
        {"grantType": "app_token", "AppId": "ledger-demo", "AppSecret": "ledger-demo-secret"},  # runapy 1.224
        {"GRANTTYPE": "app_token", "appid": "ledger-demo", "appSECRET": "ledger-demo-secret"},
    ],
)
def test_grants_match_body_keys_case_insensitively(anon: httpx.Client, body: dict[str, str]) -> None:
    response = anon.post(TOKEN, json=body)
    assert response.status_code == 200
    assert set(response.json()) == {"accessToken", "expiresIn"}


def test_issued_jwt_decodes_with_plain_base64_and_carries_exp(anon: httpx.Client) -> None:
    for _ in range(20):  # the nonce/alignment trick must hold for every token, not just one
        body = {"grantType": "app_token", "AppId": "ledger-demo", "AppSecret": "ledger-demo-secret"}
        token = anon.post(TOKEN, json=body).json()["accessToken"]
        header, payload, _signature = token.split(".")
        assert not set("-_") & set(header + payload)
        claims = _claims(token)
        assert claims["sub"] == "ledger-demo" and claims["tenant_id"] == "1001"
        assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
        assert claims["exp"] - claims["iat"] == 3600
        assert abs(claims["iat"] - time.time()) < 60


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"grantType": "client_credentials", "clientId": "ledger-demo", "clientSecret": "wrong"}, 401),
        (
            {
                "grantType": "client_credentials",
                "clientId": "someone-else",
                "clientSecret": "ledger-demo-secret",
            },
            401,
        ),
        ({"grantType": "client_credentials", "clientId": "ledger-demo"}, 401),
        ({"grantType": "password", "username": "ledger-demo", "password": "ledger-demo-secret"}, 401),
        ({"clientId": "ledger-demo", "clientSecret": "ledger-demo-secret"}, 400),
        (["not", "an", "object"], 400),
    ],
)
def test_bad_token_requests_are_refused_with_the_error_body(
    anon: httpx.Client, body: object, status: int
) -> None:
    response = anon.post(TOKEN, json=body)
    assert response.status_code == status
    assert response.json()["code"] == status and response.json()["message"]
    assert "ledger-demo-secret" not in response.text


def test_malformed_json_is_a_400(plane: FakeControlPlane) -> None:
    response = httpx.post(
        plane.base_url + TOKEN, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 400


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic bGVkZ2VyLWRlbW86eA==", "Bearer a.b.c"],
)
def test_data_routes_need_a_valid_bearer(anon: httpx.Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = anon.get(AUDIT, params=WINDOW, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == 401


def test_a_token_from_another_tenant_is_not_familiar(
    plane: FakeControlPlane,
    start_plane: Callable[..., FakeControlPlane],
    token_for: Callable[[FakeControlPlane], str],
) -> None:
    other = start_plane(days=1, events_per_day=10)
    response = httpx.get(
        plane.base_url + AUDIT, params=WINDOW, headers={"Authorization": f"Bearer {token_for(other)}"}
    )
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "Issuer is not familiar."}


def test_short_lived_tokens_expire_mid_run(
    start_plane: Callable[..., FakeControlPlane], token_for: Callable[[FakeControlPlane], str]
) -> None:
    # 2 s, not 1: exp = floor(issue time) + lifetime, so a 1 s token issued at x.999 was already
    # expired by the first request (a flaky failure); 2 s leaves at least a second of validity.
    plane = start_plane(days=1, events_per_day=50, faults=FaultConfig(token_lifetime_s=2))
    token = token_for(plane)
    assert _claims(token)["exp"] == _claims(token)["iat"] + 2
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(plane.base_url + AUDIT, params=WINDOW, headers=headers).status_code == 200
    time.sleep(2.1)  # exp = floor(issue time) + 2, so this is past it whatever the phase
    expired = httpx.get(plane.base_url + AUDIT, params=WINDOW, headers=headers)
    assert expired.status_code == 401
    assert expired.json() == {"code": 401, "message": "Token is expired."}
    plane.set_faults(FaultConfig())  # back to hour-long tokens: a fresh one works again
    fresh = {"Authorization": f"Bearer {token_for(plane)}"}
    assert httpx.get(plane.base_url + AUDIT, params=WINDOW, headers=fresh).status_code == 200
