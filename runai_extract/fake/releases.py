"""Which control-plane release the fake speaks: ONE table, release -> features.

Run:ai SaaS tenants run the "latest" API; self-hosted tenants run the API of their release for
its whole life (2.18 ... 2.26, 3.0). Everything that differs between releases on the surface the
ledger reads is declared here, once, as a span of releases per feature, and the routes and
renderers ask ``release.has(feature)`` instead of comparing version strings.

Sources: /work/shared/runai-api/versions.md (runapy 1.218.0 ... 1.224.0, one wheel per release)
and Run:ai's per-release API documentation for 2.25, 2.26 and 3.0 (run-ai-docs.nvidia.com,
docs.nvidia.com/run-ai/self-hosted/v3.0). Where neither says anything the fake keeps its 2.24
behaviour. "latest" is 3.0 plus whatever SaaS has shipped since: today nothing the ledger reads,
so it equals 3.0 (a test tenant adds unknown fields through ``FakeConfig.extra_audit_fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

RELEASES: tuple[str, ...] = (
    "2.18", "2.19", "2.20", "2.21", "2.22", "2.23", "2.24", "2.25", "2.26", "3.0", "latest",
)  # fmt: skip

# feature -> (first release that has it, first release that no longer has it or None).
FEATURE_SPANS: Mapping[str, tuple[str, str | None]] = MappingProxyType(
    {
        # Audit log. The legacy endpoint is camelCase, integer ids, a bare array, no total,
        # newest first; deprecated in 2.19 and removed in 2.20 (versions.md section 1).
        "audit.legacy": ("2.18", "2.20"),
        "audit.legacy_deprecated": ("2.19", "2.20"),
        "audit.modern": ("2.19", None),
        "audit.metadata": ("2.20", None),  # AuditLog.metadata, required from 1.220
        "audit.optional_keys": ("2.23", None),  # entity_id, metadata, ... optional from 1.223
        # Workloads: fields added per release (top-level keys of the Workload object).
        "workload.priority": ("2.19", None),  # priority, required and nullable
        "workload.idle_gpus": ("2.20", None),  # idleGpus, idleAllocatedGpus
        "workload.category": ("2.22", None),  # category, required
        "workload.runtime_totals": ("2.23", None),  # total*TimeSeconds, guaranteedRuntimeEndsAt
        "workload.search": ("2.20", None),
        "workload.detailed": ("2.19", None),  # GET /workloads/{id} adds pendingSchedulingMessages
        "workload.filter_cap": ("2.25", None),  # filterBy maxItems 10 (2.25 API reference)
        # Events: sortOrder arrives in 2.20 with a newest-first default; before it, oldest first.
        "events.sort_order": ("2.20", None),
        # Org units: /api/v1/node-pools arrives in 2.19; before it only the per-cluster legacy
        # list (deprecated from 2.19). Users take offset/limit from 2.19.
        "nodepools.v1": ("2.19", None),
        "nodepools.legacy": ("2.18", None),
        "nodepools.legacy_deprecated": ("2.19", None),
        "users.paged": ("2.19", None),
        # Removed in 3.0 (not read by the ledger; the fake serves minimal lists before 3.0).
        "apps.v1": ("2.18", "3.0"),
        "roles.v1": ("2.18", "3.0"),
        "roles.v1_deprecated": ("2.24", "3.0"),
        "cluster_nodes.v1": ("2.18", "3.0"),
        "cluster_nodes.v1_deprecated": ("2.23", "3.0"),
        "org_priorities.v1": ("2.18", "3.0"),
    }
)

# Workload fields per feature: a release without the feature never sends these keys.
WORKLOAD_FIELDS_BY_FEATURE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "workload.priority": ("priority",),
        "workload.idle_gpus": ("idleGpus", "idleAllocatedGpus"),
        "workload.category": ("category",),
        "workload.runtime_totals": (
            "totalPendingTimeSeconds",
            "totalRunningTimeSeconds",
            "guaranteedRuntimeEndsAt",
        ),
    }
)

# The release whose official client models a release's answers validate against (runapy's minor
# version = control-plane release; PyPI stops at 1.224.0, so later releases use it).
RUNAPY: Mapping[str, str] = MappingProxyType(
    {
        "2.18": "1.218.0", "2.19": "1.219.0", "2.20": "1.220.0", "2.21": "1.221.1",
        "2.22": "1.222.0", "2.23": "1.223.0", "2.24": "1.224.0", "2.25": "1.224.0",
        "2.26": "1.224.0", "3.0": "1.224.0", "latest": "1.224.0",
    }
)  # fmt: skip

# Deprecated paths: (feature that marks the release as deprecating it, path, removed in).
DEPRECATIONS: tuple[tuple[str, str, str], ...] = (
    ("audit.legacy_deprecated", "/v1/k8s/audit", "2.20"),
    ("nodepools.legacy_deprecated", "/v1/k8s/clusters/{cluster_uuid}/node-pools", "a later release"),
    ("roles.v1_deprecated", "/api/v1/authorization/roles", "3.0"),
    ("cluster_nodes.v1_deprecated", "/api/v1/clusters/{cluster_uuid}/nodes", "3.0"),
)

WORKLOADS_FILTER_CAP = 10


@dataclass(frozen=True)
class Release:
    """One control-plane release as the fake serves it."""

    name: str
    features: frozenset[str]

    def has(self, feature: str) -> bool:
        if feature not in FEATURE_SPANS:
            raise KeyError(f"unknown release feature {feature!r}")
        return feature in self.features

    @property
    def runapy(self) -> str:
        return RUNAPY[self.name]

    @property
    def absent_workload_fields(self) -> frozenset[str]:
        """Top-level Workload keys this release never sends."""
        return frozenset(
            name
            for feature, names in WORKLOAD_FIELDS_BY_FEATURE.items()
            if not self.has(feature)
            for name in names
        )

    def deprecated_paths(self) -> dict[str, str]:
        """Route path -> the release that removes it, for the paths this release deprecates."""
        return {path: removed for feature, path, removed in DEPRECATIONS if self.has(feature)}


def _index(name: str) -> int:
    return RELEASES.index(name)


def _features(name: str) -> frozenset[str]:
    at = _index(name)
    return frozenset(
        feature
        for feature, (since, until) in FEATURE_SPANS.items()
        if _index(since) <= at and (until is None or at < _index(until))
    )


RELEASE_FEATURES: Mapping[str, frozenset[str]] = MappingProxyType(
    {name: _features(name) for name in RELEASES}
)
"""The table itself: release -> the features it has."""


def release(name: str) -> Release:
    """The release called ``name`` ("2.18" ... "3.0", "latest"); ValueError names the choices."""
    if name not in RELEASE_FEATURES:
        raise ValueError(f"unknown API version {name!r}; choose one of {', '.join(RELEASES)}")
    return Release(name, RELEASE_FEATURES[name])
