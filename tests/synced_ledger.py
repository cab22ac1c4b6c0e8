"""One ledger home synced from the fake (audit log, org units, workloads, a sealed day), shared per session.

Why shared: the analytics and report tests only read it, and syncing a tenant with workload
history costs seconds of a scarce CPU. Tests that write to a ledger build their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from runai_extract.audit.recheck import recheck_audit
from runai_extract.audit.sync import sync_audit
from runai_extract.core.settings import Settings
from runai_extract.fake import FakeControlPlane
from runai_extract.usage.org_units import sync_org
from runai_extract.usage.workloads import sync_workloads
from tests.conftest import FAKE_NOW, fake_config, settings_for
from transforms.storage import Lake
from warehouse.build import build_views

NOW = FAKE_NOW + timedelta(minutes=5)
SEALED_DAY = FAKE_NOW.replace(hour=0) - timedelta(days=1)
# The whole simulated history (two audit days ending at FAKE_NOW) and the day after, in whole UTC days.
PERIOD = (datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
MONTH = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


@pytest.fixture(scope="session")
def synced_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A home with the audit log synced and one day sealed, org units and workloads synced, views built."""
    fake = FakeControlPlane(fake_config(days=2, events_per_day=400, seed=23), port=0)
    fake.start()
    try:
        settings = settings_for(fake, tmp_path_factory.mktemp("synced") / "home")
        sync_audit(settings, now=NOW)
        recheck_audit(settings, start=SEALED_DAY, end=SEALED_DAY + timedelta(days=1), now=NOW)
        sync_org(settings)
        sync_workloads(settings)
        fake.simulator.advance(timedelta(hours=1))
        sync_workloads(settings)
        build_views(settings.warehouse_path, Lake(settings.lake_uri))
    finally:
        fake.stop()
    yield settings
