"""What the tenant's API can do, found by asking it once per run: features, never version strings.

runapy's embedded version string reads ``2.2``, ``2.0.0`` or ``latest`` from 2.20 on, and SaaS
tenants move every two weeks, so the ledger never branches on a release name. On first contact a
run probes the audit log: ``GET /api/v1/audit/log`` (2.19 on) answers 200, or 404 and then the
legacy ``GET /v1/k8s/audit`` (2.18/2.19) is tried. The modern path wins whenever the tenant has it.
The result is cached per client (one client per run) and recorded in ``ingest_runs.api_features``.

Deprecations come from two places: ``Deprecation``/``Sunset`` response headers seen by the client
(RFC 9745 / RFC 8594), and the paths Run:ai's own clients mark deprecated (``KNOWN_DEPRECATED``),
which self-hosted releases keep for two more releases before removing them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from runai_extract.api.endpoints import CLUSTERS, LEGACY_NODE_POOLS, NODE_POOLS, Endpoint
from runai_extract.api.pagination import fetch_all
from runai_extract.core.errors import ApiContractError, FatalApiError
from runai_extract.core.times import format_api_time

AuditFlavour = Literal["audit_log", "k8s_audit"]
MODERN_AUDIT_PATH = "/api/v1/audit/log"
LEGACY_AUDIT_PATH = "/v1/k8s/audit"
_PROBE_SPAN = timedelta(minutes=1)

# Paths the ledger may use that Run:ai deprecates, and the release that removes them.
KNOWN_DEPRECATED: Mapping[str, str] = {LEGACY_AUDIT_PATH: "2.20"}


class ProbeClient(Protocol):
    """What probing needs: JSON GETs and the deprecation headers seen so far (RunaiClient fits)."""

    def get_json(self, path: str, params: Mapping[str, str | int]) -> Any: ...

    @property
    def deprecation_headers(self) -> dict[str, tuple[str, str | None]]: ...


@dataclass(frozen=True)
class ApiFeatures:
    """The capabilities one run found."""

    audit_flavour: AuditFlavour

    @property
    def audit_path(self) -> str:
        return MODERN_AUDIT_PATH if self.audit_flavour == "audit_log" else LEGACY_AUDIT_PATH

    def describe(self) -> str:
        """The ``ingest_runs.api_features`` text: stable, sorted ``key=value`` pairs."""
        return f"audit={self.audit_flavour}"


_cache: weakref.WeakKeyDictionary[Any, ApiFeatures] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def api_features(client: ProbeClient, now: datetime) -> ApiFeatures:
    """The tenant's features, probed on the client's first call and remembered for its lifetime."""
    with _lock:
        known = _cache.get(client)
        if known is None:
            known = _cache[client] = _probe(client, now)
    return known


def _probe(client: ProbeClient, now: datetime) -> ApiFeatures:
    start, end = format_api_time(now - _PROBE_SPAN), format_api_time(now)
    try:
        client.get_json(MODERN_AUDIT_PATH, {"start": start, "end": end, "numberOfSamples": 1})
        return ApiFeatures("audit_log")
    except FatalApiError as exc:
        if exc.status != 404:
            raise
    try:
        client.get_json(LEGACY_AUDIT_PATH, {"limit": 1})
    except FatalApiError as exc:
        if exc.status != 404:
            raise
        raise ApiContractError(
            f"the tenant serves neither {MODERN_AUDIT_PATH} nor {LEGACY_AUDIT_PATH} (both 404): "
            "check RUNAI_BASE_URL points at the control plane"
        ) from exc
    return ApiFeatures("k8s_audit")


def deprecation_notices(client: ProbeClient, used_paths: set[str]) -> list[str]:
    """One line per deprecated path in use: from the server's headers or from the known list."""
    notices = []
    for path, (deprecation, sunset) in sorted(client.deprecation_headers.items()):
        when = f"it stops working on {sunset}" if sunset else "upgrade before it is removed"
        note = "" if deprecation in ("", "true") else f" (deprecated since {deprecation})"
        notices.append(f"the control plane marks {path} deprecated{note}: {when}")
    headed = set(client.deprecation_headers)
    for path in sorted(used_paths - headed):
        if path in KNOWN_DEPRECATED:
            notices.append(
                f"{path} is deprecated and removed in Run:ai {KNOWN_DEPRECATED[path]}; "
                "upgrade the control plane (the ledger switches to /api/v1/audit/log by itself)"
            )
    return notices


def fetch_org_list(client: ProbeClient, endpoint: Endpoint, page_size: int) -> list[Any]:
    """Every item of an org list; node pools fall back to the per-cluster list where 2.18 has no other.

    ``/api/v1/node-pools`` arrives in 2.19. A 404 there means a 2.18 tenant: its node pools are
    read cluster by cluster from the legacy ``/v1/k8s/clusters/{uuid}/node-pools`` (a bare array).
    """
    try:
        return fetch_all(client, endpoint, page_size)
    except FatalApiError as exc:
        if exc.status != 404 or endpoint is not NODE_POOLS:
            raise
    pools: list[Any] = []
    for cluster in fetch_all(client, CLUSTERS, page_size):
        uuid = cluster.get("uuid") if isinstance(cluster, dict) else None
        if isinstance(uuid, str):
            pools.extend(fetch_all(client, LEGACY_NODE_POOLS.for_id(uuid), page_size))
    return pools
