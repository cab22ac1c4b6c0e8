"""RunaiClient seen from the wire: retries, backoff, Retry-After, error mapping, secret hygiene."""

from __future__ import annotations

import logging
import random
import ssl
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from runai_extract.api.client import (
    FIRST_CONTACT_ATTEMPTS,
    FIRST_CONTACT_PAUSE,
    Redactor,
    RequestStats,
    RetryPolicy,
    redact,
)
from runai_extract.core.errors import (
    ApiContractError,
    AuthError,
    ConfigError,
    FatalApiError,
    RetriableApiError,
    RetriesExhaustedError,
)
from runai_extract.core.settings import Secret
from runai_extract.core.times import parse_retry_after
from tests.httpfakes import (
    AUDIT_PATH,
    SECRET,
    FakeClock,
    FakeControlPlane,
    FixedJitter,
    SleepRecorder,
    error_response,
    make_settings,
)

PARAMS = {"start": "2025-06-02T08:00:00.000Z", "end": "2025-06-02T09:00:00.000Z", "offset": 0}
OK_BODY = {"total": 1, "audit_logs": [{"id": "a"}]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeControlPlane:
    plane = FakeControlPlane(clock)
    plane.routes[AUDIT_PATH] = lambda params: OK_BODY
    return plane


def _http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


def test_get_json_returns_the_parsed_body(fake: FakeControlPlane) -> None:
    with fake.client() as client:
        assert client.get_json(AUDIT_PATH, PARAMS) == OK_BODY
    request = fake.data_requests()[0]
    assert request.url.host == "acme.run.ai" and request.url.scheme == "https"
    assert request.url.params["start"] == "2025-06-02T08:00:00.000Z"
    assert request.headers["Accept"] == "application/json"


def test_429_with_retry_after_seconds_is_honoured(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.faults.append(error_response(429, "slow down", {"Retry-After": "7"}))
    with fake.client(sleep=sleep) as client:
        assert client.get_json(AUDIT_PATH, PARAMS) == OK_BODY
        assert client.stats.throttled_429 == 1 and client.stats.retries == 1
    assert sleep.calls == [7.0]


def test_retry_after_gets_a_little_jitter_but_never_less(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.faults.append(error_response(429, "slow down", {"Retry-After": "7"}))
    with fake.client(sleep=sleep, rng=FixedJitter(high=True)) as client:
        client.get_json(AUDIT_PATH, PARAMS)
    assert sleep.calls == [7.5]  # 7 s asked + at most backoff_base of jitter


def test_429_with_retry_after_http_date_is_honoured(fake: FakeControlPlane, clock: FakeClock) -> None:
    sleep = SleepRecorder()
    fake.faults.append(error_response(429, "slow down", {"Retry-After": _http_date(clock() + 30)}))
    with fake.client(sleep=sleep) as client:
        client.get_json(AUDIT_PATH, PARAMS)
    assert sleep.calls == [30.0]


def test_503_retry_after_is_honoured_too(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.faults.append(error_response(503, "Please try again in few minutes.", {"Retry-After": "12"}))
    with fake.client(sleep=sleep) as client:
        client.get_json(AUDIT_PATH, PARAMS)
    assert sleep.calls == [12.0]


@pytest.mark.parametrize("retry_after", ["86400", "inf", "day"])
def test_retry_after_is_capped(fake: FakeControlPlane, clock: FakeClock, retry_after: str) -> None:
    sleep = SleepRecorder()
    value = _http_date(clock() + 86400) if retry_after == "day" else retry_after
    fake.faults.append(error_response(429, "come back tomorrow", {"Retry-After": value}))
    with fake.client(sleep=sleep, rng=FixedJitter(high=True)) as client:
        client.get_json(AUDIT_PATH, PARAMS)
    assert sleep.calls == [120.0]  # retry_after_cap, never a day


def test_unreadable_retry_after_falls_back_to_backoff(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.faults.append(error_response(429, "slow down", {"Retry-After": "soon-ish"}))
    with fake.client(sleep=sleep, rng=FixedJitter(high=True)) as client:
        client.get_json(AUDIT_PATH, PARAMS)
    assert sleep.calls == [0.5]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_succeed(fake: FakeControlPlane, status: int) -> None:
    sleep = SleepRecorder()
    fake.faults.extend([error_response(status, "Something went wrong.")] * 3)
    with fake.client(sleep=sleep, rng=FixedJitter(high=True)) as client:
        assert client.get_json(AUDIT_PATH, PARAMS) == OK_BODY
        assert client.stats.server_errors == 3 and client.stats.retries == 3
    assert sleep.calls == [0.5, 1.0, 2.0]  # base * 2**n at full jitter's top


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=20, backoff_base=0.5, backoff_cap=4.0, retry_after_cap=120.0)
    assert [policy.wait(n, None, FixedJitter(high=True)) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert policy.wait(10_000, None, FixedJitter(high=True)) == 4.0  # no overflow on huge counts
    rng = random.Random(3)
    waits = [policy.wait(4, None, rng) for _ in range(200)]
    assert all(0 <= w <= 4.0 for w in waits) and len(set(waits)) > 100


@pytest.mark.parametrize(
    "fault",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.DecodingError("Error -3 while decompressing data: incorrect header check"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_transport_errors_are_retried(fake: FakeControlPlane, fault: Exception) -> None:
    sleep = SleepRecorder()
    fake.faults.extend([fault, fault])
    with fake.client(sleep=sleep) as client:
        assert client.get_json(AUDIT_PATH, PARAMS) == OK_BODY
        assert client.stats.transport_errors == 2 and client.stats.retries == 2
    assert len(sleep.calls) == 2


def test_exhaustion_after_exactly_max_attempts(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.faults.extend([error_response(503, "Please try again in few minutes.")] * 10)
    with fake.client(sleep=sleep) as client, pytest.raises(RetriesExhaustedError) as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    assert len(fake.data_requests()) == 4  # max_attempts in make_settings
    assert len(sleep.calls) == 3
    error = raised.value
    assert error.status == 503
    assert AUDIT_PATH in str(error) and "4 attempts" in str(error) and "HTTP 503" in str(error)
    assert "start=2025-06-02T08" in str(error)  # the query shows which window failed
    assert isinstance(error.__cause__, RetriableApiError)


def test_exhaustion_on_transport_errors_chains_the_httpx_error(fake: FakeControlPlane) -> None:
    fake.faults.extend([httpx.ReadTimeout("timed out")] * 4)
    with fake.client() as client, pytest.raises(RetriesExhaustedError, match="ReadTimeout") as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    assert raised.value.status is None
    assert isinstance(raised.value.__cause__, RetriableApiError)
    assert isinstance(raised.value.__cause__.__cause__, httpx.ReadTimeout)


def test_non_json_200_is_retried_like_a_transient_fault(fake: FakeControlPlane) -> None:
    fake.faults.append(
        httpx.Response(200, text="<html>502 from the proxy</html>", headers={"Content-Type": "text/html"})
    )
    with fake.client() as client:
        assert client.get_json(AUDIT_PATH, PARAMS) == OK_BODY
        assert client.stats.retries == 1


def test_persistent_non_json_200_is_a_contract_error(fake: FakeControlPlane) -> None:
    fake.faults.extend(
        [httpx.Response(200, text="<html>login page</html>", headers={"Content-Type": "text/html"})] * 4
    )
    with fake.client() as client, pytest.raises(ApiContractError, match="not JSON") as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    assert "text/html" in str(raised.value) and "4 attempts" in str(raised.value)
    assert len(fake.data_requests()) == 4


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Required parameter is missing"),
        (403, "You do not have sufficient permissions."),
        (404, "Resource id not found."),
        (409, "conflict"),
    ],
)
def test_other_4xx_are_fatal_at_once(fake: FakeControlPlane, status: int, message: str) -> None:
    sleep = SleepRecorder()
    with fake.client(sleep=sleep) as client:
        client.get_json(AUDIT_PATH, PARAMS)  # past first contact: a 403 here is not "no role"
        fake.requests.clear()
        fake.faults.append(error_response(status, message))
        with pytest.raises(FatalApiError) as raised:
            client.get_json(AUDIT_PATH, PARAMS)
    assert type(raised.value) is FatalApiError
    assert raised.value.status == status
    assert message in str(raised.value) and AUDIT_PATH in str(raised.value)
    assert sleep.calls == [] and len(fake.data_requests()) == 1


def test_error_without_json_body_shows_a_short_excerpt(fake: FakeControlPlane) -> None:
    fake.faults.append(httpx.Response(404, text="Not Found\n" + "x" * 5000))
    with fake.client() as client, pytest.raises(FatalApiError) as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    assert "Not Found" in str(raised.value) and len(str(raised.value)) < 500 and "\n" not in str(raised.value)


def test_redirects_are_not_followed(fake: FakeControlPlane) -> None:
    fake.faults.append(httpx.Response(302, headers={"Location": "https://elsewhere.example/login"}))
    with fake.client() as client, pytest.raises(FatalApiError, match="HTTP 302"):
        client.get_json(AUDIT_PATH, PARAMS)
    assert len(fake.requests) == 2  # one token, one data request; nothing sent to elsewhere


def _tls_failure() -> httpx.ConnectError:
    try:
        raise ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    except ssl.SSLError as cause:
        error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]")
        error.__cause__ = cause
    return error


def test_tls_failure_on_first_contact_is_a_config_error_at_once(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.token_faults.append(_tls_failure())
    with fake.client(sleep=sleep) as client, pytest.raises(ConfigError, match="RUNAI_VERIFY_TLS"):
        client.connect()
    assert len(fake.requests) == 1 and sleep.calls == []


def test_tls_failure_after_first_contact_is_fatal_with_a_hint(fake: FakeControlPlane) -> None:
    fake.faults.append(_tls_failure())
    with fake.client() as client, pytest.raises(FatalApiError, match="RUNAI_VERIFY_TLS"):
        client.get_json(AUDIT_PATH, PARAMS)
    assert len(fake.requests) == 2  # the token, then the one data request: never retried


def test_tls_verification_is_on_by_default() -> None:
    settings = make_settings()
    assert settings.verify_tls is True


def test_missing_api_settings_are_a_config_error(fake: FakeControlPlane) -> None:
    with pytest.raises(ConfigError, match="RUNAI_CLIENT_SECRET"):
        fake.client(make_settings(client_secret=""))


def test_paths_must_be_relative_to_the_base_url(fake: FakeControlPlane) -> None:
    with fake.client() as client, pytest.raises(ValueError, match="start with '/'"):
        client.get_json("https://elsewhere.example/api", {})
    assert fake.requests == []


def test_secret_and_tokens_never_reach_messages_or_logs(
    fake: FakeControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.token_faults.append(error_response(503, "token service busy"))
    fake.faults.extend(
        [
            error_response(429, "slow", {"Retry-After": "1"}),
            httpx.ReadTimeout("timed out"),
            error_response(
                500, f"upstream said: Authorization: Bearer {'eyJabc.eyJdef.sig'} secret={SECRET}"
            ),
            httpx.Response(200, text="<html/>"),
        ]
    )
    errors: list[BaseException] = []
    with fake.client(make_settings(max_attempts=6)) as client:
        client.get_json(AUDIT_PATH, PARAMS)
        fake.revoked.add(fake.issued[0])
        client.get_json(AUDIT_PATH, PARAMS)  # 401 -> refresh -> resend
        fake.faults.append(error_response(400, f"bad request with clientSecret={SECRET}"))
        with pytest.raises(FatalApiError) as raised:
            client.get_json(AUDIT_PATH, PARAMS)
        errors.append(raised.value)
    assert caplog.records, "retries should have been logged"
    texts = (
        [record.getMessage() for record in caplog.records]
        + [str(e) for e in errors]
        + [repr(client.stats.snapshot())]
    )
    for text in texts:
        assert SECRET not in text
        assert "eyJ" not in text, text
        assert all(token not in text for token in fake.issued)


def test_retries_are_logged_with_status_attempt_and_wait(
    fake: FakeControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runai_extract.api.client")
    fake.faults.extend([error_response(503, "busy", {"Retry-After": "3"})] * 3)
    with fake.client() as client:
        client.get_json(AUDIT_PATH, PARAMS)
    records = [r for r in caplog.records if r.name == "runai_extract.api.client"]
    # The first two retries are routine (INFO); persistent trouble surfaces as a WARNING.
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO, logging.WARNING]
    message = records[0].getMessage()
    assert message.startswith("GET https://acme.run.ai/api/v1/audit/log?start=2025-06-02T08:00:00.000Z&end=")
    assert "HTTP 503" in message and "attempt 1 of 4" in message and "3.00 s" in message


@pytest.mark.parametrize(
    "fault",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectError("[Errno -2] Name or service not known"),
        httpx.ConnectTimeout("timed out"),
    ],
    ids=["refused", "unknown-host", "connect-timeout"],
)
def test_unreachable_on_first_contact_fails_after_one_quick_retry(
    fake: FakeControlPlane, fault: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    sleep = SleepRecorder()
    fake.token_faults.extend([fault] * 8)
    with fake.client(sleep=sleep) as client, pytest.raises(ConfigError) as raised:
        client.connect()
    assert len(fake.token_requests()) == FIRST_CONTACT_ATTEMPTS == 2
    assert sleep.calls == [FIRST_CONTACT_PAUSE]  # one short pause, no backoff
    message = str(raised.value)
    assert message.startswith("cannot reach the control plane at https://acme.run.ai")
    assert str(fault) in message and "RUNAI_BASE_URL" in message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_first_contact_quick_retry_can_succeed(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.token_faults.append(httpx.ConnectError("[Errno 111] Connection refused"))
    with fake.client(sleep=sleep) as client:
        client.connect()
        assert client.get_json(AUDIT_PATH, PARAMS) == OK_BODY
    assert sleep.calls == [FIRST_CONTACT_PAUSE] and len(fake.token_requests()) == 2


def test_connect_errors_after_first_contact_get_the_full_retry_policy(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    with fake.client(sleep=sleep) as client:
        client.connect()
        fake.faults.extend([httpx.ConnectError("[Errno 111] Connection refused")] * 4)
        with pytest.raises(RetriesExhaustedError, match="still failing after 4 attempts"):
            client.get_json(AUDIT_PATH, PARAMS)
    assert len(fake.data_requests()) == 4 and len(sleep.calls) == 3


def test_an_answer_of_any_status_ends_first_contact(fake: FakeControlPlane) -> None:
    """A 503 proves the address is right: a refused connection after it is a restart, retried."""
    fake.token_faults.extend(
        [error_response(503, "starting up")] + [httpx.ConnectError("[Errno 111] Connection refused")] * 2
    )
    with fake.client() as client:
        client.connect()
        assert client.stats.token_requests == 4 and client.stats.retries == 3


def test_403_on_the_first_data_call_is_an_auth_error(fake: FakeControlPlane) -> None:
    sleep = SleepRecorder()
    fake.faults.append(error_response(403, "You do not have sufficient permissions."))
    with fake.client(sleep=sleep) as client, pytest.raises(AuthError) as raised:
        client.get_json(AUDIT_PATH, PARAMS)
    message = str(raised.value)
    assert "HTTP 403" in message and AUDIT_PATH in message and "svc-ingest" in message
    assert "sufficient permissions" in message
    assert len(fake.data_requests()) == 1 and sleep.calls == []


def test_stats_snapshot_and_counting(fake: FakeControlPlane) -> None:
    stats = RequestStats()
    fake.faults.extend(
        [error_response(429, "slow"), error_response(502, "bad gateway"), httpx.ConnectError("refused")]
    )
    with fake.client(stats=stats) as client:
        client.get_json(AUDIT_PATH, PARAMS)
    assert stats.snapshot() == {
        "requests": 5,
        "retries": 3,
        "throttled_429": 1,
        "server_errors": 1,
        "transport_errors": 1,
        "token_requests": 1,
    }
    with pytest.raises(KeyError):
        stats.add("nonsense")


def test_redactor_scrubs_token_like_text() -> None:
    scrub = Redactor([Secret("hunter22-secret")])
    text = scrub(
        'Authorization: Bearer abc.def-ghi {"accessToken":"eyJhbGciOi.eyJleHAi.c2ln"} '
        "client_secret=hunter22-secret&x=1 password: pw123 and again hunter22-secret"
    )
    assert "abc.def-ghi" not in text and "eyJ" not in text and "hunter22" not in text and "pw123" not in text
    assert (
        redact("GET /api/v1/audit/log?start=2025-06-02T08:00:00.000Z")
        == "GET /api/v1/audit/log?start=2025-06-02T08:00:00.000Z"
    )


def test_parse_retry_after_forms() -> None:
    now = 1_748_851_200.0
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after(_http_date(now + 90), now=now) == 90.0
    assert parse_retry_after(_http_date(now - 90), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=now) == 0.0
    for unusable in (None, "", "-5", "nan", "tomorrow"):
        assert parse_retry_after(unusable, now=now) is None
