"""Watermarks and the one-writer lock, kept beside the data in the lake.

Why in the lake and not in Airflow Variables or on a worker's disk: the watermark must move
with the data it describes. It lives at ``_state/<stream>.json``, is written atomically, and
only after the data files and the run record of a window are durable. A crash therefore leaves
either the old watermark (the window is redone; deterministic file names and dedupe by id make
that harmless) or the new one with its data in place, never a watermark ahead of its data.

The lock makes a second concurrent sync of the same stream fail fast with a message naming the
holder (or wait for it, if asked). On a local lake it is an ``flock`` on ``_state/<stream>.lock``,
which the kernel releases when the holder dies, so a SIGKILLed sync never leaves a stale lock.
On object stores there is no atomic create-if-absent in pyarrow.fs; there a lease file with an
expiry is used and Airflow's max_active_runs=1 plus the API pool are the primary guard.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from runai_extract.core.errors import LockHeldError, StateError, StorageError
from runai_extract.core.times import format_utc
from transforms.schemas import STATE_DIR
from transforms.storage import Lake

_STREAM_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
_LEASE_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class StreamState:
    """What is durably ingested for one stream: everything before ``watermark``."""

    stream: str
    watermark: datetime
    updated_at: datetime
    run_id: str


def _check_stream(stream: str) -> str:
    if not stream or not set(stream) <= _STREAM_CHARS:
        raise StateError(f"invalid stream name {stream!r}")
    return stream


class StateStore:
    """Reads and commits stream watermarks in ``_state/`` of the lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def _path(self, stream: str) -> str:
        return f"{STATE_DIR}/{_check_stream(stream)}.json"

    def read(self, stream: str) -> StreamState | None:
        raw = self.lake.read_bytes(self._path(stream))
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
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"state file {self.lake.location(self._path(stream))} is unreadable ({exc}); "
                "restore it or delete it to start again from the initial lookback"
            ) from exc

    def commit(self, stream: str, watermark: datetime, run_id: str) -> StreamState:
        """Advance the watermark; never moves it backwards (a late, slower run cannot undo progress)."""
        current = self.read(stream)
        if current is not None and watermark <= current.watermark:
            return current
        state = StreamState(stream, watermark.astimezone(UTC), datetime.now(UTC), run_id)
        doc = {
            "stream": stream,
            "watermark": format_utc(state.watermark),
            "updated_at": format_utc(state.updated_at),
            "run_id": run_id,
        }
        self.lake.write_bytes(self._path(stream), orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        return state


def _parse_utc(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without zone: {text}")
    return dt.astimezone(UTC)


@contextmanager
def writer_lock(lake: Lake, stream: str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the one-writer lock of ``stream`` for the block; LockHeldError if another sync has it."""
    _check_stream(stream)
    if lake.is_local:
        with _flock(lake, stream, wait):
            yield
    else:
        with _lease(lake, stream, wait):
            yield


@contextmanager
def _flock(lake: Lake, stream: str, wait: float) -> Iterator[None]:
    rel = f"{STATE_DIR}/{stream}.lock"
    path = lake.full_path(rel)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only or unwritable lake: one clear line, not a traceback
        raise StorageError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
    try:
        _acquire(fd, stream, path, wait)
        os.ftruncate(fd, 0)
        os.write(fd, _holder().encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, stream: str, path: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    holder = fh.read().strip() or "unknown process"
                raise LockHeldError(
                    f"another sync of stream '{stream}' is running ({holder}); "
                    "wait for it to finish, or pass --wait SECONDS"
                ) from None
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


@contextmanager
def _lease(lake: Lake, stream: str, wait: float) -> Iterator[None]:
    rel = f"{STATE_DIR}/{stream}.lease"
    token = f"{_holder()} token {os.urandom(8).hex()}"
    deadline = time.monotonic() + wait
    while True:
        raw = lake.read_bytes(rel)
        lease = orjson.loads(raw) if raw else None
        expired = lease is None or _parse_utc(lease["expires"]) < datetime.now(UTC)
        if expired:
            expires = format_utc(datetime.now(UTC) + _LEASE_TTL)
            lake.write_bytes(rel, orjson.dumps({"holder": token, "expires": expires}))
            confirm = lake.read_bytes(rel)
            if confirm and orjson.loads(confirm)["holder"] == token:
                break
        if time.monotonic() >= deadline:
            holder = lease["holder"] if lease else "unknown process"
            raise LockHeldError(f"another sync of stream '{stream}' holds the lease ({holder})")
        time.sleep(0.5)
    try:
        yield
    finally:
        lake.delete(rel)


def _holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {format_utc(datetime.now(UTC))}"
