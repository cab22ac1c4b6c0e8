"""A synced (and rechecked) ledger home against the fake control plane, shared by the compliance tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from runai_extract.audit.recheck import recheck_audit
from runai_extract.audit.sync import sync_audit
from runai_extract.core.settings import Settings
from runai_extract.fake import FakeControlPlane
from tests.conftest import FAKE_NOW, fake_config, settings_for

NOW = FAKE_NOW + timedelta(minutes=5)
# The fake serves two days of events ending at FAKE_NOW; this whole day is synced and rechecked.
SEALED_DAY = FAKE_NOW.replace(hour=0) - timedelta(days=1)
KEY = "hmac-key-for-tests-only-4c2e9"


@pytest.fixture
def ledger(start_fake: Callable[..., FakeControlPlane], tmp_path: Path) -> Settings:
    """A home whose audit stream was synced, synced again, and rechecked over SEALED_DAY."""
    fake = start_fake(fake_config(days=2, events_per_day=600))
    settings = settings_for(fake, tmp_path / "home")
    sync_audit(settings, now=NOW)
    sync_audit(settings, now=NOW + timedelta(minutes=1))
    recheck_audit(
        settings, start=SEALED_DAY, end=SEALED_DAY + timedelta(days=1), now=NOW + timedelta(minutes=2)
    )
    return settings


@pytest.fixture
def signed(ledger: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ledger with one more sync run while the signing key is set: the head is signed."""
    monkeypatch.setenv("RUNAI_LEDGER_SIGNING_KEY", KEY)
    sync_audit(ledger, now=NOW + timedelta(minutes=4))
    monkeypatch.delenv("RUNAI_LEDGER_SIGNING_KEY")
    return ledger
