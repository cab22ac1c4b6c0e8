"""The retry loop's control flow must not lean on an ``assert`` (python -O strips asserts)."""

from __future__ import annotations

import dataclasses

import pytest

from runai_extract.core.errors import RetriesExhaustedError
from tests.httpfakes import (
    AUDIT_PATH,
    FakeClock,
    FakeControlPlane,
    SleepRecorder,
    error_response,
    make_settings,
)


def test_a_policy_of_no_retries_still_makes_one_attempt_and_gives_up_clearly() -> None:
    # max_attempts=0 slips past Settings validation here on purpose: the loop used to end in
    # `assert last is not None`, an AssertionError (or, under -O, a crash on None) instead of this.
    fake = FakeControlPlane(FakeClock())
    fake.routes[AUDIT_PATH] = lambda params: {"auditLogs": [], "total": 0}
    fake.faults.append(error_response(503, "down for maintenance"))
    settings = dataclasses.replace(make_settings(), max_attempts=0)
    sleep = SleepRecorder()
    with fake.client(settings, sleep=sleep) as client, pytest.raises(RetriesExhaustedError, match="HTTP 503"):
        client.get_json(AUDIT_PATH, {"start": "2025-06-02T08:00:00.000Z"})
    assert len(fake.data_requests()) == 1 and sleep.calls == []
