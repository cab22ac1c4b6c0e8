"""filterBy and sortBy over HTTP, compared with the same rules applied to the ground truth."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runai_extract.fake import FakeControlPlane

Row = dict[str, Any]
TESTS: dict[str, Callable[[str, str], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "=@": lambda value, wanted: wanted in value,
    "!@": lambda value, wanted: wanted not in value,
    "=^": str.startswith,
    "=$": str.endswith,
}


def _expected(truth: list[Row], expressions: list[tuple[str, str, str]]) -> list[Row]:
    """The documented semantics: AND of terms; a field the row lacks compares as ""."""
    return [
        row
        for row in truth
        if all(TESTS[op](str(row.get(field, "")), value) for field, op, value in expressions)
    ]


def _served(api: httpx.Client, window: dict[str, str], fetch_all: Any, **params: str) -> list[Row]:
    return [row for page in fetch_all(api, {**window, **params}) for row in page["audit_logs"]]


@pytest.mark.parametrize(
    "expressions",
    [
        [("result", "==", "Failed")],
        [("subject_type", "==", "App")],
        [("subject", "=@", "jane")],
        [("subject", "!@", "@example.com")],
        [("entity_type", "==", "training")],
        [("entity_name", "=^", "team-")],
        [("entity_name", ">=", "t")],
        [("url", "=$", "/password")],
        [("source_ip", "=^", "10.20.30.")],
        [("cluster_name", "==", "gpu-dev")],
        [("cluster_name", "!=", "gpu-dev")],
        [("action", "==", "sign-in"), ("result", "==", "Succeeded")],
        [("action", "!=", "sign-in"), ("action", "!=", "sign-out"), ("subject", "<=", "m")],
    ],
)
def test_string_filters_match_the_ground_truth(
    plane: FakeControlPlane,
    api: httpx.Client,
    window: dict[str, str],
    fetch_all: Any,
    expressions: list[tuple[str, str, str]],
) -> None:
    expected = _expected(plane.simulator.audit_rows(), expressions)
    assert expected, "pick filters that match something"
    filter_by = ",".join(f"{field}{op}{value}" for field, op, value in expressions)
    assert _served(api, window, fetch_all, filterBy=filter_by) == expected


def test_timestamp_filters_are_inclusive_and_exact(
    plane: FakeControlPlane, api: httpx.Client, window: dict[str, str], fetch_all: Any
) -> None:
    truth = plane.simulator.audit_rows()
    low, high = truth[100]["timestamp"], truth[900]["timestamp"]
    between = _served(api, window, fetch_all, filterBy=f"timestamp>={low},timestamp<={high}")
    assert between == [row for row in truth if low <= row["timestamp"] <= high]
    exact = _served(api, window, fetch_all, filterBy=f"timestamp=={low}")
    assert exact == [row for row in truth if row["timestamp"] == low]
    others = _served(api, window, fetch_all, filterBy=f"timestamp!={low}")
    assert len(others) == len(truth) - len(exact)


def test_repeated_filter_parameters_are_anded_too(
    plane: FakeControlPlane, api: httpx.Client, window: dict[str, str]
) -> None:
    joined = api.get("/api/v1/audit/log", params={**window, "filterBy": "result==Failed,subject_type==App"})
    repeated = api.get(
        "/api/v1/audit/log",
        params=[*window.items(), ("filterBy", "result==Failed"), ("filterBy", "subject_type==App")],
    )
    assert joined.json() == repeated.json()
    assert joined.json()["total"] == len(
        _expected(plane.simulator.audit_rows(), [("result", "==", "Failed"), ("subject_type", "==", "App")])
    )


@pytest.mark.parametrize(
    "field",
    [
        "subject",
        "subject_type",
        "source_ip",
        "action",
        "http_method",
        "result",
        "url",
        "entity_type",
        "entity_name",
        "entity_id",
    ],
)
def test_sort_by_any_field_breaks_ties_by_id(plane: FakeControlPlane, api: httpx.Client, field: str) -> None:
    truth = plane.simulator.audit_rows()[:900]  # a sub-window that fits one page
    window = {"start": truth[0]["timestamp"], "end": truth[-1]["timestamp"], "numberOfSamples": "1000"}
    truth = [
        row for row in plane.simulator.audit_rows() if window["start"] <= row["timestamp"] <= window["end"]
    ]
    expected = sorted(truth, key=lambda row: (str(row.get(field, "")), row["id"]))
    ascending = api.get("/api/v1/audit/log", params={**window, "sortBy": field}).json()
    descending = api.get("/api/v1/audit/log", params={**window, "sortBy": field, "sortOrder": "desc"}).json()
    assert ascending["audit_logs"] == expected and "next" not in ascending
    assert descending["audit_logs"] == expected[::-1]


def test_filter_and_sort_combine(
    plane: FakeControlPlane, api: httpx.Client, window: dict[str, str], fetch_all: Any
) -> None:
    truth = _expected(plane.simulator.audit_rows(), [("entity_type", "==", "project")])
    expected = sorted(truth, key=lambda row: (row["entity_name"], row["id"]), reverse=True)
    served = _served(
        api, window, fetch_all, filterBy="entity_type==project", sortBy="entity_name", sortOrder="desc"
    )
    assert served == expected
