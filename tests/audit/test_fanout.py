"""The fan-out backfill's days: any order, each committed alone, the watermark only over what is contiguous."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runai_extract.audit.fanout import advance_watermark, anchor_watermark, backfill_day, first_gap, plan_days
from runai_extract.core.errors import ConfigError
from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import FAKE_NOW, settings_for
from tests.lake_reading import stored_audit_ids
from transforms.storage import Lake

NOW = FAKE_NOW + timedelta(minutes=5)
DAYS = ["2026-11-18", "2026-11-19", "2026-11-20"]


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_plan_days_lists_each_utc_day_and_refuses_bad_ranges() -> None:
    assert plan_days("2026-11-18", "2026-11-21") == DAYS
    with pytest.raises(ConfigError, match="empty or inverted"):
        plan_days("2026-11-21", "2026-11-18")
    with pytest.raises(ConfigError, match="must be a date"):
        plan_days("yesterday", "2026-11-18")


def test_days_out_of_order_with_one_failing_move_the_watermark_only_over_the_contiguous_prefix(
    fake: FakeControlPlane, tmp_path: Path
) -> None:
    settings = settings_for(fake, tmp_path)
    watermark = lambda: StateStore(Lake(settings.lake_uri)).read("audit").watermark  # type: ignore[union-attr]  # noqa: E731
    assert anchor_watermark(settings, DAYS[0]) == day(DAYS[0])

    # The last day finishes first: stored, but the watermark cannot jump the two missing days.
    backfill_day(settings, DAYS[2], now=NOW)
    assert watermark() == day(DAYS[0])
    backfill_day(settings, DAYS[0], now=NOW)
    assert watermark() == day(DAYS[1])  # day 2 "failed": the watermark stops where it begins
    assert first_gap(settings, DAYS[0], "2026-11-21", now=NOW) == day(DAYS[1])

    # The failed day's retry, alone: now everything is contiguous and the watermark reaches the end.
    backfill_day(settings, DAYS[1], now=NOW)
    assert watermark() == NOW - settings.settle_lag
    assert advance_watermark(settings) == NOW - settings.settle_lag
    assert first_gap(settings, DAYS[0], "2026-11-21", now=NOW) is None
    ids = stored_audit_ids(settings.lake_uri)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(
        fake.simulator.audit_ids(day(DAYS[0]), NOW - settings.settle_lag - timedelta(microseconds=1))
    )
    # A retry of a day already stored adds nothing.
    assert backfill_day(settings, DAYS[1], now=NOW)["rows_new"] == 0
