"""The retention-lag alert: say loudly when a stream's watermark nears the API's retention horizon.

Why: the control plane keeps audit events for 90 days (a tenant may keep them shorter or longer:
``Settings.retention``, RUNAI_LEDGER_RETENTION_DAYS, holds each stream's). A ledger whose syncs
have been failing quietly for weeks has a watermark creeping towards that horizon; once it passes
it, the records between the watermark and the horizon are gone for good and no backfill can
bring them back. The alert fires while there is still time (``Settings.retention_margin``, 10
days by default): it is logged as a WARNING, printed by ``status`` and carried in every sync summary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from runai_extract.core.times import format_utc
from runai_extract.ledger.watermarks import StateStore
from transforms.storage import Lake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionAlert:
    """One stream whose unsynced events will fall out of the API's retention soon (or already do)."""

    stream: str
    watermark: datetime
    retention: timedelta
    now: datetime

    @property
    def days_left(self) -> float:
        """Days until events just after the watermark leave the API; negative once some are lost."""
        return days_left(self.watermark, self.retention, self.now)

    def __str__(self) -> str:
        age = (self.now - self.watermark) / timedelta(days=1)
        head = (
            f"{self.stream}: watermark {format_utc(self.watermark)} is {age:.1f} days old and the API "
            f"keeps {self.retention.days} days"
        )
        if self.days_left <= 0:
            return (
                f"{head}: events from {-self.days_left:.1f} days after the watermark may already be lost; "
                f"run `runai-ledger sync {self.stream}` now"
            )
        return (
            f"{head}: unsynced events start being lost in {self.days_left:.1f} days; "
            f"run `runai-ledger sync {self.stream}` now"
        )


def days_left(watermark: datetime, retention: timedelta, now: datetime) -> float:
    """Days until records just after ``watermark`` leave the API; negative once some are lost."""
    return (watermark + retention - now) / timedelta(days=1)


# Streams that read another stream's store and so share its retention: the org units' quota and
# allocation series (stream ``quotas``) are metrics, kept exactly as long as the workloads' metrics.
SHARED_RETENTION: Mapping[str, str] = {"quotas": "metrics"}


def stream_retention(retention: Mapping[str, timedelta]) -> dict[str, timedelta]:
    """Each stream's retention: the configured ones plus the streams that share one of them."""
    every = dict(retention)
    for stream, source in SHARED_RETENTION.items():
        if source in every:
            every.setdefault(stream, every[source])
    return every


def retention_alerts(
    lake: Lake, retention: Mapping[str, timedelta], margin: timedelta, *, now: datetime | None = None
) -> list[RetentionAlert]:
    """Alerts for every stream whose watermark is older than now - (retention - margin); each logged."""
    current = now or datetime.now(UTC)
    store = StateStore(lake)
    alerts: list[RetentionAlert] = []
    for stream, kept in sorted(stream_retention(retention).items()):
        state = store.read(stream)
        if state is None or state.watermark > current - (kept - margin):
            continue
        alert = RetentionAlert(stream, state.watermark, kept, current)
        log.warning("retention lag: %s", alert)
        alerts.append(alert)
    return alerts
