"""The two audit-log APIs a tenant may have, behind one reader: modern and legacy (2.18/2.19).

Which one a run reads is probed once per run (runai_extract/api/features.py); the modern
``/api/v1/audit/log`` wins whenever the tenant has it. The legacy ``/v1/k8s/audit`` sends no
``total``, so its check is different: :func:`legacy_ids_moved` re-pages the window and compares
id sets (slices.py calls it where the modern log compares totals). When a tenant upgrades
from 2.18, :func:`other_flavour_keys` and :func:`drop_seam_duplicates` keep the events at the
seam from being stored twice under two kinds of id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from runai_extract.api.endpoints import AUDIT_LOG, LEGACY_AUDIT_LOG, Endpoint
from runai_extract.api.features import (
    ApiFeatures,
    AuditFlavour,
    ProbeClient,
    api_features,
    deprecation_notices,
)
from runai_extract.api.pagination import JsonGetter, Page, audit_pages, legacy_audit_pages
from runai_extract.core.errors import StorageError
from runai_extract.core.times import Window
from transforms.audit import AuditBatch, normalise_audit
from transforms.audit_fields import parse_timestamp
from transforms.audit_legacy import legacy_to_wire, normalise_legacy_audit
from transforms.schemas import AUDIT_EVENTS
from transforms.storage import Lake

Pager = Callable[[JsonGetter, datetime, datetime, int], Iterator[Page]]
Normaliser = Callable[..., AuditBatch]


@dataclass(frozen=True)
class AuditReader:
    """How one run pages and normalises the audit log of its tenant."""

    features: ApiFeatures
    endpoint: Endpoint
    pages: Pager
    normalise: Normaliser

    @property
    def has_total(self) -> bool:
        return self.endpoint.has_total

    def notices(self, client: ProbeClient) -> list[str]:
        """Deprecation notices for the run record: headers seen, or a known deprecated path in use."""
        return deprecation_notices(client, {self.endpoint.path})


MODERN = (AUDIT_LOG, audit_pages, normalise_audit)
LEGACY = (LEGACY_AUDIT_LOG, legacy_audit_pages, normalise_legacy_audit)


def audit_reader(client: ProbeClient, now: datetime | None = None) -> AuditReader:
    """The reader for this client's tenant (probed on first use, then remembered)."""
    features = api_features(client, now or datetime.now(UTC))
    endpoint, pages, normalise = MODERN if features.audit_flavour == "audit_log" else LEGACY
    return AuditReader(features, endpoint, pages, normalise)


def legacy_ids_moved(
    client: JsonGetter, reader: AuditReader, piece: Window, page_size: int, first_pass: set[str]
) -> bool:
    """The legacy log's stand-in for the total check: page the window again, compare id sets.

    With no ``total`` to compare, a second read is the only evidence that the first one saw a
    settled window (rows inserted while paging shift a newest-first list's offsets, so a row can
    be skipped). True when the ids inside the slice differ between the two reads.
    """
    second: set[str] = set()
    for page in reader.pages(client, piece.start, piece.end, page_size):
        second.update(_ids_inside(page.items, piece))
    return second != first_pass


def _ids_inside(items: list[Any], piece: Window) -> set[str]:
    ids = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        row = legacy_to_wire(item)
        stamp, event_id = row.get("timestamp"), row.get("id")
        if not isinstance(stamp, str) or not isinstance(event_id, str):
            continue
        try:
            moment, _ = parse_timestamp(stamp)
        except ValueError:
            continue
        if piece.start <= moment < piece.end:
            ids.add(event_id)
    return ids


# What both audit APIs say about an event, and nothing either one renames or lacks.
SEAM_KEY = ("event_time", "subject", "action", "entity_type", "entity_name", "result")


def other_flavour_keys(lake: Lake, rel_paths: list[str], flavour: AuditFlavour) -> Counter[tuple[Any, ...]]:
    """Content keys of the stored rows the *other* audit API wrote, with their multiplicity.

    When a 2.18 tenant upgrades, the ledger moves from the legacy log to the modern one and the
    overlap re-reads events it stored under legacy integer ids, now with UUIDs: the ids cannot
    match, so the seam is deduplicated by content instead (:data:`SEAM_KEY`). Rows are matched
    one for one (a multiset), so two genuinely identical events in one millisecond both stay.
    Row-group statistics skip the files of a single flavour, so the usual case reads next to nothing.
    """
    if not rel_paths:
        return Counter()
    import pyarrow.dataset as ds  # lazily: it drags in pandas (~0.5 s) for every CLI start

    schema = pa.schema([AUDIT_EVENTS.field(name) for name in (*SEAM_KEY, "api_flavour")])
    column = ds.field("api_flavour")
    other = (
        (column == "k8s_audit") if flavour == "audit_log" else (column.is_null() | (column != "k8s_audit"))
    )
    paths = [lake.full_path(rel) for rel in rel_paths]
    try:
        dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=lake.fs)
        table = dataset.to_table(columns=list(SEAM_KEY), filter=other)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(
            f"cannot read audit rows from {len(paths)} file(s) under {lake.uri}: {exc}"
        ) from exc
    return Counter(zip(*(table.column(name).to_pylist() for name in SEAM_KEY), strict=True))


def drop_seam_duplicates(table: pa.Table, keys: Counter[tuple[Any, ...]]) -> pa.Table:
    """``table`` without the rows whose content key the other API already stored (used up one by one)."""
    if not keys or table.num_rows == 0:
        return table
    keep = []
    for key in zip(*(table.column(name).to_pylist() for name in SEAM_KEY), strict=True):
        if keys.get(key, 0) > 0:
            keys[key] -= 1
            keep.append(False)
        else:
            keep.append(True)
    return table.filter(pa.array(keep, type=pa.bool_()))
