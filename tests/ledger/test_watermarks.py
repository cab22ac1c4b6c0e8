"""Watermarks live in the table log: committed with (or after) the data, never backwards, no lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runai_extract.core.errors import StateError
from runai_extract.ledger.watermarks import StateStore, from_micros, to_micros
from transforms.storage import Lake

T1 = datetime(2026, 11, 1, tzinfo=UTC)


def test_watermark_round_trip_and_never_backwards(lake_uri: str) -> None:
    store = StateStore(Lake(lake_uri))
    assert store.read("workloads") is None
    store.commit("workloads", T1, "run-1")
    store.commit("workloads", T1 - timedelta(hours=1), "run-2")  # a slower, older run finishing late
    state = store.read("workloads")
    assert state is not None and state.watermark == T1 and state.run_id == "run-1"


def test_the_log_is_the_truth_and_the_mirror_only_a_convenience(tmp_path: Path) -> None:
    """Deleting or damaging the readable _state mirror loses nothing: the table log holds the watermark."""
    store = StateStore(Lake(str(tmp_path)))
    store.commit("org", T1, "run-1")
    mirror = tmp_path / "_state" / "org.json"
    mirror.write_text("{not json")
    assert store.read("org") is not None and store.read("org").watermark == T1  # type: ignore[union-attr]
    mirror.unlink()
    state = store.read("org")
    assert state is not None and state.watermark == T1 and state.run_id == ""


def test_concurrent_commits_keep_the_highest_watermark(lake_uri: str) -> None:
    """Eight runs commit at once, each its own watermark: the log orders them and the highest wins."""
    store = StateStore(Lake(lake_uri))
    marks = [T1 + timedelta(minutes=i) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda m: StateStore(Lake(lake_uri)).commit("workloads", m, f"run-{m:%M}"), marks))
    state = store.read("workloads")
    assert state is not None and state.watermark == max(marks)


def test_microseconds_survive_the_round_trip() -> None:
    moment = datetime(2026, 11, 1, 12, 30, 5, 123456, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment


def test_stream_names_cannot_reach_outside_state(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="invalid stream name"):
        StateStore(Lake(str(tmp_path))).read("../etc")
