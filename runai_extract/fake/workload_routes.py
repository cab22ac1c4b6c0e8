"""The workload and lookup routes of the fake (README sections 4.1-4.5 and 6), as of ``sim_now``.

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
from runai_extract.fake.listquery import boolean_param, page_of, paging, parse_list_query, select
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
from runai_extract.fake.problems import ApiProblem
from runai_extract.fake.workload_events import history_records, workload_events
from runai_extract.fake.workload_render import IMAGES, WORKLOAD_FIELDS, ServedWorkload, render_detail
from runai_extract.fake.workloads import WorkloadModel

Params = Sequence[tuple[str, str]]
Render = Callable[[Params, Mapping[str, str]], bytes]

WORKLOADS_PATH = "/api/v1/workloads"


class DataServer(Protocol):
    async def data(self, request: Request, render: Render) -> Response: ...


def workload_routes(server: DataServer, model: WorkloadModel) -> list[Route]:
    handlers = WorkloadHandlers(model)

    def route(path: str, render: Render) -> Route:
        async def endpoint(request: Request) -> Response:
            return await server.data(request, render)

        return Route(path, endpoint, methods=["GET"])

    return [
        route(WORKLOADS_PATH, handlers.list_workloads),
        route(WORKLOADS_PATH + "/count", handlers.count_workloads),
        route(WORKLOADS_PATH + "/{workload_id}", handlers.workload),
        route(WORKLOADS_PATH + "/{workload_id}/events", handlers.events),
        route(WORKLOADS_PATH + "/{workload_id}/history", handlers.history),
        route("/api/v1/clusters", handlers.clusters),
        route("/api/v1/org-unit/departments", handlers.departments),
        route("/api/v1/org-unit/projects", handlers.projects),
        route("/api/v1/node-pools", handlers.nodepools),
        route("/api/v1/users", handlers.users),
    ]


class WorkloadHandlers:
    """Pure request -> body functions over one :class:`WorkloadModel`."""

    def __init__(self, model: WorkloadModel) -> None:
        self.model = model

    # -- workloads --------------------------------------------------------------------------------
    def list_workloads(self, params: Params, path: Mapping[str, str]) -> bytes:
        query = parse_list_query(params, WORKLOAD_FIELDS)
        chosen = select(self._visible(params), query, default_sort="createdAt")
        page, following = page_of(chosen, query.offset, query.limit)
        return _envelope("workloads", [item.wire for item in page], following)

    def count_workloads(self, params: Params, path: Mapping[str, str]) -> bytes:
        query = parse_list_query(params, WORKLOAD_FIELDS)
        return orjson.dumps({"count": len(select(self._visible(params), query))})

    def workload(self, params: Params, path: Mapping[str, str]) -> bytes:
        plan = self._plan(path)
        now_ms = self.model.now_ms
        return orjson.dumps(render_detail(self.model.render(plan, now_ms), plan, now_ms))

    def events(self, params: Params, path: Mapping[str, str]) -> bytes:
        plan = self._plan(path)
        query = parse_list_query(params, {}, default_order="desc")
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

    def users(self, params: Params, path: Mapping[str, str]) -> bytes:
        offset, limit = paging(params, default_limit=500)
        now_ms = self.model.now_ms
        users = [
            user_wire(user, self.model.last_login(user.username, now_ms)) for user in self.model.org.users
        ]
        return orjson.dumps(users[offset : offset + limit])

    # -- helpers ----------------------------------------------------------------------------------
    def _visible(self, params: Params) -> list[ServedWorkload]:
        deleted = boolean_param(dict(params), "deleted")
        _, workloads = self.model.served()
        return [workload for workload in workloads if workload.deleted == deleted]

    def _plan(self, path: Mapping[str, str]) -> WorkloadPlan:
        plan = self.model.find(path["workload_id"])
        if plan is None:
            raise ApiProblem(404, "Resource id not found.", f"workload {path['workload_id']} does not exist")
        return plan


def _envelope(key: str, items: list[Any], following: int | None) -> bytes:
    body: dict[str, Any] = {key: items}
    if following is not None:
        body["next"] = following
    return orjson.dumps(body)
