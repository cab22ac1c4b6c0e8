"""Keeping the lake fast as it ages: compact closed days, checkpoint the logs, vacuum retired files.

Why it is part of the product: every sync commits a few small files, so without maintenance a
year of 15-minute syncs leaves ~35,000 files per table and every query, view build and status
pays for all of them. Maintenance keeps each table at one file per closed day (the audit log,
partitioned by day) or a handful of files (the small tables), and every table's log at one
checkpoint plus the commits since.

Each compaction is a Delta commit that changes no data (``dataChange=false``): readers of older
snapshots keep reading, concurrent syncs are not in conflict with it, and the views never see a
row twice or miss one. Its manifest names the files it retired and the one it wrote, with the
id-set digest of both, read before anything is vacuumed; ``verify`` proves from those that the
compaction lost nothing. Vacuum then deletes files retired longer ago than the retention
(default 7 days), so time travel (``query --as-of``) works within that window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from runai_extract.core.errors import ConfigError
from runai_extract.ledger.manifests import (
    Manifested,
    append_manifest,
    file_ids,
    manifest_pending,
    recover_audit_commits,
    stream_of,
)
from transforms.catalog import ALL_TABLES, MANIFESTS_TABLE
from transforms.digest import id_set_digest
from transforms.storage import Lake
from transforms.tables import Commit, Tables, TableSpec

log = logging.getLogger(__name__)

DEFAULT_RETENTION = timedelta(days=7)
# A reader holding a snapshot for longer than this is not expected; vacuum never goes below it.
MIN_RETENTION = timedelta(hours=1)


@dataclass
class TableMaintenance:
    """What maintenance did to one table."""

    table: str
    files_before: int = 0
    files_after: int = 0
    compactions: int = 0
    vacuumed: int = 0
    # Every live file has the table's columns, so views read it without a footer per file.
    uniform: bool = False


@dataclass
class MaintenanceReport:
    tables: list[TableMaintenance] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "tables": {t.table: vars(t) for t in self.tables},
            "files_before": sum(t.files_before for t in self.tables),
            "files_after": sum(t.files_after for t in self.tables),
            "vacuumed": sum(t.vacuumed for t in self.tables),
        }


def maintain(
    lake: Lake,
    *,
    now: datetime | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    run_id: str = "maintenance",
) -> MaintenanceReport:
    """Compact every table's closed days, checkpoint its log and vacuum what retired long ago."""
    if retention < MIN_RETENTION:
        raise ConfigError(
            f"vacuum retention {retention} is below {MIN_RETENTION}: a running reader could lose its files"
        )
    today = (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()
    tables = Tables(lake)
    report = MaintenanceReport()
    # What runs killed before their manifests left: audit commits first (before a compaction
    # retires their files), then the records of those runs.
    manifest_pending(lake, run_id, pointers=recover_audit_commits(lake, run_id))
    for spec in ALL_TABLES:
        if not tables.exists(spec):
            continue
        done = TableMaintenance(spec.name, files_before=len(tables.live_files(spec)))
        for commit in _compact(tables, spec, today):
            done.compactions += 1
            _manifest(lake, spec, commit, run_id)
        done.uniform = tables.stamp_uniform(spec)
        # the log is kept as long as retired files: time travel reaches as far as vacuum allows
        hours = int(retention / timedelta(hours=1))
        tables.apply_properties(spec, {"delta.logRetentionDuration": f"interval {hours} hours"})
        tables.checkpoint(spec)
        done.vacuumed = len(tables.vacuum(spec, int(retention / timedelta(hours=1))))
        done.files_after = len(tables.live_files(spec))
        report.tables.append(done)
        log.info("maintenance %s: %s", spec.name, vars(done))
    return report


def _compact(tables: Tables, spec: TableSpec, today: str) -> list[Commit]:
    """Compact each closed partition that holds more than one file (today's keeps taking commits)."""
    if not spec.partition_by:
        if len(tables.live_files(spec)) < 2:
            return []
        commit = _compact_one(tables, spec, None)
        return [commit] if commit else []
    key = spec.partition_by[0]
    counts: dict[str, int] = {}
    for f in tables.live_files(spec):
        value = f.path.split("/", 1)[0].partition("=")[2]
        counts[value] = counts.get(value, 0) + 1
    commits = []
    for value, files in sorted(counts.items()):
        if files > 1 and value < today:
            commit = _compact_one(tables, spec, (key, value))
            if commit:
                commits.append(commit)
    return commits


def _compact_one(tables: Tables, spec: TableSpec, partition: tuple[str, str] | None) -> Commit | None:
    return tables.compact(spec, partition=partition)


def _manifest(lake: Lake, spec: TableSpec, commit: Commit, run_id: str) -> None:
    """A compaction's manifest: the files it retired and wrote, and proof both hold the same ids."""
    if spec == MANIFESTS_TABLE:
        return  # the chain itself: its rows are checked by their hashes, not by a manifest
    retired = [f"{spec.name}/{rem.path}" for rem in commit.removes]
    record = Manifested(
        stream=stream_of(spec),
        status="compaction",
        window_start=commit.timestamp,
        window_end=commit.timestamp,
        commits=[commit],
        id_column=spec.id_column,
        removed_id_digest=id_set_digest(file_ids(lake, retired, spec.id_column)),
    )
    append_manifest(lake, record, run_id)
