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
from dataclasses import dataclass
from types import MappingProxyType

from runai_extract.errors import ConfigError


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

ENDPOINTS: Mapping[str, Endpoint] = MappingProxyType(
    {e.name: e for e in sorted([AUDIT_LOG], key=lambda e: e.name)}
)
"""Every known endpoint by name, in a stable (sorted) order."""
