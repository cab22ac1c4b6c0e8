"""The workload and lookup routes of the fake (README sections 4.1-4.5, 4.8 and 6), as of ``sim_now``.

Each handler turns validated query parameters into a response body; the app wraps them with the
same latency, faults, bearer auth and spoiled bodies as the audit log (``FakeApi.data``).

Choices where the reference is silent:

* ``GET /api/v1/workloads`` without ``sortBy`` lists by ``createdAt`` then ``id``.
* ``GET /api/v1/workloads/{id}`` also returns DELETED workloads (with ``deletedAt`` set); only an
  id that never existed (or is not created yet at ``sim_now``) is a 404.
* history is in a hash order, not chronological (workload_events.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runai_extract.fake.lifecycle import WorkloadPlan
from runai_extract.fake.listquery import (
    ListQuery,
    boolean_param,
    page_of,
    paging,
    parse_list_query,
    select,
)
from runai_extract.fake.org_render import (
    DEPARTMENT_FIELDS,
    PROJECT_FIELDS,
    cluster_wire,
    department_rows,
    gpu_allocated,
    nodepool_wire,
    project_rows,
    user_wire,
)
from runai_extract.fake.pods import workload_pods
from runai_extract.fake.problems import ApiProblem
from runai_extract.fake.releases import WORKLOADS_FILTER_CAP, Release
from runai_extract.fake.workload_events import history_records, workload_events
from runai_extract.fake.workload_render import IMAGES, WORKLOAD_FIELDS, ServedWorkload, render_detail
from runai_extract.fake.workloads import WorkloadModel

Params = Sequence[tuple[str, str]]
Render = Callable[[Params, Mapping[str, str]], bytes]

WORKLOADS_PATH = "/api/v1/workloads"
LEGACY_NODEPOOLS_PATH = "/v1/k8s/clusters/{cluster_uuid}/node-pools"


class DataServer(Protocol):
    async def data(self, request: Request, render: Render) -> Response: ...


def workload_routes(server: DataServer, model: WorkloadModel, served: Release) -> list[Route]:
    """The routes ``served`` has: a path its release lacks is simply not routed (a 404)."""
    handlers = WorkloadHandlers(model, served)

    def route(path: str, render: Render) -> Route:
        async def endpoint(request: Request) -> Response:
            return await server.data(request, render)

        return Route(path, endpoint, methods=["GET"])

    routes = [
        route(WORKLOADS_PATH, handlers.list_workloads),
        route(WORKLOADS_PATH + "/count", handlers.count_workloads),
        route(WORKLOADS_PATH + "/{workload_id}", handlers.workload),
        route(WORKLOADS_PATH + "/{workload_id}/events", handlers.events),
        route(WORKLOADS_PATH + "/{workload_id}/history", handlers.history),
        route(WORKLOADS_PATH + "/{workload_id}/pods", handlers.pods),
        route("/api/v1/clusters", handlers.clusters),
        route("/api/v1/org-unit/departments", handlers.departments),
        route("/api/v1/org-unit/projects", handlers.projects),
        route("/api/v1/users", handlers.users),
    ]
    optional: list[tuple[str, str, Render]] = [
        ("nodepools.v1", "/api/v1/node-pools", handlers.nodepools),
        ("nodepools.legacy", LEGACY_NODEPOOLS_PATH, handlers.cluster_nodepools),
        # Removed in 3.0; never read by the ledger, served as empty lists before it.
        ("apps.v1", "/api/v1/apps", _empty_list),
        ("apps.v1", "/api/v1/user-applications", _empty_list),
        ("apps.v1", "/api/v1/administration/user-applications", _empty_list),
        ("roles.v1", "/api/v1/authorization/roles", _empty_list),
        ("cluster_nodes.v1", "/api/v1/clusters/{cluster_uuid}/nodes", _no_nodes),
        ("org_priorities.v1", "/api/v1/org-unit/priorities", _empty_list),
    ]
    routes.extend(route(path, render) for feature, path, render in optional if served.has(feature))
    return routes


class WorkloadHandlers:
    """Pure request -> body functions over one :class:`WorkloadModel`."""

    def __init__(self, model: WorkloadModel, served: Release) -> None:
        self.model = model
        self.release = served
        absent = served.absent_workload_fields
        self._absent = absent
        self._fields = {name: kind for name, kind in WORKLOAD_FIELDS.items() if name not in absent}
        self._filter_cap = WORKLOADS_FILTER_CAP if served.has("workload.filter_cap") else None
        self._search = served.has("workload.search")

    # -- workloads --------------------------------------------------------------------------------
    def list_workloads(self, params: Params, path: Mapping[str, str]) -> bytes:
        query = self._workload_query(params)
        chosen = select(self._visible(params), query, default_sort="createdAt")
        page, following = page_of(chosen, query.offset, query.limit)
        return _envelope("workloads", [self._shown(item.wire) for item in page], following)

    def count_workloads(self, params: Params, path: Mapping[str, str]) -> bytes:
        query = self._workload_query(params)
        return orjson.dumps({"count": len(select(self._visible(params), query))})

    def workload(self, params: Params, path: Mapping[str, str]) -> bytes:
        plan = self._plan(path)
        now_ms = self.model.now_ms
        served = self.model.render(plan, now_ms)
        if not self.release.has("workload.detailed"):  # 2.18 answers the list item itself
            return orjson.dumps(self._shown(served.wire))
        return orjson.dumps(self._shown(render_detail(served, plan, now_ms)))

    def events(self, params: Params, path: Mapping[str, str]) -> bytes:
        plan = self._plan(path)
        if self.release.has("events.sort_order"):
            query = parse_list_query(params, {}, default_order="desc")
        else:  # no sortOrder before 2.20: the parameter is ignored and events come oldest first
            query = parse_list_query([(k, v) for k, v in params if k != "sortOrder"], {})
        namespace = self.model.unit(plan.project_id).namespace
        events = [
            event for _, event in workload_events(plan, namespace, IMAGES[plan.type], self.model.now_ms)
        ]
        if query.descending:
            events.reverse()
        page, following = page_of(events, query.offset, query.limit)
        return _envelope("events", page, following)

    def history(self, params: Params, path: Mapping[str, str]) -> bytes:
        plan = self._plan(path)
        offset, limit = paging(params)
        now_ms = self.model.now_ms
        namespace = self.model.unit(plan.project_id).namespace
        events = workload_events(plan, namespace, IMAGES[plan.type], now_ms)
        page, following = page_of(history_records(plan, events, now_ms), offset, limit)
        return _envelope("records", page, following)

    def pods(self, params: Params, path: Mapping[str, str]) -> bytes:
        """The workload's pods (README 4.8): ``deleted``, ``search`` on the name, offset paging."""
        plan = self._plan(path)
        single = dict(params)
        deleted = boolean_param(single, "deleted")
        offset, limit = paging(params)
        needle = (single.get("search") or "").lower()
        chosen = [
            wire
            for gone, wire in workload_pods(plan, self.model.tenant_id, self.model.now_ms)
            if gone == deleted and needle in wire["name"].lower()
        ]
        page, following = page_of(chosen, offset, limit)
        return _envelope("pods", page, following)

    # -- lookups ----------------------------------------------------------------------------------
    def clusters(self, params: Params, path: Mapping[str, str]) -> bytes:
        now_ms = self.model.now_ms
        org = self.model.org
        return orjson.dumps(
            [cluster_wire(c, self.model.tenant_id, now_ms) for c in org.clusters if c.created_ms <= now_ms]
        )

    def departments(self, params: Params, path: Mapping[str, str]) -> bytes:
        query = parse_list_query(params, DEPARTMENT_FIELDS)
        now_ms, workloads = self.model.served()
        rows = select(department_rows(self.model.org, gpu_allocated(workloads), now_ms), query)
        page, following = page_of(rows, query.offset, query.limit)
        return _envelope("departments", [row.wire for row in page], following)

    def projects(self, params: Params, path: Mapping[str, str]) -> bytes:
        query = parse_list_query(params, PROJECT_FIELDS)
        now_ms, workloads = self.model.served()
        rows = select(project_rows(self.model.org, gpu_allocated(workloads), now_ms), query)
        page, following = page_of(rows, query.offset, query.limit)
        return _envelope("projects", [row.wire for row in page], following)

    def nodepools(self, params: Params, path: Mapping[str, str]) -> bytes:
        offset, limit = paging(params)
        org, now_ms = self.model.org, self.model.now_ms
        clusters = {cluster.uuid: cluster for cluster in org.clusters}
        pools = [
            nodepool_wire(pool, clusters[pool.cluster_id], self.model.tenant_id)
            for pool in org.nodepools
            if pool.created_ms <= now_ms
        ]
        return orjson.dumps({"nodepools": pools[offset : offset + limit]})  # no "next" (README 6)

    def cluster_nodepools(self, params: Params, path: Mapping[str, str]) -> bytes:
        """The legacy per-cluster list (2.18; deprecated from 2.19): a bare array, not paged."""
        org, now_ms = self.model.org, self.model.now_ms
        cluster = next(
            (c for c in org.clusters if c.uuid == path["cluster_uuid"] and c.created_ms <= now_ms), None
        )
        if cluster is None:
            raise ApiProblem(404, "Resource id not found.", f"cluster {path['cluster_uuid']} does not exist")
        return orjson.dumps(
            [
                nodepool_wire(pool, cluster, self.model.tenant_id)
                for pool in org.nodepools
                if pool.cluster_id == cluster.uuid and pool.created_ms <= now_ms
            ]
        )

    def users(self, params: Params, path: Mapping[str, str]) -> bytes:
        if not self.release.has("users.paged"):  # 2.18: no offset/limit, every user at once
            params = [(k, v) for k, v in params if k not in ("offset", "limit")]
        offset, limit = paging(params, default_limit=500)
        now_ms = self.model.now_ms
        users = [
            user_wire(user, self.model.last_login(user.username, now_ms)) for user in self.model.org.users
        ]
        return orjson.dumps(users[offset : offset + limit])

    # -- helpers ----------------------------------------------------------------------------------
    def _workload_query(self, params: Params) -> ListQuery:
        return parse_list_query(params, self._fields, max_terms=self._filter_cap, searchable=self._search)

    def _shown(self, wire: dict[str, Any]) -> dict[str, Any]:
        """The workload as this release shows it: keys it does not have yet are left out."""
        if not self._absent:
            return wire
        return {key: value for key, value in wire.items() if key not in self._absent}

    def _visible(self, params: Params) -> list[ServedWorkload]:
        deleted = boolean_param(dict(params), "deleted")
        _, workloads = self.model.served()
        return [workload for workload in workloads if workload.deleted == deleted]

    def _plan(self, path: Mapping[str, str]) -> WorkloadPlan:
        plan = self.model.find(path["workload_id"])
        if plan is None:
            raise ApiProblem(404, "Resource id not found.", f"workload {path['workload_id']} does not exist")
        return plan


def _empty_list(params: Params, path: Mapping[str, str]) -> bytes:
    return b"[]"


def _no_nodes(params: Params, path: Mapping[str, str]) -> bytes:
    return b'{"nodes":[]}'


def _envelope(key: str, items: list[Any], following: int | None) -> bytes:
    body: dict[str, Any] = {key: items}
    if following is not None:
        body["next"] = following
    return orjson.dumps(body)
