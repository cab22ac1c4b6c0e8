"""The two audit-log APIs a tenant may have, behind one reader: modern and legacy (2.18/2.19).

Which one a run reads is probed once per run (runai_extract/api/features.py); the modern
``/api/v1/audit/log`` wins whenever the tenant has it. The legacy ``/v1/k8s/audit`` sends no
``total``, so its check is different: :func:`legacy_ids_moved` re-pages the window and compares
id sets (slices.py calls it where the modern log compares totals).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runai_extract.api.endpoints import AUDIT_LOG, LEGACY_AUDIT_LOG, Endpoint
from runai_extract.api.features import ApiFeatures, ProbeClient, api_features, deprecation_notices
from runai_extract.api.pagination import JsonGetter, Page, audit_pages, legacy_audit_pages
from runai_extract.core.times import Window
from transforms.audit import AuditBatch, normalise_audit
from transforms.audit_fields import parse_timestamp
from transforms.audit_legacy import legacy_to_wire, normalise_legacy_audit

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
