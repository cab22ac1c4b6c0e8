"""What a run did: per-slice records, the run summary, and how both are reported.

One place for the accounting that sync, backfill and recheck share: SliceResult is the row
ingest_runs stores for each slice, SyncSummary the small JSON-able account the CLI prints and
Airflow puts in XCom, and Progress the seam a progress display plugs into.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from runai_extract import __version__
from runai_extract.core.errors import StorageError
from runai_extract.core.times import Window, format_utc
from transforms.catalog import INGEST_RUNS_TABLE
from transforms.schemas import SCHEMA_VERSION
from transforms.storage import Lake
from transforms.tables import Tables
from transforms.writer import ingest_run_table

STREAM = "audit"


class Progress(Protocol):
    """What a progress display hears about; the CLI draws it with rich, Airflow logs it."""

    def plan(self, slices: list[Window]) -> None: ...
    def rows(self, n: int) -> None: ...
    def slice_done(self, result: SliceResult) -> None: ...


class SilentProgress:
    """The progress sink for runs nobody watches (Airflow, pipes, tests)."""

    def plan(self, slices: list[Window]) -> None:
        return None

    def rows(self, n: int) -> None:
        return None

    def slice_done(self, result: SliceResult) -> None:
        return None


@dataclass
class SliceResult:
    """Everything ingest_runs records about one slice of one run."""

    window_start: datetime
    window_end: datetime
    status: str = "running"
    pages: int = 0
    requests: int = 0
    rows_received: int = 0
    rows_written: int = 0  # rows in the file this slice wrote (a rerun rewrites its own file)
    rows_new: int = 0  # of those, rows that were not stored before this run
    duplicates_dropped: int = 0
    out_of_window: int = 0
    quarantined: int = 0
    retries: int = 0
    throttled_429: int = 0
    token_refreshes: int = 0
    api_total: int | None = None
    total_mismatch: bool = False
    repaged: bool = False
    drift_fields: Counter[str] = field(default_factory=Counter)
    api_query: str | None = None  # the request without its page offset: what "api_total" counted
    id_set_digest: str | None = None  # transforms.digest.id_set_digest of the ids in the file
    files: list[str] = field(default_factory=list)
    error: str | None = None
    api_features: str | None = None  # what the tenant's API offered (api/features.py)
    deprecations: list[str] = field(default_factory=list)  # deprecated endpoints in use, and by when


@dataclass
class SyncSummary:
    """A small, JSON-able account of a run: what the CLI prints and what Airflow puts in XCom."""

    run_id: str
    stream: str
    mode: str
    window_start: datetime | None
    window_end: datetime | None
    watermark_before: datetime | None
    watermark_after: datetime | None
    slices: list[SliceResult] = field(default_factory=list)
    seconds: float = 0.0
    alerts: list[str] = field(default_factory=list)  # e.g. the retention-lag alert (retention.py)

    @property
    def rows_new(self) -> int:
        return sum(s.rows_new for s in self.slices)

    @property
    def rows_received(self) -> int:
        return sum(s.rows_received for s in self.slices)

    def totals(self) -> dict[str, int]:
        keys = (
            "pages",
            "requests",
            "rows_received",
            "rows_written",
            "rows_new",
            "duplicates_dropped",
            "out_of_window",
            "quarantined",
            "retries",
            "throttled_429",
            "token_refreshes",
        )
        return {k: sum(int(getattr(s, k)) for s in self.slices) for k in keys}

    def drift(self) -> Counter[str]:
        """Unknown fields and enum values seen across the run, with counts."""
        total: Counter[str] = Counter()
        for piece in self.slices:
            total.update(piece.drift_fields)
        return total

    def deprecations(self) -> list[str]:
        """Deprecated endpoints the run used, each once, with the date or release to upgrade by."""
        return sorted({notice for piece in self.slices for notice in piece.deprecations})

    def to_dict(self) -> dict[str, Any]:
        def ts(value: datetime | None) -> str | None:
            return format_utc(value) if value else None

        return {
            "run_id": self.run_id,
            "stream": self.stream,
            "mode": self.mode,
            "window_start": ts(self.window_start),
            "window_end": ts(self.window_end),
            "watermark_before": ts(self.watermark_before),
            "watermark_after": ts(self.watermark_after),
            "slices": len(self.slices),
            "mismatched_slices": sum(1 for s in self.slices if s.total_mismatch),
            "drift": dict(sorted(self.drift().items())),
            "seconds": round(self.seconds, 3),
            "alerts": list(self.alerts),
            "api_features": sorted({s.api_features for s in self.slices if s.api_features}),
            "deprecations": self.deprecations(),
            **self.totals(),
        }


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


_STAT_KEYS = {
    "requests": "requests",
    "retries": "retries",
    "throttled_429": "throttled_429",
    "token_refreshes": "token_requests",
}


def add_request_stats(result: SliceResult, before: dict[str, int], after: dict[str, int]) -> None:
    """Charge a slice with the requests, retries and token refreshes made while it ran."""
    for ours, theirs in _STAT_KEYS.items():
        setattr(result, ours, getattr(result, ours) + after.get(theirs, 0) - before.get(theirs, 0))


def record_run(
    lake: Lake,
    run_id: str,
    mode: str,
    result: SliceResult,
    started_at: datetime,
    *,
    stream: str = STREAM,
    finished_at: datetime | None = None,
) -> None:
    """Write the slice's ingest_runs row: what the API said, what we stored, what it cost.

    ``finished_at``: when the row is written for a run that died after its commit (the commit's time).
    """
    finished = finished_at or datetime.now(UTC)
    row = asdict(result)
    row.update(
        run_id=run_id,
        stream=stream,
        mode=mode,
        drift_fields=dict(result.drift_fields),
        started_at=started_at,
        finished_at=finished,
        duration_s=(finished - started_at).total_seconds(),
        schema_version=SCHEMA_VERSION,
        code_version=__version__,
    )
    Tables(lake).append(
        INGEST_RUNS_TABLE, ingest_run_table([row]), metadata={"stream": stream, "run_id": run_id}
    )


@dataclass(frozen=True)
class PastRun:
    """One earlier run of a stream as its run records tell it (a run of several windows is one)."""

    run_id: str
    mode: str
    status: str  # the worst status of its windows: failed > partial > mismatch > committed
    finished_at: datetime
    error: str | None


# Worst first: a run with one failed window is a failed run.
_STATUS_RANK = ("failed", "partial", "mismatch")


def recent_runs(lake: Lake, stream: str, n: int) -> list[PastRun]:
    """The last ``n`` runs of ``stream``, newest first."""
    return recent_runs_by_stream(lake, (stream,), n)[stream]


def recent_runs_by_stream(lake: Lake, streams: Sequence[str], n: int) -> dict[str, list[PastRun]]:
    """The last ``n`` runs of each stream, newest first: one read of the run records for all.

    The one place that reads past runs back: the ingest_runs table's current snapshot (compacted
    daily, so this reads a handful of files however old the ledger is).
    """
    import duckdb  # imported here: a sync that never looks back does not pay for it

    from warehouse.connection import lake_connection

    found: dict[str, list[PastRun]] = {stream: [] for stream in streams}
    files = Tables(lake).live_locations(INGEST_RUNS_TABLE)
    if not files or n < 1 or not streams:
        return found
    con = lake_connection(lake)
    try:
        rows = con.execute(
            "SELECT stream, run_id, any_value(mode), list(DISTINCT status), max(finished_at) AS finished, "
            "string_agg(DISTINCT error, '; ') FROM read_parquet(?, union_by_name = true) "
            "WHERE list_contains(?, stream) GROUP BY stream, run_id "
            "QUALIFY row_number() OVER (PARTITION BY stream ORDER BY finished DESC) <= ? "
            "ORDER BY stream, finished DESC",
            [files, list(streams), n],
        ).fetchall()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot read the run records of {', '.join(streams)}: {first}; run `runai-ledger verify`"
        ) from exc
    finally:
        con.close()
    for stream, run_id, mode, statuses, finished, error in rows:
        found[str(stream)].append(
            PastRun(str(run_id), str(mode), _worst(statuses), finished.astimezone(UTC), error)
        )
    return found


def _worst(statuses: Sequence[str]) -> str:
    for status in _STATUS_RANK:
        if status in statuses:
            return status
    return str(statuses[0]) if statuses else "unknown"
