"""Watermarks: how far each stream is durably ingested, committed in the lake's own table log.

Why in the table log and not in a file, Airflow Variables or a worker's disk: the watermark must
move with the data it describes. The audit watermark is an application transaction (a Delta
``txn`` action, app id -> microseconds since the epoch) inside the very commit that adds the
window's rows, so a crash leaves either both or neither. The usage streams (workloads, org units)
write several tables per run; their watermark is committed after all of them, as a transaction
of the ``ingest_runs`` table, so a crash before it leaves the old watermark and the rerun
re-reads (storing only what changed). Nothing here is machine-local: any worker that can reach
the lake reads the same watermark, and two writers are ordered by the log (transforms/tables.py).

``_state/<stream>.json`` is a readable mirror written after each commit, for the ``watermarks``
view and for people; it is never read back as the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from runai_extract.core.errors import ConcurrentCommitError, StateError
from runai_extract.core.times import format_utc, parse_iso
from transforms.catalog import AUDIT_EVENTS_TABLE, INGEST_RUNS_TABLE
from transforms.schemas import STATE_DIR
from transforms.storage import Lake
from transforms.tables import Tables, TableSpec

_STREAM_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_COMMIT_ATTEMPTS = 8
# Where each stream's watermark is committed: with its data (audit) or after it (usage runs).
WATERMARK_TABLES: dict[str, TableSpec] = {"audit": AUDIT_EVENTS_TABLE}


@dataclass(frozen=True)
class StreamState:
    """What is durably ingested for one stream: everything before ``watermark``."""

    stream: str
    watermark: datetime
    updated_at: datetime | None
    run_id: str


def check_stream(stream: str) -> str:
    if not stream or not set(stream) <= _STREAM_CHARS:
        raise StateError(f"invalid stream name {stream!r}")
    return stream


def watermark_app(stream: str) -> str:
    """The app id under which ``stream``'s watermark is committed."""
    return f"runai-ledger/{check_stream(stream)}/watermark"


def commit_app(stream: str) -> str:
    """The app id every data commit of ``stream`` sets: two writers of one stream conflict on it."""
    return f"runai-ledger/{check_stream(stream)}/commit"


def watermark_table(stream: str) -> TableSpec:
    return WATERMARK_TABLES.get(check_stream(stream), INGEST_RUNS_TABLE)


def to_micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


class StateStore:
    """Reads stream watermarks from the table log and commits the usage streams' watermarks."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.tables = Tables(lake)

    def _mirror_path(self, stream: str) -> str:
        return f"{STATE_DIR}/{check_stream(stream)}.json"

    def read(self, stream: str) -> StreamState | None:
        micros = self.tables.app_version(watermark_table(stream), watermark_app(stream))
        if micros is None:
            return None
        watermark = from_micros(micros)
        mirror = self._read_mirror(stream)
        if mirror is not None and mirror.watermark == watermark:
            return mirror
        return StreamState(stream, watermark, None, "")

    def commit(self, stream: str, watermark: datetime, run_id: str) -> StreamState:
        """Advance a usage stream's watermark in its own commit; never moves it backwards.

        Two runs committing at once set the same app transaction, so the later one conflicts,
        re-reads, and only commits if its watermark is still ahead.
        """
        spec = watermark_table(stream)
        for _ in range(MAX_COMMIT_ATTEMPTS):
            snapshot = self.tables.ensure(spec)
            current = self.tables.app_version(spec, watermark_app(stream), snapshot=snapshot)
            if current is not None and to_micros(watermark) <= current:
                state = self.read(stream)
                if state is not None:
                    return state
            try:
                self.tables.commit(
                    spec,
                    [],
                    snapshot=snapshot,
                    app_txns={watermark_app(stream): to_micros(watermark)},
                    metadata={"run_id": run_id, "stream": stream, "watermark": format_utc(watermark)},
                )
            except ConcurrentCommitError:
                continue
            return self.mirror(stream, watermark, run_id)
        raise ConcurrentCommitError(f"the {stream} watermark kept moving under this run; rerun it")

    def mirror(self, stream: str, watermark: datetime, run_id: str) -> StreamState:
        """Write the readable mirror of a watermark that was just committed."""
        state = StreamState(stream, watermark.astimezone(UTC), datetime.now(UTC), run_id)
        doc = {
            "stream": stream,
            "watermark": format_utc(state.watermark),
            "updated_at": format_utc(state.updated_at or state.watermark),
            "run_id": run_id,
        }
        self.lake.write_bytes(self._mirror_path(stream), orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        return state

    def _read_mirror(self, stream: str) -> StreamState | None:
        raw = self.lake.read_bytes(self._mirror_path(stream))
        if raw is None:
            return None
        try:
            doc = orjson.loads(raw)
            return StreamState(
                stream=doc["stream"],
                watermark=_parse_utc(doc["watermark"]),
                updated_at=_parse_utc(doc["updated_at"]),
                run_id=doc["run_id"],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None  # only a mirror: the table log is the truth


def _parse_utc(text: str) -> datetime:
    dt, naive = parse_iso(text)
    if naive:
        raise ValueError(f"timestamp without zone: {text}")
    return dt
