"""Every kind of answer the fake gives validates against runapy 1.224's models (the 2.24 API),
and runapy's own client can talk to it: token request, JWT decoding, audit-log call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from runai.api import AuditLogsApi
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.models import AuditLog, Error, GetAuditLogs200Response, TokenResponse

from runai_extract.fake import FakeControlPlane, FaultConfig

AUDIT = "/api/v1/audit/log"
AUDIT_LOG_KEYS = set(AuditLog.model_fields)  # runapy's AuditLog has no aliases: wire keys = fields


def _validated_row(row: dict[str, object]) -> AuditLog:
    assert set(row) <= AUDIT_LOG_KEYS, f"unknown keys {set(row) - AUDIT_LOG_KEYS}"
    assert None not in row.values(), "unset keys are omitted, never null"
    model = AuditLog.from_dict(row)
    assert model is not None
    return model


def test_every_row_of_several_pages_validates(
    plane: FakeControlPlane, api: httpx.Client, window: dict[str, str]
) -> None:
    failed = with_metadata = with_cluster = without_entity_id = 0
    for offset in (0, 1000, 2000):
        body = api.get(AUDIT, params={**window, "offset": offset, "numberOfSamples": 1000}).json()
        envelope = GetAuditLogs200Response.from_dict(body)
        assert envelope is not None and envelope.total == plane.simulator.count()
        for row in body["audit_logs"]:
            model = _validated_row(row)
            assert isinstance(row["tenant_id"], str)
            assert isinstance(model.timestamp, datetime) and model.timestamp.utcoffset() is not None
            assert str(row["timestamp"]).endswith("Z") and len(str(row["timestamp"])) == 24  # ms precision
            failed += model.result == "Failed"
            with_metadata += model.metadata is not None
            with_cluster += model.cluster_id is not None
            without_entity_id += model.entity_id is None
    assert failed and with_metadata and with_cluster and without_entity_id


def test_failed_rows_carry_a_4xx_status_and_a_reason(plane: FakeControlPlane) -> None:
    failed = [row for row in plane.simulator.audit_rows() if row["result"] == "Failed"]
    assert {row["http_status_code"] for row in failed} >= {400, 401, 403, 404, 409}
    assert all(400 <= int(row["http_status_code"]) < 500 for row in failed)
    assert all("reason" in row["metadata"] for row in failed)
    for row in failed[:50]:
        _validated_row(row)


def test_token_response_validates(plane: FakeControlPlane) -> None:
    body = {
        "grantType": "client_credentials",
        "clientId": "ledger-demo",
        "clientSecret": "ledger-demo-secret",
    }
    response = httpx.post(plane.base_url + "/api/v1/token", json=body)
    assert response.status_code == 200
    model = TokenResponse.from_dict(response.json())
    assert model is not None and model.access_token and model.expires_in == 3600


@pytest.mark.parametrize(
    ("path", "params", "authorised", "status"),
    [
        (AUDIT, {"end": "2025-06-02T00:00:00Z"}, True, 400),
        (AUDIT, {"start": "2025-06-01T00:00:00Z", "end": "2025-06-02T00:00:00Z"}, False, 401),
        ("/api/v1/no-such-thing", {}, True, 404),
    ],
)
def test_error_bodies_validate(
    plane: FakeControlPlane,
    api: httpx.Client,
    path: str,
    params: dict[str, str],
    authorised: bool,
    status: int,
) -> None:
    anonymous = plane.base_url + path
    response = api.get(path, params=params) if authorised else httpx.get(anonymous, params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = Error.from_dict(response.json())
    assert error is not None and error.code == status and error.message


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_injected_fault_bodies_validate(
    start_plane: Callable[..., FakeControlPlane],
    client_for: Callable[[FakeControlPlane], httpx.Client],
    status: int,
) -> None:
    plane = start_plane(
        days=1, events_per_day=50, faults=FaultConfig(error_rate=1.0, error_statuses=(status,))
    )
    response = client_for(plane).get(
        AUDIT, params={"start": "2025-06-02T12:00:00Z", "end": "2025-06-03T12:00:00Z"}
    )
    assert response.status_code == status
    error = Error.from_dict(response.json())
    assert error is not None and error.code == status


def test_runapy_client_authenticates_and_reads_the_audit_log(plane: FakeControlPlane) -> None:
    """runapy sends {"grantType": "app_token", "AppId", "AppSecret"} and base64-decodes the JWT."""
    config = Configuration(
        client_id=plane.config.client_id,
        client_secret=plane.config.client_secret,
        runai_base_url=plane.base_url,
        retry_enabled=False,
    )
    client = ApiClient(config)
    try:
        assert client.token_refresher._token_expiry > 0  # its own decoder read our exp claim
        response = AuditLogsApi(client).get_audit_logs(
            start=plane.simulator.start,  # runapy sends isoformat(): "+00:00", percent-encoded
            end=plane.simulator.now,
            number_of_samples=100,
            sort_order="desc",
            filter_by=["result==Failed", "subject_type==User"],
        )
    finally:
        client.close()
    envelope = GetAuditLogs200Response.from_dict(response.data)
    assert envelope is not None and envelope.audit_logs
    assert all(row.result == "Failed" and row.subject_type == "User" for row in envelope.audit_logs)
    assert envelope.audit_logs[0].timestamp >= envelope.audit_logs[-1].timestamp
