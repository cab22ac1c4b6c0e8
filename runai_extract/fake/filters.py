"""Parsing and validating ``GET /api/v1/audit/log`` query parameters into an :class:`AuditQuery`.

The real API validates ``sortBy`` against an enum and each ``filterBy`` field against a regex and
answers 400 otherwise (README sections 1.5, 3.1, 11.4); the fake is as strict, so a client that
sends an unsupported field fails here rather than against a customer's tenant.

Choices where the API is silent (each marked UNSPECIFIED in the reference):

* The window is ``start <= timestamp <= end``: **both ends inclusive**. That is the harder case
  for clients: a row exactly on a slice boundary is returned by both neighbouring slices, so an
  extractor must dedupe by ``id``.
* Multiple ``filterBy`` expressions are ANDed. The parameter is one comma-joined value (spec
  ``explode: false``); repeated ``filterBy`` parameters are accepted too and joined.
* A date without an offset is taken as UTC (runapy sends naive datetimes without one).
* String comparisons are case-sensitive; ``<=``/``>=`` on strings compare lexicographically; a
  field a row does not have (``cluster_name`` on a login) compares as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from runai_extract.core.times import parse_iso
from runai_extract.fake.problems import bad_request, missing_parameter

SortField = Literal[
    "timestamp",
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
]
SORT_FIELDS: tuple[str, ...] = SortField.__args__  # type: ignore[attr-defined]

# Not entity_id, http_method, cluster_id or request_id: the spec's regex leaves them out.
FILTER_FIELDS = frozenset(
    {
        "timestamp",
        "subject",
        "subject_type",
        "source_ip",
        "action",
        "result",
        "url",
        "entity_type",
        "entity_name",
        "cluster_name",
    }
)
Operator = Literal["==", "!=", "<=", ">=", "=@", "!@", "=^", "=$"]
DATE_OPERATORS = frozenset({"==", "!=", "<=", ">="})
_INTEGER = re.compile(r"-?[0-9]+")
_EXPRESSION = re.compile(r"^([a-z_]+)(==|!=|<=|>=|=@|!@|=\^|=\$)(.*)$", re.DOTALL)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class FilterExpr:
    """One ``<field><op><value>`` term; ``instant_us`` is set for timestamp terms."""

    field: str
    op: Operator
    value: str
    instant_us: int | None = None

    def string_predicate(self) -> Callable[[str], bool]:
        """A test for one field value; the store applies it to each distinct value once."""
        value = self.value
        tests: dict[str, Callable[[str], bool]] = {
            "==": lambda v: v == value,
            "!=": lambda v: v != value,
            "<=": lambda v: v <= value,
            ">=": lambda v: v >= value,
            "=@": lambda v: value in v,
            "!@": lambda v: value not in v,
            "=^": lambda v: v.startswith(value),
            "=$": lambda v: v.endswith(value),
        }
        return tests[self.op]


@dataclass(frozen=True)
class AuditQuery:
    """A validated audit-log request; the window bounds are inclusive, in UTC microseconds."""

    start_us: int
    end_us: int
    offset: int = 0
    limit: int = DEFAULT_PAGE_SIZE
    sort_by: SortField = "timestamp"
    descending: bool = False
    filters: tuple[FilterExpr, ...] = ()

    @property
    def window(self) -> tuple[int, int]:
        return (self.start_us, self.end_us)

    @property
    def ordering_key(self) -> tuple[object, ...]:
        """Everything that decides the full result order, i.e. the query minus paging."""
        return (self.start_us, self.end_us, self.sort_by, self.descending, self.filters)


def parse_audit_query(params: Sequence[tuple[str, str]]) -> AuditQuery:
    """Validate query parameters (already URL-decoded once) or raise a 400 ApiProblem."""
    single = dict(params)  # last one wins for scalar parameters, as most servers do
    for required in ("start", "end"):
        if not single.get(required):
            raise missing_parameter(required)
    start_us = _instant_us(single["start"], "start")
    end_us = _instant_us(single["end"], "end")
    if start_us > end_us:
        raise bad_request("query parameter 'start' must not be after 'end'")
    sort_by = single.get("sortBy", "timestamp")
    if sort_by not in SORT_FIELDS:
        raise bad_request(f"query parameter 'sortBy' must be one of {', '.join(SORT_FIELDS)}")
    sort_order = single.get("sortOrder", "asc")
    if sort_order not in ("asc", "desc"):
        raise bad_request("query parameter 'sortOrder' must be asc or desc")
    raw_filters = [value for key, value in params if key == "filterBy" and value != ""]
    return AuditQuery(
        start_us=start_us,
        end_us=end_us,
        offset=integer_param(single, "offset", 0, minimum=0, maximum=2**31 - 1),
        limit=integer_param(single, "numberOfSamples", DEFAULT_PAGE_SIZE, minimum=0, maximum=MAX_PAGE_SIZE),
        sort_by=cast(SortField, sort_by),
        descending=sort_order == "desc",
        filters=tuple(parse_filter(expr) for raw in raw_filters for expr in raw.split(",")),
    )


def parse_filter(expression: str) -> FilterExpr:
    """Parse one ``<field><op><value>`` term (the comma-split has already happened)."""
    match = _EXPRESSION.match(expression)
    if match is None:
        raise bad_request(f"filterBy expression {expression!r} is not <field><operator><value>")
    field, op, value = match.groups()
    if field not in FILTER_FIELDS:
        raise bad_request(
            f"filterBy field {field!r} is not supported; use one of {', '.join(sorted(FILTER_FIELDS))}"
        )
    if field != "timestamp":
        return FilterExpr(field, cast(Operator, op), value)
    # Dates only work with ==, !=, <= and >= (spec parameter description).
    if op not in DATE_OPERATORS:
        raise bad_request(f"filterBy operator {op!r} cannot be used with a date")
    return FilterExpr(field, cast(Operator, op), value, _instant_us(value, "filterBy timestamp"))


def parse_instant(text: str, name: str) -> datetime:
    """An ISO-8601 date-time as aware UTC; a value without an offset is read as UTC."""
    try:
        return parse_iso(text)[0]
    except ValueError as exc:
        if "out of range" in str(exc):
            raise bad_request(f"{name} {text!r} is out of range") from exc
        # A '+' sent unencoded in a query string arrives as a space: say so, it is a common slip.
        hint = " (was a '+' sent unencoded?)" if " " in text else ""
        raise bad_request(f"{name} {text!r} is not an ISO-8601 date-time{hint}") from exc


def datetime_to_us(moment: datetime) -> int:
    """Whole microseconds since the epoch, exactly (no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _instant_us(text: str, name: str) -> int:
    return datetime_to_us(parse_instant(text, name))


def integer_param(params: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    """A query parameter that must be a plain integer in [minimum, maximum]; absent = ``default``.

    The one reading of integer parameters for every route of the fake (audit log and lists).
    """
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    # A strict pattern: Python's int() would also take " 5", "+5" and "1_000".
    if _INTEGER.fullmatch(raw) is None:
        raise bad_request(f"query parameter '{name}' must be an integer")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise bad_request(f"query parameter '{name}' must be between {minimum} and {maximum}")
    return value
