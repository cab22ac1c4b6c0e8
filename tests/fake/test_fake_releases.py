"""The fake speaks every release from 2.18 to 3.0 and "latest": each release's routes (404 where
it has none), its field sets, defaults and limits, and answers that validate against that
release's official client (runapy 1.218.0 ... 1.224.0, each in its own subprocess)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from runai_extract.fake import FakeConfig, FakeControlPlane
from runai_extract.fake.releases import RELEASE_FEATURES, RELEASES, release
from tests.fake.runapy.wheels import validate

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
WINDOW = {"start": "2025-06-02T12:00:00Z", "end": "2025-06-03T12:00:00Z"}
LEGACY_WINDOW = {"start": "2025-06-02T12:00:00", "end": "2025-06-03T12:00:00"}
AUDIT, LEGACY_AUDIT, WORKLOADS = "/api/v1/audit/log", "/v1/k8s/audit", "/api/v1/workloads"
REMOVED_IN_3 = ("/api/v1/apps", "/api/v1/user-applications", "/api/v1/org-unit/priorities")


def _client(plane: FakeControlPlane) -> httpx.Client:
    client = httpx.Client(base_url=plane.base_url, timeout=10.0)
    body = {"grantType": "client_credentials", "clientId": plane.config.client_id}
    body["clientSecret"] = plane.config.client_secret
    token = client.post("/api/v1/token", json=body).json()["accessToken"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture(scope="module", params=RELEASES)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeControlPlane, httpx.Client]]:
    config = FakeConfig(seed=3, days=1, events_per_day=300, now=NOW, api_version=request.param)
    with FakeControlPlane(config) as plane:
        client = _client(plane)
        try:
            yield request.param, plane, client
        finally:
            client.close()


def _ok(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:200]}"
    return response.json()


def test_each_release_routes_what_it_has_and_404s_the_rest(
    served: tuple[str, FakeControlPlane, httpx.Client],
) -> None:
    version, _plane, client = served
    features = release(version)
    expected = {
        AUDIT: features.has("audit.modern"),
        LEGACY_AUDIT: features.has("audit.legacy"),
        "/api/v1/node-pools": features.has("nodepools.v1"),
        **dict.fromkeys(REMOVED_IN_3, features.has("apps.v1")),
        "/api/v1/authorization/roles": features.has("roles.v1"),
    }
    for path, present in expected.items():
        params = WINDOW if path == AUDIT else {}
        response = client.get(path, params=params)
        assert response.status_code == (200 if present else 404), (version, path, response.text[:200])
        if not present:
            assert response.json()["code"] == 404  # the API's Error body, not a plain-text page
    cluster = _ok(client, "/api/v1/clusters")[0]["uuid"]
    nodes = client.get(f"/api/v1/clusters/{cluster}/nodes")
    assert nodes.status_code == (200 if features.has("cluster_nodes.v1") else 404)


def test_legacy_audit_is_camel_case_newest_first_without_total(
    served: tuple[str, FakeControlPlane, httpx.Client],
) -> None:
    version, plane, client = served
    if not release(version).has("audit.legacy"):
        pytest.skip(f"{version} has no legacy audit endpoint")
    rows = _ok(client, LEGACY_AUDIT, limit=1000, **LEGACY_WINDOW)
    assert isinstance(rows, list) and rows
    assert all(isinstance(row["id"], int) and isinstance(row["tenantId"], int) for row in rows)
    stamps = [row["happenedAt"] for row in rows]
    assert stamps == sorted(stamps, reverse=True)
    modern = plane.simulator.audit_rows(datetime(2025, 6, 2, 12, tzinfo=UTC), NOW)
    assert len(rows) == len(modern)
    assert {"Failed"} <= {row["result"] for row in modern}
    assert any("error" in row for row in rows) and any("error" not in row for row in rows)
    first_page = _ok(client, LEGACY_AUDIT, **LEGACY_WINDOW)
    assert len(first_page) == 50  # runapy's documented default page
    deprecated = client.get(LEGACY_AUDIT, params=LEGACY_WINDOW).headers.get("deprecation")
    assert (deprecated == "true") == release(version).has("audit.legacy_deprecated")


def test_legacy_audit_reads_its_bounds_as_utc_and_refuses_impossible_dates(
    served: tuple[str, FakeControlPlane, httpx.Client],
) -> None:
    """start/end go through the project's one ISO-8601 parser: a date is UTC midnight, and a
    date that does not exist is a 400 naming the parameter, never a shifted window."""
    version, _plane, client = served
    if not release(version).has("audit.legacy"):
        pytest.skip(f"{version} has no legacy audit endpoint")
    by_date = _ok(client, LEGACY_AUDIT, limit=1000, start="2025-06-03", end="2025-06-03T12:00:00")
    by_time = _ok(client, LEGACY_AUDIT, limit=1000, start="2025-06-03T00:00:00", end="2025-06-03T12:00:00")
    assert by_date == by_time and by_date
    assert min(row["happenedAt"] for row in by_date) >= "2025-06-03T00:00:00"
    for bad in ("2025-02-30", "2025-06-03T24:00:00", "2025-06-03T00:00:00Z"):
        refused = client.get(LEGACY_AUDIT, params={"start": bad})
        assert refused.status_code == 400 and "'start'" in refused.text, (bad, refused.text)


def test_workload_fields_follow_the_release(served: tuple[str, FakeControlPlane, httpx.Client]) -> None:
    version, _plane, client = served
    workloads = _ok(client, WORKLOADS, limit=500)["workloads"]
    keys = set().union(*(set(item) for item in workloads))
    absent = release(version).absent_workload_fields
    assert not keys & absent, f"{version} sent fields it does not have yet: {keys & absent}"
    assert all(item.get("priority", 0) is not None or "priority" in item for item in workloads)
    if release(version).has("workload.category"):
        assert all("category" in item for item in workloads)


def test_event_order_defaults_and_filter_cap_follow_the_release(
    served: tuple[str, FakeControlPlane, httpx.Client],
) -> None:
    version, _plane, client = served
    workload = max(_ok(client, WORKLOADS, limit=500)["workloads"], key=lambda w: w["updatedAt"])
    events = _ok(client, f"{WORKLOADS}/{workload['id']}/events", limit=500)["events"]
    stamps = [event["createdAt"] for event in events]
    newest_first = release(version).has("events.sort_order")
    assert stamps == sorted(stamps, reverse=newest_first) and len(set(stamps)) > 1
    terms = ",".join(["createdAt>=2020-01-01T00:00:00Z"] * 11)
    capped = client.get(WORKLOADS, params={"filterBy": terms})
    assert capped.status_code == (400 if release(version).has("workload.filter_cap") else 200)
    assert client.get(WORKLOADS, params={"filterBy": ",".join(terms.split(",")[:10])}).status_code == 200


def test_answers_validate_against_the_release_client(
    served: tuple[str, FakeControlPlane, httpx.Client],
) -> None:
    version, _plane, client = served
    features = release(version)
    checks: list[dict[str, Any]] = []

    def check(label: str, model: str, payload: Any, exact_keys: bool = False) -> None:
        checks.append({"label": label, "model": model, "payload": payload, "exact_keys": exact_keys})

    if features.has("audit.modern"):
        body = _ok(client, AUDIT, numberOfSamples=1000, **WINDOW)
        envelope = "GetAuditLogs1200Response" if version == "2.19" else "GetAuditLogs200Response"
        check("audit envelope", envelope, body)
        for row in body["audit_logs"][:150]:
            check(f"audit row {row['id']}", "AuditLog", row, exact_keys=True)
    if features.has("audit.legacy"):
        for row in _ok(client, LEGACY_AUDIT, limit=150, **LEGACY_WINDOW):
            check(f"legacy row {row['id']}", "AuditLogRecord", row, exact_keys=True)
    for deleted in ("false", "true"):
        body = _ok(client, WORKLOADS, limit=500, deleted=deleted)
        check(f"workloads deleted={deleted}", "GetWorkloads200Response", body)
        for item in body["workloads"]:
            check(f"workload {item['id']}", "Workload", item, exact_keys=True)
    for item in _ok(client, WORKLOADS, limit=500)["workloads"][:6]:
        detail = _ok(client, f"{WORKLOADS}/{item['id']}")
        model = "WorkloadDetailed" if features.has("workload.detailed") else "Workload"
        check(f"detail {item['id']}", model, detail, exact_keys=True)
        events = _ok(client, f"{WORKLOADS}/{item['id']}/events", limit=500)
        check(f"events {item['id']}", "GetWorkloadEvents200Response", events)
        history = _ok(client, f"{WORKLOADS}/{item['id']}/history", limit=500)
        check(f"history {item['id']}", "GetWorkloadHistory200Response", history)
    check("404 body", "Error", client.get("/api/v1/no-such-thing").json())
    result = validate(features.runapy, checks)
    assert result["version"] == features.runapy
    assert result["checked"] == len(checks) > 20, checks
    assert not result["failures"], "\n".join(result["failures"][:20])


def test_the_release_table_is_ordered_and_complete() -> None:
    assert list(RELEASE_FEATURES) == list(RELEASES)
    # Features only arrive or leave at release boundaries; "latest" has everything 3.0 has.
    assert RELEASE_FEATURES["latest"] == RELEASE_FEATURES["3.0"]
    assert "audit.modern" not in RELEASE_FEATURES["2.18"] and "audit.legacy" not in RELEASE_FEATURES["2.20"]
    with pytest.raises(ValueError, match=r"2\.18"):
        FakeConfig(api_version="2.17")
