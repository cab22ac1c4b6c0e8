"""Watermark store and the one-writer lock, including a holder that is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runai_extract.core.errors import LockHeldError, StateError
from runai_extract.ledger.watermarks import StateStore, writer_lock
from transforms.storage import Lake

HoldLock = Callable[[Path], "subprocess.Popen[str]"]

HOLD_LOCK = """
import sys, time
from runai_extract.ledger.watermarks import writer_lock
from transforms.storage import Lake
with writer_lock(Lake(sys.argv[1]), "audit"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def hold_lock() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """Start child processes that hold the audit lock; all are killed and reaped afterwards."""
    children: list[subprocess.Popen[str]] = []

    def _hold(lake_dir: Path) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(lake_dir)], stdout=subprocess.PIPE, text=True
        )
        children.append(child)
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        return child

    yield _hold
    for child in children:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def test_watermark_round_trip_and_never_backwards(tmp_path: Path) -> None:
    store = StateStore(Lake(str(tmp_path)))
    assert store.read("audit") is None
    t1 = datetime(2026, 11, 1, tzinfo=UTC)
    store.commit("audit", t1, "run-1")
    store.commit("audit", t1 - timedelta(hours=1), "run-2")  # a slower, older run finishing late
    state = store.read("audit")
    assert state is not None and state.watermark == t1 and state.run_id == "run-1"


def test_unreadable_state_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "_state").mkdir()
    (tmp_path / "_state" / "audit.json").write_text("{not json")
    with pytest.raises(StateError, match=r"audit\.json is unreadable"):
        StateStore(Lake(str(tmp_path))).read("audit")


def test_second_writer_is_told_who_holds_the_lock(tmp_path: Path, hold_lock: HoldLock) -> None:
    child = hold_lock(tmp_path)
    expected = rf"another sync of stream 'audit' is running \(pid {child.pid}"
    with pytest.raises(LockHeldError, match=expected), writer_lock(Lake(str(tmp_path)), "audit"):
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path, hold_lock: HoldLock) -> None:
    child = hold_lock(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with writer_lock(Lake(str(tmp_path)), "audit"):
        pass


def test_wait_gets_the_lock_once_the_holder_finishes(tmp_path: Path, hold_lock: HoldLock) -> None:
    child = hold_lock(tmp_path)
    started = time.monotonic()
    threading.Timer(1.0, child.kill).start()
    with writer_lock(Lake(str(tmp_path)), "audit", wait=20):
        assert time.monotonic() - started >= 0.5


def test_stream_names_cannot_reach_outside_state(tmp_path: Path) -> None:
    with pytest.raises(StateError):
        StateStore(Lake(str(tmp_path))).read("../etc")
