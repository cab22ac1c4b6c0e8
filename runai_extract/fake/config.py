"""What a fake tenant looks like: its size, seed, credentials and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from runai_extract.fake.faults import FaultConfig
from runai_extract.fake.releases import Release, release


@dataclass(frozen=True)
class FakeConfig:
    """Same seed + same ``now`` = the same tenant, row for row (ids included)."""

    seed: int = 7
    days: int = 3
    events_per_day: int = 2000
    client_id: str = "ledger-demo"
    client_secret: str = field(default="ledger-demo-secret", repr=False)
    tenant_id: str = "1001"
    now: datetime | None = None  # aware UTC; None = the wall clock when the tenant is built
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Workloads (workloads.py): those created before ``now`` are the audit stream's workload
    # creates (about one per five audit events); the timeline runs on ``future_days`` past
    # ``now`` for TenantSimulator.advance, with new workloads at ``workloads_per_day``
    # (None = the audit span's own rate).
    workloads_per_day: int | None = None
    future_days: int = 2
    # Serve each audit-log page encoded once, from memory after (bench/: a real control plane
    # does not spend the client machine's CPU per page, and on 2 shared CPUs the fake's ~50 ms
    # of encoding per page otherwise hides what the client does). Only for a tenant that does
    # not change while served: no late arrivals, no inserts while paging, no spoiled rows.
    pre_encode: bool = False
    # The control-plane release served (releases.py): "2.18" ... "3.0" or "latest" (SaaS).
    api_version: str = "latest"
    # Schema drift on the audit log, as SaaS "latest" ships it: keys added to every row
    # (name, JSON-ready value) and keys no longer sent.
    extra_audit_fields: tuple[tuple[str, str], ...] = ()
    dropped_audit_fields: tuple[str, ...] = ()
    # (path template, Sunset HTTP-date): a tenant announcing the removal of an endpoint.
    sunsets: tuple[tuple[str, str], ...] = ()
    # GPU metrics (gpu_metrics.py): how long the control plane keeps samples, and (project name,
    # factor) pairs that scale a project's hours in consumption reports (a report that disagrees).
    metrics_retention_days: int = 30
    report_skew: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.days < 0 or self.events_per_day < 0:
            raise ValueError("days and events_per_day must not be negative")
        if self.future_days < 0 or (self.workloads_per_day or 0) < 0:
            raise ValueError("future_days and workloads_per_day must not be negative")
        if self.now is not None and self.now.utcoffset() is None:
            raise ValueError("now must be timezone-aware (UTC)")
        if not self.client_id or not self.client_secret:
            raise ValueError("client_id and client_secret must not be empty")
        changing = (
            self.faults.late_arrivals or self.faults.insert_during_paging or self.faults.bad_record_rate
        )
        if self.pre_encode and changing:
            raise ValueError(
                "pre_encode serves pages as first encoded: not with late arrivals, inserts or bad records"
            )
        if self.metrics_retention_days < 0:
            raise ValueError("metrics_retention_days must not be negative")
        release(self.api_version)  # ValueError naming the releases on a typo

    @property
    def release(self) -> Release:
        return release(self.api_version)
