"""Org units as versioned dimensions: renames keep the old name for its time, removals are recorded."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import orjson

from runai_extract.usage.org_units import sync_org
from tests.httpfakes import FakeClock, FakeControlPlane, error_response, make_settings
from tests.usage.conftest import rows, views

DATA = Path(__file__).parent.parent / "data"


def _load(name: str) -> Any:
    return orjson.loads((DATA / name).read_bytes())


class OrgServer:
    """The five org-unit lists of the API examples, editable between syncs, with a Date header."""

    def __init__(self) -> None:
        self.lists: dict[str, Any] = {
            "/api/v1/clusters": _load("clusters.json"),
            "/api/v1/org-unit/departments": _load("departments_page.json"),
            "/api/v1/org-unit/projects": _load("projects_page.json"),
            "/api/v1/node-pools": _load("nodepools.json"),
            "/api/v1/users": _load("users.json"),
        }
        self.date = "Tue, 03 Jun 2025 12:00:00 GMT"
        self.forbidden: set[str] = set()
        self.server = FakeControlPlane(FakeClock())
        for path in self.lists:
            self.server.routes[path] = self._route(path)

    def _route(self, path: str) -> Any:
        def answer(params: dict[str, str]) -> httpx.Response:
            if path in self.forbidden:
                return error_response(403, "You do not have sufficient permissions.")
            body = copy.deepcopy(self.lists[path])
            if isinstance(body, list):
                offset = int(params.get("offset", 0))
                body = body[offset : offset + int(params.get("limit", 500))]
            return httpx.Response(200, json=body, headers={"Date": self.date})

        return answer


def _settings(tmp_path: Path) -> Any:
    return make_settings(home=tmp_path, lake_uri=str(tmp_path / "lake"))


def test_a_rename_and_a_removal_become_versions(tmp_path: Path) -> None:
    org = OrgServer()
    settings = _settings(tmp_path)
    first = sync_org(settings, transport=org.server.transport())
    assert first.status == "committed" and first.kinds["projects"].new_versions == 2

    project = org.lists["/api/v1/org-unit/projects"]["projects"][0]
    project["name"], project["updatedAt"] = "team-vision-v2", "2025-06-03T15:30:00.000Z"
    gone = org.lists["/api/v1/users"].pop()
    org.date = "Wed, 04 Jun 2025 12:00:00 GMT"
    second = sync_org(settings, transport=org.server.transport())
    assert second.kinds["projects"].new_versions == 1 and second.kinds["users"].tombstones == 1
    again = sync_org(settings, transport=org.server.transport())
    assert sum(k.new_versions + k.tombstones for k in again.kinds.values()) == 0

    con = views(settings)
    history = rows(
        con,
        "select name, valid_from, valid_to from projects_history where project_id = ? order by version_number",
        project["id"],
    )
    assert [h[0] for h in history] == ["team-vision", "team-vision-v2"]
    # The API said when it changed (updatedAt between two observations): that is when the new name starts.
    assert str(history[1][1]) == "2025-06-03 15:30:00+00:00" == str(history[0][2])
    assert rows(con, "select count(*) from users where user_id = ?", gone["id"]) == [(0,)]
    # Each run vouches for [previous run - overlap, now): a day between two runs is not a gap.
    assert rows(con, "select count(*) from ingest_gaps where stream = 'org'") == [(0,)]
    assert rows(
        con, "select is_deleted from users_history where user_id = ? order by version_number", gone["id"]
    ) == [
        (False,),
        (True,),
    ]


def test_a_kind_that_fails_is_reported_and_the_others_are_stored(tmp_path: Path) -> None:
    org = OrgServer()
    org.forbidden.add("/api/v1/users")
    summary = sync_org(_settings(tmp_path), transport=org.server.transport())
    assert summary.status == "failed"
    assert "403" in (summary.kinds["users"].error or "")
    assert summary.kinds["projects"].new_versions == 2 and summary.kinds["clusters"].new_versions == 2
    con = views(_settings(tmp_path))
    assert rows(con, "select count(*) from projects") == [(2,)]
    assert rows(con, "select status, error from ingest_runs where stream = 'org'")[0][0] == "failed"
