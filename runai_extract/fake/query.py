"""Answering an :class:`AuditQuery` from the store: which rows, in which order, how many.

Two paths. The common extractor request (a window sorted by timestamp, no filter) is a slice
of the canonical order and costs two binary searches. Anything else (filters, other sort keys)
builds the full ordered result once with numpy, evaluating each filter once per *distinct*
value rather than per row, and keeps it for the following pages of the same query.

Order is total and stable: ties on the sort key are broken by id. ``sortOrder=desc`` reverses
that whole order, tie-break included, so desc is exactly asc read backwards.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runai_extract.fake import catalog as cat
from runai_extract.fake.filters import AuditQuery, FilterExpr
from runai_extract.fake.store import Array, AuditStore
from runai_extract.fake.tables import TenantTables

Positions = npt.NDArray[np.int64]
_CACHE_SIZE = 4  # ordered results kept; each is 8 bytes per matching row


@dataclass(frozen=True)
class Selection:
    """One page: store positions in response order, and the total the query matches."""

    positions: Positions
    total: int


class QueryEngine:
    """Runs queries against one store and its tables; not thread-safe (the simulator locks)."""

    def __init__(self, store: AuditStore, tables: TenantTables) -> None:
        self._store = store
        self._tables = tables
        self._cache: OrderedDict[tuple[object, ...], Positions] = OrderedDict()

    def select(self, query: AuditQuery) -> Selection:
        lo, hi = self._store.window(query.start_us, query.end_us)
        if not query.filters and query.sort_by == "timestamp":
            return _slice_of_range(lo, hi, query)
        ordered = self.ordered(query, lo, hi)
        end = query.offset + query.limit
        return Selection(positions=ordered[query.offset : end], total=len(ordered))

    def ordered(self, query: AuditQuery, lo: int, hi: int) -> Positions:
        """Every matching position in response order (cached per query and store version)."""
        key = (query.ordering_key, self._store.version)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        candidates = np.arange(lo, hi, dtype=np.int64)
        for expr in query.filters:
            candidates = candidates[self._matches(expr, candidates)]
        if query.sort_by != "timestamp":
            candidates = candidates[self._sort_order(query.sort_by, candidates)]
        if query.descending:
            candidates = candidates[::-1]
        self._cache[key] = candidates
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return candidates

    def _matches(self, expr: FilterExpr, rows: Positions) -> npt.NDArray[np.bool_]:
        if expr.instant_us is not None:
            return _compare_instants(self._store.column("ts_ms")[rows] * 1000, expr.op, expr.instant_us)
        codes, vocabulary = self._values(expr.field, rows)
        test = expr.string_predicate()
        accepted = np.fromiter((test(value) for value in vocabulary), dtype=np.bool_, count=len(vocabulary))
        return accepted[codes]

    def _sort_order(self, field: str, rows: Positions) -> Positions:
        """Positions into ``rows`` ordering them by the field's text, then by id."""
        codes, vocabulary = self._values(field, rows)
        # Dense ranks: equal texts under different codes (a login and an account both named
        # after the user) must tie, so that the id decides between them.
        _, ranks = np.unique(np.array(vocabulary, dtype=object), return_inverse=True)
        store = self._store
        return np.lexsort((store.column("id_lo")[rows], store.column("id_hi")[rows], ranks[codes]))

    def _values(self, field: str, rows: Positions) -> tuple[Positions, Sequence[str]]:
        """Per-row codes into a vocabulary of texts; a value the row lacks is the last entry, ""."""
        store, tables = self._store, self._tables
        entities = tables.entities

        def column(name: str) -> Positions:
            return store.column(name)[rows].astype(np.int64)

        if field in ("subject", "subject_type"):
            codes = column("subject")
            if field == "subject":
                return codes, [subject.name for subject in tables.subjects]
            types = np.array([subject.subject_type for subject in tables.subjects], dtype=np.int64)
            return types[codes], cat.SUBJECT_TYPES
        simple: dict[str, tuple[str, Sequence[str]]] = {
            "source_ip": ("ip", tables.ips.values),
            "action": ("action", cat.ACTIONS),
            "http_method": ("method", cat.METHODS),
            "url": ("url", tables.urls.values),
        }
        if field in simple:
            name, vocabulary = simple[field]
            return column(name), vocabulary
        if field == "result":
            return (column("status") >= 400).astype(np.int64), cat.RESULTS
        entity = column("entity")
        if field == "entity_type":
            return np.asarray(entities.type_code, dtype=np.int64)[entity], entities.types.values
        if field == "entity_name":
            return entity, entities.names
        if field == "entity_id":
            return entity, [value or "" for value in entities.ids]
        if field == "cluster_name":
            clusters = np.asarray(entities.cluster, dtype=np.int64)[entity]
            missing = len(entities.names)
            return np.where(clusters < 0, missing, clusters), [*entities.names, ""]
        raise ValueError(f"no such audit field: {field}")


def _slice_of_range(lo: int, hi: int, query: AuditQuery) -> Selection:
    """The fast path: rows lo..hi are already in (timestamp, id) order."""
    total = hi - lo
    first = min(query.offset, total)
    last = min(query.offset + query.limit, total)
    if query.descending:
        positions = np.arange(hi - 1 - first, hi - 1 - last, -1, dtype=np.int64)
    else:
        positions = np.arange(lo + first, lo + last, dtype=np.int64)
    return Selection(positions=positions, total=total)


def _compare_instants(values_us: Array, op: str, instant_us: int) -> npt.NDArray[np.bool_]:
    compare = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge}[op]
    return np.asarray(compare(values_us, instant_us), dtype=np.bool_)
