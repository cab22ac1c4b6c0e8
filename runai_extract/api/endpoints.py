"""Run:ai list endpoints described as data, so paging code has no per-endpoint branches.

The API has three list shapes (README §1.4):
- offset + ``numberOfSamples`` (audit log): ``{"total", "next", "audit_logs": [...]}``, max 1000;
- offset + ``limit`` (workloads, events, projects, ...): ``{"next", "<items>": [...]}``, max 500,
  and some of them (reports, node-pools) never send ``next``;
- bare JSON arrays (clusters; users, which still takes offset/limit).
Adding an endpoint means adding one declaration below and registering it in ``ENDPOINTS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from urllib.parse import quote

from runai_extract.core.errors import ConfigError


@dataclass(frozen=True)
class Endpoint:
    """One list endpoint: where it lives, how it pages, and what its envelope looks like.

    ``items_key`` None means the body is a bare JSON array. ``page_param`` None means the
    endpoint is not paged (one request returns everything). ``has_next`` False marks endpoints
    that never send ``next`` (only a short or empty page ends them). ``fixed_params`` are sent on
    every request (sorting, mainly: offset paging is only stable over a fixed sort order).
    """

    name: str
    path: str
    items_key: str | None
    page_param: str | None
    max_page: int
    has_total: bool
    has_next: bool = True
    offset_param: str = "offset"
    id_field: str = "id"
    fixed_params: tuple[tuple[str, str], ...] = ()

    def page_size(self, requested: int) -> int:
        """The page size to ask for: the requested one, clamped to what the endpoint allows."""
        if requested < 1:
            raise ConfigError(f"page size must be at least 1 for {self.name}, got {requested}")
        return min(requested, self.max_page)

    def for_id(self, ident: str) -> Endpoint:
        """The endpoint of one entity (``{id}`` in the path), the id percent-encoded."""
        return replace(self, path=self.path.format(id=quote(ident, safe="")))


AUDIT_LOG = Endpoint(
    "audit_log",
    "/api/v1/audit/log",
    "audit_logs",
    "numberOfSamples",  # not `limit`: the audit log uses its own name, default 20, max 1000
    1000,
    True,
    # sortBy has no documented default; ascending timestamp keeps a closed window's offsets stable.
    fixed_params=(("sortBy", "timestamp"), ("sortOrder", "asc")),
)

# The legacy audit log of 2.18/2.19 (removed in 2.20): a bare array, newest first, no total or
# next, `limit` default 50. Used only when the tenant has no /api/v1/audit/log (api/features.py).
LEGACY_AUDIT_LOG = Endpoint("legacy_audit_log", "/v1/k8s/audit", None, "limit", 500, False, has_next=False)

# The live workload list. Paged by keyset on createdAt (runai_extract/workload_pages.py), not by
# plain offsets: the list changes while we page it.
WORKLOADS = Endpoint("workloads", "/api/v1/workloads", "workloads", "limit", 500, False)
WORKLOADS_COUNT_PATH = "/api/v1/workloads/count"
# History has no sort parameter (its order is unspecified); events default to newest first,
# which shifts offsets as events arrive, so ask for oldest first.
WORKLOAD_HISTORY = Endpoint(
    "workload_history", "/api/v1/workloads/{id}/history", "records", "limit", 500, False
)
WORKLOAD_EVENTS = Endpoint(
    "workload_events",
    "/api/v1/workloads/{id}/events",
    "events",
    "limit",
    500,
    False,
    fixed_params=(("sortOrder", "asc"),),
)
CLUSTERS = Endpoint("clusters", "/api/v1/clusters", None, None, 500, False, id_field="uuid")
DEPARTMENTS = Endpoint("departments", "/api/v1/org-unit/departments", "departments", "limit", 500, False)
PROJECTS = Endpoint("projects", "/api/v1/org-unit/projects", "projects", "limit", 500, False)
NODE_POOLS = Endpoint("node_pools", "/api/v1/node-pools", "nodepools", "limit", 500, False, has_next=False)
# 2.18 has no /api/v1/node-pools: one cluster's pools, a bare array, not paged (api/features.py).
LEGACY_NODE_POOLS = Endpoint(
    "legacy_node_pools", "/v1/k8s/clusters/{id}/node-pools", None, None, 500, False, has_next=False
)
USERS = Endpoint("users", "/api/v1/users", None, "limit", 500, False, has_next=False)

ENDPOINTS: Mapping[str, Endpoint] = MappingProxyType(
    {
        e.name: e
        for e in sorted(
            [
                AUDIT_LOG,
                LEGACY_AUDIT_LOG,
                WORKLOADS,
                WORKLOAD_HISTORY,
                WORKLOAD_EVENTS,
                CLUSTERS,
                DEPARTMENTS,
                PROJECTS,
                NODE_POOLS,
                LEGACY_NODE_POOLS,
                USERS,
            ],
            key=lambda e: e.name,
        )
    }
)
"""Every known endpoint by name, in a stable (sorted) order."""
