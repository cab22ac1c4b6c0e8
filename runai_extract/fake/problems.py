"""The one way the fake says no: an exception that carries the API's ``Error`` body.

Every 4xx/5xx on ``/api/v1/*`` is ``{"code": int, "message": str, "details"?: str}`` (README
section 8), so request parsing, auth and routing all raise :class:`ApiProblem` and the app turns
it into that body in one place.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import orjson


class ErrorBody(TypedDict):
    code: int
    message: str
    details: NotRequired[str]


class ApiProblem(Exception):
    """A request the fake refuses, with the status and Error body to answer."""

    def __init__(self, status: int, message: str, details: str | None = None) -> None:
        super().__init__(f"{status} {message}" + (f": {details}" if details else ""))
        self.status = status
        self.message = message
        self.details = details

    def body(self) -> ErrorBody:
        body: ErrorBody = {"code": self.status, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def json(self) -> bytes:
        return orjson.dumps(self.body())


def bad_request(details: str, message: str = "Invalid request parameter") -> ApiProblem:
    """A 400 whose ``details`` names the offending parameter, as the spec's example does."""
    return ApiProblem(400, message, details)


def missing_parameter(name: str) -> ApiProblem:
    # Wording copied from the spec example (examples/error_400.json).
    return ApiProblem(400, "Required parameter is missing", f"query parameter '{name}' is required")
