"""Turning stored rows into wire rows exactly like examples/audit_log_page.json.

Wire quirks kept on purpose (README sections 1.2, 1.6 and 3.1): snake_case keys, ``tenant_id``
as a *string*, timestamps in UTC with milliseconds and a ``Z``, and optional keys (entity_id,
cluster_*, metadata) left out rather than sent as null, as the example does.

Rows are rendered straight to JSON bytes: ids and timestamps are formatted for the whole page
at once with numpy, the few distinct subjects/clusters/metadata maps are serialised once, and
each row is one bytes %-format. That serves a 1000-row page in a few milliseconds without
keeping a pre-serialised copy of every row in memory. Ground truth parses these same bytes, so
a test and the API can never disagree on a row's representation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from runai_extract.fake import catalog as cat
from runai_extract.fake.store import Array, AuditStore
from runai_extract.fake.tables import TenantTables

WireRow = dict[str, Any]

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Where the 32 hex digits go in the 36-character 8-4-4-4-12 text.
_UUID_DIGIT_SLOTS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_ROW = (
    b'{"id":"%s","timestamp":"%sZ","tenant_id":%s,%s,"source_ip":%s,"action":%s,"http_method":%s,'
    b'"url":%s,"entity_type":%s,"entity_name":%s%s,"result":%s,"http_status_code":%d%s,"request_id":"%s"%s}'
)


class _Serialised(dict[int, bytes]):
    """code -> JSON fragment, computed on first use (a dict lookup on the hot path)."""

    def __init__(self, make: Callable[[int], bytes]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, code: int) -> bytes:
        value = self[code] = self._make(code)
        return value


class RowRenderer:
    """Renders rows of one tenant; caches the serialised form of its small vocabularies."""

    def __init__(self, tables: TenantTables, *, metadata: bool = True, optional_keys: bool = True) -> None:
        self._tables = tables
        # AuditLog.metadata exists from 2.20; before 2.23 it and entity_id are required, so a row
        # without them carries {} and "" instead of leaving the key out (releases.py).
        self._with_metadata = metadata
        self._optional_keys = optional_keys
        self._tenant = orjson.dumps(tables.tenant_id)
        self._actions = [orjson.dumps(action) for action in cat.ACTIONS]
        self._methods = [orjson.dumps(method) for method in cat.METHODS]
        self._results = [orjson.dumps(result) for result in cat.RESULTS]
        self._subjects = _Serialised(self._subject)
        self._ips = _Serialised(lambda code: orjson.dumps(tables.ips.values[code]))
        self._entity_types = _Serialised(lambda code: orjson.dumps(tables.entities.types.values[code]))
        self._clusters = _Serialised(self._cluster)
        self._metadata = _Serialised(self._meta)

    def render(self, store: AuditStore, positions: npt.NDArray[np.int64] | Sequence[int]) -> list[bytes]:
        """One JSON object per position, in the order given."""
        rows = np.asarray(positions, dtype=np.int64)
        ids = uuid_bytes(store.column("id_hi")[rows], store.column("id_lo")[rows]).tolist()
        request_ids = uuid_bytes(store.column("req_hi")[rows], store.column("req_lo")[rows]).tolist()
        stamps = store.column("ts_ms")[rows].astype("datetime64[ms]")
        timestamps = np.datetime_as_string(stamps, unit="ms").astype(np.bytes_).tolist()
        names = ("subject", "ip", "action", "method", "url", "entity", "status", "meta")
        codes = zip(
            ids, timestamps, request_ids, *(store.column(n)[rows].tolist() for n in names), strict=True
        )
        entities, urls, dumps = self._tables.entities, self._tables.urls.values, orjson.dumps
        entity_ids, entity_names, entity_types, entity_clusters = (
            entities.ids,
            entities.names,
            entities.type_code,
            entities.cluster,
        )
        tenant, subjects, ips, types = self._tenant, self._subjects, self._ips, self._entity_types
        actions, methods, results, clusters, metadata = (
            self._actions,
            self._methods,
            self._results,
            self._clusters,
            self._metadata,
        )
        out: list[bytes] = []
        for row_id, stamp, request_id, subject, ip, action, method, url, entity, status, meta in codes:
            entity_id = entity_ids[entity]
            out.append(
                _ROW
                % (
                    row_id,
                    stamp,
                    tenant,
                    subjects[subject],
                    ips[ip],
                    actions[action],
                    methods[method],
                    dumps(urls[url]),
                    types[entity_types[entity]],
                    dumps(entity_names[entity]),
                    self._entity_id(entity_id),
                    results[status >= 400],
                    status,
                    clusters[entity_clusters[entity]],
                    request_id,
                    metadata[meta],
                )
            )
        return out

    def _subject(self, code: int) -> bytes:
        subject = self._tables.subjects[code]
        body = {"subject": subject.name, "subject_type": cat.SUBJECT_TYPES[subject.subject_type]}
        return orjson.dumps(body)[1:-1]

    def _cluster(self, cluster: int) -> bytes:
        if cluster < 0:
            return b""
        entities = self._tables.entities
        body = {"cluster_name": entities.names[cluster], "cluster_id": entities.ids[cluster]}
        return b"," + orjson.dumps(body)[1:-1]

    def _entity_id(self, entity_id: str | None) -> bytes:
        if entity_id is None:  # a failed create has no id
            return b"" if self._optional_keys else b',"entity_id":""'
        return b',"entity_id":' + orjson.dumps(entity_id)

    def _meta(self, code: int) -> bytes:
        if not self._with_metadata:
            return b""
        if code < 0:
            return b"" if self._optional_keys else b',"metadata":{}'
        return b',"metadata":' + orjson.dumps(self._tables.metadata.maps[code])


def json_array(rows: list[bytes]) -> bytes:
    return b"[" + b",".join(rows) + b"]"


def parse_rows(rows: list[bytes]) -> list[WireRow]:
    parsed: list[WireRow] = orjson.loads(json_array(rows))
    return parsed


def uuid_bytes(hi: Array, lo: Array) -> npt.NDArray[np.bytes_]:
    """The 8-4-4-4-12 lowercase text of 128-bit values given as uint64 halves, vectorised."""
    count = len(hi)
    big_endian = np.empty((count, 2), dtype=">u8")
    big_endian[:, 0], big_endian[:, 1] = hi, lo
    octets = big_endian.view(np.uint8).reshape(count, 16)
    digits = _HEX_DIGITS[np.stack([octets >> 4, octets & 0xF], axis=-1).reshape(count, 32)]
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_DIGIT_SLOTS] = digits
    return text.view("S36").reshape(count)


def uuid_texts(hi: Array, lo: Array) -> list[str]:
    return [value.decode("ascii") for value in uuid_bytes(hi, lo).tolist()]
