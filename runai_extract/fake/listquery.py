"""``offset``/``limit``/``sortBy``/``sortOrder``/``filterBy``/``search`` for the offset-paged lists.

The workloads and org-unit lists share the filterBy grammar of the audit log (README 1.5, parsed
with :class:`~runai_extract.fake.filters.FilterExpr`) but name their fields in camelCase and
have typed fields, so comparisons depend on the field's kind:

* ``date``: only ``==, !=, <=, >=`` (400 otherwise), compared as instants (a value without an
  offset is UTC);
* ``number``: only ``==, !=, <=, >=`` (400 otherwise; the stricter reading), compared numerically;
* ``string``: all eight operators, case-sensitive.

A field the item does not have (null) matches only ``!=`` and ``!@``. Fields outside the
endpoint's list (``updatedAt`` on workloads, say) are a 400, for ``sortBy`` and ``filterBy``
alike. Sorting is stable with ties broken by ``id``; nulls sort last ascending (first
descending). ``search`` is a case-insensitive substring match on ``name``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, cast

from runai_extract.fake.filters import (
    DATE_OPERATORS,
    FilterExpr,
    Operator,
    datetime_to_us,
    integer_param,
    parse_instant,
)
from runai_extract.fake.problems import bad_request

FieldKind = Literal["string", "number", "date"]
Value = str | float | int | None  # dates are UTC microseconds
_EXPRESSION = re.compile(r"^([A-Za-z0-9_]+)(==|!=|<=|>=|=@|!@|=\^|=\$)(.*)$", re.DOTALL)


T = TypeVar("T")


class Listed(Protocol):
    """An item of a list: its id and its comparable field values."""

    @property
    def id(self) -> str: ...

    @property
    def keys(self) -> Mapping[str, Value]: ...


L = TypeVar("L", bound=Listed)


@dataclass(frozen=True)
class Term:
    field: str
    kind: FieldKind
    test: Callable[[Value], bool]


@dataclass(frozen=True)
class ListQuery:
    offset: int = 0
    limit: int = 50
    sort_by: str | None = None
    descending: bool = False
    terms: tuple[Term, ...] = ()
    search: str | None = None


def parse_list_query(
    params: Sequence[tuple[str, str]],
    fields: Mapping[str, FieldKind],
    *,
    default_limit: int = 50,
    max_limit: int = 500,
    default_order: str = "asc",
    max_terms: int | None = None,
    searchable: bool = True,
) -> ListQuery:
    """Validate the paging/sorting/filtering parameters of one list request (400 otherwise).

    ``max_terms`` caps the filterBy expressions (workloads from 2.25: 10); a release without
    ``search`` ignores the parameter, as a server ignores any parameter it does not know.
    """
    single = dict(params)
    sort_by = single.get("sortBy") or None
    if sort_by is not None and sort_by not in fields:
        raise bad_request(f"query parameter 'sortBy' must be one of {', '.join(fields)}")
    order = single.get("sortOrder") or default_order
    if order not in ("asc", "desc"):
        raise bad_request("query parameter 'sortOrder' must be asc or desc")
    raw = [value for key, value in params if key == "filterBy" and value != ""]
    expressions = [expr for value in raw for expr in value.split(",")]
    if max_terms is not None and len(expressions) > max_terms:
        raise bad_request(f"query parameter 'filterBy' accepts at most {max_terms} expressions")
    terms = tuple(_term(expr, fields) for expr in expressions)
    return ListQuery(
        offset=integer_param(single, "offset", 0, minimum=0, maximum=2**31 - 1),
        limit=integer_param(single, "limit", default_limit, minimum=1, maximum=max_limit),
        sort_by=sort_by,
        descending=order == "desc",
        terms=terms,
        search=(single.get("search") or None) if searchable else None,
    )


def paging(
    params: Sequence[tuple[str, str]], *, default_limit: int = 50, max_limit: int = 500
) -> tuple[int, int]:
    """(offset, limit) for the lists that only page."""
    single = dict(params)
    offset = integer_param(single, "offset", 0, minimum=0, maximum=2**31 - 1)
    return offset, integer_param(single, "limit", default_limit, minimum=1, maximum=max_limit)


def select(items: Sequence[L], query: ListQuery, default_sort: str | None = None) -> list[L]:
    """The items matching every term and the search, in the requested order."""
    needle = query.search.lower() if query.search else None
    chosen = [
        item
        for item in items
        if all(term.test(item.keys.get(term.field)) for term in query.terms)
        and (needle is None or needle in str(item.keys.get("name") or "").lower())
    ]
    chosen.sort(key=lambda item: item.id)
    sort_by = query.sort_by or default_sort
    if sort_by is not None:
        chosen.sort(key=lambda item: _sort_key(item.keys.get(sort_by)), reverse=query.descending)
    return chosen


def page_of(items: Sequence[T], offset: int, limit: int) -> tuple[list[T], int | None]:
    """One page and the ``next`` offset, which is None once nothing remains after it."""
    page = list(items[offset : offset + limit])
    following = offset + len(page)
    return page, (following if following < len(items) else None)


def boolean_param(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name, "")
    if raw not in ("", "true", "false"):
        raise bad_request(f"query parameter '{name}' must be true or false")
    return raw == "true"


def _term(expression: str, fields: Mapping[str, FieldKind]) -> Term:
    match = _EXPRESSION.match(expression)
    if match is None:
        raise bad_request(f"filterBy expression {expression!r} is not <field><operator><value>")
    field, op, text = match.groups()
    kind = fields.get(field)
    if kind is None:
        raise bad_request(f"filterBy field {field!r} is not supported; use one of {', '.join(fields)}")
    if kind != "string" and op not in DATE_OPERATORS:
        raise bad_request(f"filterBy operator {op!r} cannot be used with {kind} field {field!r}")
    if kind == "string":
        predicate = FilterExpr(field, cast(Operator, op), text).string_predicate()
        return Term(field, kind, lambda v: _null_match(op) if v is None else predicate(str(v)))
    target: float | int
    if kind == "date":
        target = datetime_to_us(parse_instant(text, f"filterBy {field}"))
    else:
        try:
            target = float(text)
        except ValueError as exc:
            raise bad_request(f"filterBy {field} value {text!r} is not a number") from exc
    compare = _COMPARE[op]
    return Term(field, kind, lambda v: _null_match(op) if v is None else compare(cast(float, v), target))


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _null_match(op: str) -> bool:
    return op in ("!=", "!@")


def _sort_key(value: Value) -> tuple[int, str | float]:
    return (1, 0.0) if value is None else (0, value)
