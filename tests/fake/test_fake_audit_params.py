"""GET /api/v1/audit/log parameter validation: the 400s a sloppy client must see."""

from __future__ import annotations

import httpx
import pytest

AUDIT = "/api/v1/audit/log"
START, END = "2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z"


def test_missing_start_is_the_spec_example_error(api: httpx.Client) -> None:
    response = api.get(AUDIT, params={"end": END})
    assert response.status_code == 400
    assert response.json() == {
        "code": 400,
        "message": "Required parameter is missing",
        "details": "query parameter 'start' is required",
    }


def test_missing_end_names_end(api: httpx.Client) -> None:
    response = api.get(AUDIT, params={"start": START})
    assert response.status_code == 400
    assert response.json()["details"] == "query parameter 'end' is required"


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-13-01T00:00:00Z"}, "end"),
        ({"start": "2025-06-02T00:00:00 00:00"}, "'+' sent unencoded"),
        ({"start": END, "end": START}, "after"),
        ({"end": "9999-12-31T23:00:00-05:00"}, "out of range"),
        ({"numberOfSamples": "1001"}, "numberOfSamples"),
        ({"numberOfSamples": "-1"}, "numberOfSamples"),
        ({"numberOfSamples": "ten"}, "numberOfSamples"),
        ({"numberOfSamples": "1_000"}, "numberOfSamples"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"sortBy": "request_id"}, "sortBy"),
        ({"sortBy": "cluster_name"}, "sortBy"),
        ({"sortOrder": "DESC"}, "sortOrder"),
        ({"filterBy": "entity_id==5"}, "entity_id"),
        ({"filterBy": "http_method==POST"}, "http_method"),
        ({"filterBy": "cluster_id==x"}, "cluster_id"),
        ({"filterBy": "subject>jane"}, "subject>jane"),
        ({"filterBy": "subject==a,"}, "filterBy"),
        ({"filterBy": "timestamp=@2025"}, "date"),
        ({"filterBy": "timestamp>=soon"}, "timestamp"),
    ],
)
def test_invalid_parameters_are_400_with_details(
    api: httpx.Client, params: dict[str, str], mentions: str
) -> None:
    response = api.get(AUDIT, params={"start": START, "end": END, **params})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400 and mentions in body["details"]


@pytest.mark.parametrize(
    "params",
    [
        {"numberOfSamples": "0"},
        {"numberOfSamples": "1000"},
        {"sortBy": "http_method", "sortOrder": "desc"},
        {"filterBy": "timestamp>=2025-06-02T10:00:00.000Z,timestamp<=2025-06-02T11:00:00+00:00"},
        {"filterBy": "url=@/api/v1/"},
        {"start": "2025-06-02", "end": "2025-06-03T00:00:00"},  # date only / no offset: UTC
        {"start": "2025-06-02T02:00:00+02:00"},
        {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59.999999Z"},
    ],
)
def test_valid_variants_are_accepted(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get(AUDIT, params={"start": START, "end": END, **params})
    assert response.status_code == 200, response.text


def test_page_size_defaults_to_20(api: httpx.Client) -> None:
    body = api.get(AUDIT, params={"start": START, "end": END}).json()
    assert len(body["audit_logs"]) == 20 and body["next"] == 20


def test_zero_samples_gives_the_total_only(api: httpx.Client) -> None:
    body = api.get(AUDIT, params={"start": START, "end": END, "numberOfSamples": 0}).json()
    assert body["audit_logs"] == [] and body["total"] > 0


def test_offset_past_the_end_is_an_empty_last_page(api: httpx.Client) -> None:
    body = api.get(AUDIT, params={"start": START, "end": END, "offset": 10**6}).json()
    assert body["audit_logs"] == [] and "next" not in body and body["total"] > 0


def test_unknown_route_and_wrong_method_use_the_error_body(api: httpx.Client) -> None:
    missing = api.get("/api/v1/no-such-route")  # /api/v1/workloads exists since issue 3
    assert missing.status_code == 404 and missing.json()["code"] == 404
    wrong_method = api.post(AUDIT, params={"start": START, "end": END})
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 405
