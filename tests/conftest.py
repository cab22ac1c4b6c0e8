"""Shared fixtures: the project's fake control plane on loopback and settings pointing at it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from runai_extract.core.settings import Settings, load_settings
from runai_extract.fake import FakeConfig, FakeControlPlane, FaultConfig

# Property tests check behaviour, not speed: a per-example wall-clock deadline only measures how
# busy a shared 2-CPU machine is (speed goals live in bench/).
hypothesis_settings.register_profile("ledger", deadline=None)
hypothesis_settings.load_profile("ledger")

CLIENT_ID = "ledger-test"
CLIENT_SECRET = "s3cr3t-for-tests-only-7f1c"
# A fixed "now" for the simulated tenant, so windows and ground truth are reproducible.
FAKE_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fake_config(
    days: int = 2, events_per_day: int = 1500, faults: FaultConfig | None = None, seed: int = 11
) -> FakeConfig:
    return FakeConfig(
        seed=seed,
        days=days,
        events_per_day=events_per_day,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        now=FAKE_NOW,
        faults=faults or FaultConfig(),
    )


@pytest.fixture
def start_fake() -> Iterator[Callable[..., FakeControlPlane]]:
    """Start fakes with any config; all are stopped at the end of the test."""
    started: list[FakeControlPlane] = []

    def _start(config: FakeConfig | None = None) -> FakeControlPlane:
        fake = FakeControlPlane(config or fake_config(), port=0)
        fake.start()
        started.append(fake)
        return fake

    yield _start
    for fake in started:
        fake.stop()


@pytest.fixture
def fake(start_fake: Callable[..., FakeControlPlane]) -> FakeControlPlane:
    return start_fake()


def settings_for(fake: FakeControlPlane, home: Path, **overrides: object) -> Settings:
    """Settings for a sync against ``fake``, with fast retries so fault tests stay quick."""
    base = {
        "home": home,
        "base_url": fake.base_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "retry_after_cap": 0.05,
        "initial_lookback": timedelta(days=7),
    }
    base.update(overrides)
    return load_settings({}, **base)


def cli_env(fake: FakeControlPlane, home: Path) -> dict[str, str]:
    """The environment for a `runai-ledger` subprocess against ``fake``: this shell's RUNAI_* left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNAI_")}
    env.update(
        RUNAI_BASE_URL=fake.base_url,
        RUNAI_CLIENT_ID=CLIENT_ID,
        RUNAI_CLIENT_SECRET=CLIENT_SECRET,
        RUNAI_LEDGER_HOME=str(home),
    )
    return env
