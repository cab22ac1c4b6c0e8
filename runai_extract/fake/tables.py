"""Dimension tables the audit rows point into: subjects, entities, URLs, IPs, metadata maps.

A million audit rows repeat a few thousand distinct strings, so rows hold small integer codes
and each distinct value is stored once here. That keeps the row store compact (tens of bytes a
row) and lets filters and sorts run once per distinct value instead of once per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson


class Vocabulary:
    """Distinct strings, each with a stable integer code in first-seen order."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        found = self._codes.get(value)
        if found is None:
            found = self._codes[value] = len(self.values)
            self.values.append(value)
        return found

    def __len__(self) -> int:
        return len(self.values)


class MetadataVocabulary:
    """Distinct metadata maps (at most 10 string properties each, per the spec)."""

    def __init__(self) -> None:
        self.maps: list[dict[str, str]] = []
        self._codes: dict[bytes, int] = {}

    def code(self, metadata: dict[str, str]) -> int:
        key = orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS)
        found = self._codes.get(key)
        if found is None:
            found = self._codes[key] = len(self.maps)
            self.maps.append(metadata)
        return found


@dataclass
class Subject:
    """A user or service account that acts on the tenant."""

    name: str
    subject_type: int  # catalog.USER or catalog.APP
    ips: tuple[int, ...]  # codes into TenantTables.ips
    login_entity: int = -1  # entity of its sign-in/sign-out rows
    account_entity: int = -1  # entity of its reset-password rows


@dataclass
class EntityTable:
    """Every entity ever mentioned: type, name, id (None for a failed create) and owning cluster.

    ``cluster`` points at the cluster's own entity, so cluster_name/cluster_id come from the
    same table and a cluster row is scoped to itself.
    """

    types: Vocabulary = field(default_factory=Vocabulary)
    type_code: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)
    cluster: list[int] = field(default_factory=list)

    def add(self, entity_type: str, name: str, entity_id: str | None, cluster: int = -1) -> int:
        self.type_code.append(self.types.code(entity_type))
        self.names.append(name)
        self.ids.append(entity_id)
        self.cluster.append(cluster)
        return len(self.names) - 1

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class TenantTables:
    """All dimension tables of one tenant; rows are meaningless without them."""

    tenant_id: str
    subjects: list[Subject] = field(default_factory=list)
    ips: Vocabulary = field(default_factory=Vocabulary)
    urls: Vocabulary = field(default_factory=Vocabulary)
    metadata: MetadataVocabulary = field(default_factory=MetadataVocabulary)
    entities: EntityTable = field(default_factory=EntityTable)
