"""Fixtures for the fake control plane's own tests: real servers on loopback, real httpx clients.

One shared tenant (module scope) serves the read-only tests; fault and mutation tests start
their own small tenant through ``start_plane`` so they can't disturb each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from runai_extract.fake import FakeConfig, FakeControlPlane

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
AUDIT = "/api/v1/audit/log"
TOKEN = "/api/v1/token"

Page = dict[str, Any]
Fetch = Callable[..., list[Page]]


def _config(**changes: Any) -> FakeConfig:
    base: dict[str, Any] = {"seed": 7, "days": 2, "events_per_day": 1500, "now": NOW}
    base.update(changes)
    return FakeConfig(**base)


def _token(plane: FakeControlPlane, client: httpx.Client | None = None) -> str:
    body = {"grantType": "client_credentials", "clientId": plane.config.client_id}
    body["clientSecret"] = plane.config.client_secret
    response = (client or httpx).post(plane.base_url + TOKEN, json=body)
    response.raise_for_status()
    token: str = response.json()["accessToken"]
    return token


def _client(plane: FakeControlPlane) -> httpx.Client:
    client = httpx.Client(base_url=plane.base_url, timeout=10.0)
    client.headers["Authorization"] = f"Bearer {_token(plane, client)}"
    return client


@pytest.fixture(scope="module")
def plane() -> Iterator[FakeControlPlane]:
    """A healthy 3,000-row tenant shared by a module's read-only tests."""
    with FakeControlPlane(_config()) as running:
        yield running


@pytest.fixture(scope="module")
def api(plane: FakeControlPlane) -> Iterator[httpx.Client]:
    """An authenticated httpx client for ``plane``."""
    client = _client(plane)
    yield client
    client.close()


@pytest.fixture(scope="module")
def anon(plane: FakeControlPlane) -> Iterator[httpx.Client]:
    """A client for ``plane`` that sends no credentials."""
    with httpx.Client(base_url=plane.base_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def start_plane() -> Iterator[Callable[..., FakeControlPlane]]:
    """Start a private tenant: ``start_plane(faults=FaultConfig(...), days=1, ...)``."""
    started: list[FakeControlPlane] = []

    def start(**changes: Any) -> FakeControlPlane:
        plane = FakeControlPlane(_config(**changes)).start()
        started.append(plane)
        return plane

    yield start
    for plane in started:
        plane.stop()


@pytest.fixture
def client_for() -> Iterator[Callable[[FakeControlPlane], httpx.Client]]:
    """An authenticated client for any plane; closed at the end of the test."""
    clients: list[httpx.Client] = []

    def make(plane: FakeControlPlane) -> httpx.Client:
        clients.append(_client(plane))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def token_for() -> Callable[[FakeControlPlane], str]:
    return _token


@pytest.fixture
def window(plane: FakeControlPlane) -> dict[str, str]:
    """Query parameters covering the shared tenant's whole stream."""
    return {"start": plane.simulator.start.isoformat(), "end": plane.simulator.now.isoformat()}


@pytest.fixture
def fetch_all() -> Fetch:
    """Page a query to its end the way a careful client does; returns every page's body."""

    def fetch(client: httpx.Client, params: dict[str, Any], page_size: int = 1000) -> list[Page]:
        pages: list[Page] = []
        offset = 0
        while True:
            response = client.get(AUDIT, params={**params, "offset": offset, "numberOfSamples": page_size})
            assert response.status_code == 200, response.text
            pages.append(response.json())
            offset += len(pages[-1]["audit_logs"])
            if "next" not in pages[-1]:
                return pages
            assert len(pages) < 10_000, "paging did not end"

    return fetch
