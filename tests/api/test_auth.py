"""Token handling seen from the wire: when tokens are requested, and what happens on 401."""

from __future__ import annotations

import logging
import threading

import httpx
import orjson
import pytest

from runai_extract.api.auth import jwt_expiry
from runai_extract.core.errors import AuthError, FatalApiError, RetriesExhaustedError
from tests.httpfakes import (
    AUDIT_PATH,
    CLIENT_ID,
    SECRET,
    FakeClock,
    FakeControlPlane,
    b64url,
    error_response,
    make_jwt,
    make_settings,
)

PARAMS = {"start": "2025-06-02T08:00:00.000Z", "end": "2025-06-02T09:00:00.000Z"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeControlPlane:
    plane = FakeControlPlane(clock)
    plane.routes[AUDIT_PATH] = lambda params: {"total": 0, "audit_logs": []}
    return plane


def _exception_texts(exc: BaseException) -> str:
    """Every message in the exception chain, as a traceback would print them."""
    texts = []
    seen: BaseException | None = exc
    while seen is not None:
        texts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def test_token_request_sends_client_credentials(fake: FakeControlPlane) -> None:
    with fake.client() as client:
        client.get_json(AUDIT_PATH, PARAMS)
    (token_request,) = fake.token_requests()
    assert orjson.loads(token_request.content) == {
        "grantType": "client_credentials",
        "clientId": CLIENT_ID,
        "clientSecret": SECRET,
    }
    assert "Authorization" not in token_request.headers
    assert fake.data_requests()[0].headers["Authorization"] == f"Bearer {fake.issued[0]}"


def test_one_token_request_per_expiry(fake: FakeControlPlane, clock: FakeClock) -> None:
    with fake.client() as client:
        for _ in range(50):
            client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 1
        clock.advance(3600 - 61)  # still outside the 60 s margin
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 1
        clock.advance(2)  # now inside the margin: refresh before the server would say 401
        for _ in range(10):
            client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 2
    assert len(fake.issued) == 2
    assert all(r.headers["Authorization"] == f"Bearer {fake.issued[1]}" for r in fake.data_requests()[-10:])
    assert client.stats.requests == 63  # 61 data + 2 token requests


def test_refresh_margin_is_configurable(fake: FakeControlPlane, clock: FakeClock) -> None:
    with fake.client(token_refresh_margin=600) as client:
        client.get_json(AUDIT_PATH, PARAMS)
        clock.advance(3600 - 599)
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 2


def test_expires_in_is_used_when_the_token_is_not_a_jwt(fake: FakeControlPlane, clock: FakeClock) -> None:
    opaque: list[str] = []

    def answer(token: str) -> dict[str, object]:
        opaque.append(f"opaque{len(opaque)}")
        fake.expiry[opaque[-1]] = fake.expiry[token]
        return {"accessToken": opaque[-1], "expiresIn": 600}

    fake.token_answer = answer
    with fake.client() as client:
        client.get_json(AUDIT_PATH, PARAMS)
        clock.advance(600 - 61)
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 1
        clock.advance(2)
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 2


def test_conservative_default_lifetime_without_exp_or_expires_in(
    fake: FakeControlPlane, clock: FakeClock
) -> None:

    def answer(token: str) -> dict[str, object]:
        opaque = f"opaque-{len(fake.issued)}"
        fake.expiry[opaque] = fake.expiry[token]
        return {"accessToken": opaque}

    fake.token_answer = answer
    with fake.client() as client:
        client.get_json(AUDIT_PATH, PARAMS)
        clock.advance(300 - 59)  # default lifetime 300 s minus the 60 s margin
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 2


def test_short_lived_token_is_refreshed_at_half_life_not_per_request(
    fake: FakeControlPlane, clock: FakeClock
) -> None:
    fake.token_lifetime = 30
    with fake.client() as client:
        for _ in range(5):
            client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 1
        clock.advance(16)
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 2


def test_jwt_exp_in_the_past_falls_back_to_expires_in(fake: FakeControlPlane, clock: FakeClock) -> None:
    fake.token_lifetime = -100  # our clock is ahead of the issuer's: exp looks already passed

    def answer(token: str) -> dict[str, object]:
        fake.expiry[token] = clock() + 3600  # the server honours it for an hour
        return {"accessToken": token, "expiresIn": 3600}

    fake.token_answer = answer
    with fake.client() as client:
        for _ in range(5):
            client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 1


def test_jwt_expiry_reads_base64url_payloads() -> None:
    claims = {"exp": 1748855704, "sub": "??>>??"}  # '??>>' encodes to '-'/'_' in base64url
    token = make_jwt(claims)
    assert "-" in token.split(".")[1] or "_" in token.split(".")[1]
    assert jwt_expiry(token) == 1748855704.0
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None
    not_an_object = b64url(b"[1,2]")
    boolean_exp = b64url(b'{"exp": true}')
    assert jwt_expiry(f"h.{not_an_object}.s") is None
    assert jwt_expiry(f"h.{boolean_exp}.s") is None


def test_401_mid_run_recovers_with_one_refresh(fake: FakeControlPlane) -> None:
    with fake.client() as client:
        for _ in range(3):
            client.get_json(AUDIT_PATH, PARAMS)
        fake.revoked.add(fake.issued[0])  # e.g. the admin rotated keys, or clock skew
        assert client.get_json(AUDIT_PATH, PARAMS) == {"total": 0, "audit_logs": []}
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 2
        assert client.stats.retries == 0  # a 401 resend is not a backoff retry
    first, second = (f"Bearer {token}" for token in fake.issued)
    assert fake.data_auth == [first] * 4 + [second] * 2


def test_second_401_raises_auth_error(fake: FakeControlPlane, caplog: pytest.LogCaptureFixture) -> None:
    fake.reject_all_tokens = True
    caplog.set_level(logging.DEBUG)
    with fake.client() as client, pytest.raises(AuthError) as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    assert len(fake.token_requests()) == 2
    assert len(fake.data_requests()) == 2
    message = str(raised.value)
    assert CLIENT_ID in message and AUDIT_PATH in message
    for text in (_exception_texts(raised.value), caplog.text):
        assert SECRET not in text
        assert all(token not in text for token in fake.issued)


@pytest.mark.parametrize("status", [400, 401, 403])
def test_rejected_credentials_raise_auth_error_without_the_secret(
    fake: FakeControlPlane, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A careless server echoing the secret back must not get it into our messages either.
    fake.token_faults.append(error_response(status, f"bad clientSecret {SECRET} for {CLIENT_ID}"))
    with fake.client() as client, pytest.raises(AuthError) as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    assert str(raised.value).startswith(f"the control plane rejected the client credentials for {CLIENT_ID}")
    assert len(fake.token_requests()) == 1  # bad credentials are not retried
    assert fake.data_requests() == []
    for text in (_exception_texts(raised.value), caplog.text, repr(raised.value)):
        assert SECRET not in text


def test_wrong_secret_is_rejected_by_the_fake_and_reported(clock: FakeClock) -> None:
    fake = FakeControlPlane(clock)
    settings = make_settings(client_secret="a-different-wrong-secret")
    with fake.client(settings) as client, pytest.raises(AuthError, match="rejected the client credentials"):
        client.get_json(AUDIT_PATH, PARAMS)


def test_token_endpoint_404_is_not_an_auth_error(fake: FakeControlPlane) -> None:
    fake.token_faults.append(error_response(404, "no such route"))
    with fake.client() as client, pytest.raises(FatalApiError) as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    assert not isinstance(raised.value, AuthError)
    assert raised.value.status == 404


def test_token_request_retries_transient_failures(fake: FakeControlPlane) -> None:
    fake.token_faults.extend(
        [
            error_response(503, "Please try again in few minutes.", {"Retry-After": "2"}),
            httpx.ConnectError("connection refused"),
            httpx.Response(200, text="<html>gateway</html>"),
        ]
    )
    with fake.client() as client:
        client.get_json(AUDIT_PATH, PARAMS)
        assert client.stats.token_requests == 4
        assert client.stats.retries == 3


def test_token_request_exhaustion_is_reported_as_such(fake: FakeControlPlane) -> None:
    fake.token_faults.extend([error_response(503, "down")] * 4)
    with fake.client() as client, pytest.raises(RetriesExhaustedError, match="/api/v1/token"):
        client.get_json(AUDIT_PATH, PARAMS)
    assert fake.data_requests() == []


def test_token_answer_without_access_token_is_a_contract_error(fake: FakeControlPlane) -> None:
    fake.token_answer = lambda token: {"idToken": token}
    with fake.client() as client, pytest.raises(FatalApiError, match="without an accessToken"):
        client.get_json(AUDIT_PATH, PARAMS)


def test_threads_share_one_token_request(fake: FakeControlPlane) -> None:
    fake.token_delay = 0.05
    errors: list[BaseException] = []
    with fake.client() as client:

        def work() -> None:
            try:
                for _ in range(20):
                    client.get_json(AUDIT_PATH, PARAMS)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert client.stats.token_requests == 1
        assert client.stats.requests == 161


def test_concurrent_401s_refresh_once(fake: FakeControlPlane) -> None:
    fake.token_delay = 0.05
    with fake.client() as client:
        client.get_json(AUDIT_PATH, PARAMS)
        fake.revoked.add(fake.issued[0])
        threads = [threading.Thread(target=client.get_json, args=(AUDIT_PATH, PARAMS)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert client.stats.token_requests == 2
