"""Crash safety: a real ``runai-ledger sync audit`` process SIGKILLed at many points, then rerun.

Injected: SIGKILL (no cleanup handlers run, like a power cut or the OOM killer) delivered to the
CLI process, over and over, at seeded random delays spread across a run (while importing,
paging, normalising, writing Parquet, recording the run, committing the watermark), and on
sight of the moments that matter most: a temporary data file being written, and a data file
that is already published while the watermark has not moved over it yet. The fake control
plane serves four days (page size 1000, 4,000 events a day) with added latency per request, so
a run lasts a few seconds and kills land inside it.

Checked after every kill, reading every Parquet file the views' glob matches:
- every file is whole (pyarrow reads it), and no event id is stored twice;
- the watermark is never ahead of the data: every ground-truth event before the committed
  watermark is in the lake;
- nothing stored is outside the simulator's ground truth.
Checked after the final, uninterrupted rerun: the lake holds exactly the ground truth of the
window, once each; no temporary file is left under audit_events and none anywhere matches the
views' ``*.parquet``/``*.json`` globs; ``runai-ledger query`` counts the same events,
``verify --full`` finds nothing and ``status`` no gap (a commit whose run was killed before its
manifest and run record gets both from the rerun).

The second test runs on S3 (moto's server): one kill at each step a slice goes through (paging,
a staged file, the commit step, the commit itself before its manifest), found through the lake's
own listing; then the same checks after a rerun.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import orjson
from typer.testing import CliRunner

from runai_extract.cli.main import app
from runai_extract.core.errors import StorageError
from runai_extract.core.times import format_utc
from runai_extract.fake import FakeControlPlane, FaultConfig
from runai_extract.ledger.manifests import read_chain
from runai_extract.ledger.watermarks import StateStore
from tests.conftest import cli_env, fake_config
from tests.lake_reading import live_files, stored_audit_ids
from transforms.catalog import AUDIT_EVENTS_TABLE
from transforms.storage import Lake
from transforms.tables import Tables

CLI = [sys.executable, "-m", "runai_extract.cli"]
SEED = 20261127
KILLS = 12  # in all; every third one is targeted (alternately at a temporary file, a data file ahead)
TARGETED_EVERY = 3
ONE_US = timedelta(microseconds=1)


def stored_ids(lake_dir: Path | str) -> list[str]:
    """Every event id the audit table's current snapshot holds, duplicates kept."""
    return stored_audit_ids(lake_dir)


def watermark(lake_dir: Path | str) -> datetime | None:
    state = StateStore(Lake(str(lake_dir))).read("audit")
    return state.watermark if state else None


def temporaries(lake_dir: Path) -> list[Path]:
    return [p for p in lake_dir.rglob("*") if ".tmp-" in p.name]


def classify(lake_dir: Path, stale: set[Path]) -> str:
    """Where a kill landed, judged from what it left behind (``stale``: temporaries left earlier)."""
    if set(temporaries(lake_dir / "audit_events")) - stale:
        return "while writing a data file"
    if staged_not_committed(lake_dir):
        return "after a data file was staged, before its commit"
    return "elsewhere (startup, paging, commit, run record, between slices)"


def staged_not_committed(lake_dir: Path) -> bool:
    """A finished data file in the table directory that the table's snapshot does not hold."""
    committed = set(live_files(lake_dir))
    return any(p not in committed for p in (lake_dir / "audit_events").rglob("*.parquet"))


def temporary_data_file(lake_dir: Path, stale: set[Path]) -> bool:
    """True while a data file is being written (a temporary sibling that was not there before)."""
    events = lake_dir / "audit_events"
    return events.exists() and any(".tmp-" in p.name and p not in stale for p in events.rglob("*"))


def new_staged_file(lake_dir: Path, seen: set[str]) -> bool:
    """True as soon as a finished data file appears that was not there before (staged, not yet
    committed: the commit follows within milliseconds, so the kill lands between the two).

    Cheap on purpose (scandir of the partition directories), because the window is short.
    """
    events = lake_dir / "audit_events"
    try:
        names = {
            f.name for d in os.scandir(events) if d.is_dir() and d.name.startswith("event_date=")
            for f in os.scandir(d.path) if f.name.endswith(".parquet")
        }  # fmt: skip
    except OSError:  # nothing yet, or a directory changing under us: poll again
        return False
    return bool(names - seen)


def data_files_now(lake_dir: Path) -> set[str]:
    return {p.name for p in (lake_dir / "audit_events").rglob("*.parquet")}


def log_entries(lake_dir: Path) -> int:
    """How many commits the audit table's log holds (a directory listing: cheap enough to poll)."""
    try:
        return sum(
            1 for name in os.listdir(lake_dir / "audit_events" / "_delta_log") if name.endswith(".json")
        )
    except OSError:
        return 0


def after_a_commit(lake_dir: Path, extra: float) -> Callable[[], bool]:
    """A trigger that fires ``extra`` seconds after the audit table's log gains a commit."""
    entries = log_entries(lake_dir)
    first_seen: list[float] = []

    def fired() -> bool:
        if not first_seen:
            if log_entries(lake_dir) <= entries:
                return False
            first_seen.append(time.monotonic())
        return time.monotonic() - first_seen[0] >= extra

    return fired


def kill_when(child: subprocess.Popen[bytes], *, delay: float, trigger: Callable[[], bool] | None) -> bool:
    """SIGKILL the child after ``delay`` seconds, or as soon as ``trigger`` fires; False if it already exited."""
    started = time.monotonic()
    while time.monotonic() - started < delay:
        if child.poll() is not None:
            return False
        if trigger is not None and trigger():
            break
        time.sleep(0.001 if trigger is not None else 0.01)
    if child.poll() is not None:
        return False
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return True


def check_after_kill(
    lake_dir: Path | str, truth: Callable[[datetime, datetime], set[str]], everything: set[str]
) -> int:
    """The invariants that must hold at any instant; returns how many ground-truth events were checked."""
    ids = stored_ids(lake_dir)
    assert len(ids) == len(set(ids)), "an event id is stored twice after a kill"
    assert set(ids) <= everything, "the lake holds an event the tenant never had"
    mark = watermark(lake_dir)
    assert mark is not None  # the seeding backfill committed one
    before = truth(datetime(2000, 1, 1, tzinfo=UTC), mark - ONE_US)
    missing = before - set(ids)
    assert not missing, f"watermark {format_utc(mark)} is ahead of the data: {len(missing)} events missing"
    return len(before)


def test_sigkill_at_random_points_then_rerun_stores_everything_once(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(fake_config(days=4, events_per_day=4000, faults=FaultConfig(latency_s=0.08), seed=5))
    sim = fake.simulator
    home, lake_dir = tmp_path / "home", tmp_path / "home" / "lake"
    env = cli_env(fake, home)
    until = sim.now
    everything = sim.audit_ids(sim.start, until - ONE_US)
    assert len(everything) > 10_000

    # A first, empty backfill just before the stream starts puts the watermark at the stream's
    # start, so each sync reads four days (the CLI would otherwise plan 90 mostly empty days).
    seed = subprocess.run(
        [
            *CLI,
            "backfill",
            "audit",
            "--start",
            format_utc(sim.start - timedelta(hours=1)),
            "--end",
            format_utc(sim.start),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seed.returncode == 0, seed.stderr
    assert watermark(lake_dir) == sim.start

    rng = random.Random(SEED)
    landed: Counter[str] = Counter()
    checked = finished_early = 0
    attempt = 0
    while sum(landed.values()) < KILLS:
        attempt += 1
        assert attempt < 40, f"too few kills landed: {landed}"
        targeted = attempt % TARGETED_EVERY == 0
        delay = 8.0 if targeted else 20.0
        stale = set(temporaries(lake_dir / "audit_events"))
        if attempt % (2 * TARGETED_EVERY):
            watch = partial(temporary_data_file, lake_dir, stale)
        else:
            watch = partial(new_staged_file, lake_dir, data_files_now(lake_dir))
        # Untargeted kills land a random time after the run's first commit, so they also hit runs
        # that have moved the watermark (a kill before any commit only tests that nothing is seen).
        trigger = watch if targeted else after_a_commit(lake_dir, rng.uniform(0, 1.5))
        child = subprocess.Popen(
            [*CLI, "sync", "audit", "--until", format_utc(until)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not kill_when(child, delay=delay, trigger=trigger):
            assert child.returncode == 0
            finished_early += 1
            if watermark(lake_dir) == until:
                # The run completed on its own: start the next round of kills from scratch.
                final_checks(env, lake_dir, everything)
                _reset(home, env, sim.start)
            continue
        landed[classify(lake_dir, stale)] += 1
        checked += check_after_kill(
            lake_dir, lambda a, b: sim.audit_ids(a, min(b, until - ONE_US)), everything
        )

    rerun = subprocess.run(
        [*CLI, "sync", "audit", "--until", format_utc(until)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    final_checks(env, lake_dir, everything)
    print(
        f"\nkills: {dict(landed)}; runs that finished before their kill: {finished_early}; "
        f"ground-truth events checked after kills: {checked}; final events: {len(everything)}"
    )


def final_checks(env: dict[str, str], lake_dir: Path, everything: set[str]) -> None:
    """After an uninterrupted run: exactly the ground truth once, no temporaries, the views agree."""
    assert watermark(lake_dir) is not None
    ids = stored_ids(lake_dir)
    assert len(ids) == len(set(ids)), "duplicates after the rerun"
    assert set(ids) == everything
    # Files a killed writer left (temporaries, staged files) are in no version: no reader sees them,
    # and vacuum deletes them once they are older than the retention.
    committed = set(live_files(lake_dir))
    assert not [p for p in temporaries(lake_dir) if p in committed]
    the_user_sees_everything_once(env, len(everything))


def cli_in_process(env: dict[str, str], *args: str) -> str:
    """`runai-ledger ARGS` in this process with exactly ``env``'s RUNAI_* variables; its output.

    For the commands after the kills: the same entry point, arguments and environment as a
    shell, without a new interpreter's start-up each (the killed runs are real processes).
    """
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("RUNAI_") and k not in env}
    result = CliRunner().invoke(app, list(args), env={**unset, **env})
    output = result.output + (repr(result.exception) if result.exception else "")
    assert result.exit_code == 0, f"runai-ledger {' '.join(args)}:\n{output}"
    return output


def the_user_sees_everything_once(env: dict[str, str], events: int) -> None:
    """What a user checks after a crash and a rerun: verify clean, no gap, every event once."""
    verified = cli_in_process(env, "verify", "--full")
    assert re.search(r"^audit: full, .*: OK$", verified, re.MULTILINE), verified
    status = cli_in_process(env, "status")
    assert "audit: no gaps" in status, status
    counted = cli_in_process(
        env, "query", "select count(*) as n, count(distinct event_id) as d from audit_events", "-f", "csv"
    )
    assert counted.split()[-1] == f"{events},{events}"


def _reset(home: Path, env: dict[str, str], stream_start: datetime) -> None:
    shutil.rmtree(home)
    seed = subprocess.run(
        [
            *CLI,
            "backfill",
            "audit",
            "--start",
            format_utc(stream_start - timedelta(hours=1)),
            "--end",
            format_utc(stream_start),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seed.returncode == 0, seed.stderr


# -- one kill at each step of a commit, on S3 ----------------------------------------------------------
# The random kills above poll the local table directory; these find their moment through the lake's
# own listing (pyarrow.fs: a LIST request on S3), so they land on a lake in a bucket.
# Four kills, one per step a slice goes through, each found by what it leaves behind; then one
# uninterrupted rerun, `verify`, `status` and `query`. Small on purpose (2 days x 1,200 events, 12-hour
# slices, 4-5 commits a run): every kill on S3 is a CLI start-up plus a few hundred S3 requests.
AUDIT = "/api/v1/audit/log"
STEPS = (
    "while paging",
    "on sight of a staged file",
    "inside the commit step",
    "on sight of the commit",
)


class LakeWatch:
    """What a run has written so far, read through the lake's listing (local directory or bucket)."""

    def __init__(self, lake_uri: str) -> None:
        self.lake = Lake(lake_uri)

    def data_files(self) -> set[str]:
        try:
            return {p for p in self.lake.list_files("audit_events", ".parquet") if "/_delta_log/" not in p}
        except StorageError:  # a local directory changing under the listing: ask again next poll
            return set()

    def log_entries(self) -> int:
        try:
            return len(self.lake.list_files("audit_events/_delta_log", ".json"))
        except StorageError:
            return 0

    def staged(self) -> set[str]:
        """Data files in the table's directory that its newest version does not hold."""
        live = {f"audit_events/{f.path}" for f in Tables(self.lake).live_files(AUDIT_EVENTS_TABLE)}
        return self.data_files() - live

    def unmanifested(self) -> list[int]:
        """Versions of the audit table the ledger committed (with rows) that no manifest names."""
        tables = Tables(self.lake)
        table = tables.load(AUDIT_EVENTS_TABLE)
        if table is None:
            return []
        named = {
            int(c["version"])
            for m in read_chain(self.lake, "audit")
            for c in orjson.loads(m.raw)["commits"]
            if c["table"] == AUDIT_EVENTS_TABLE.name
        }
        return [
            v
            for v in range(table.version() + 1)
            if v not in named
            and (commit := tables.commit_at(AUDIT_EVENTS_TABLE, v)).adds
            and "commit_token" in commit.metadata
        ]


def step_trigger(
    step: str, watch: LakeWatch, fake: FakeControlPlane, rng: random.Random
) -> Callable[[], bool]:
    """When to SIGKILL a run for ``step``; each polls the lake (or the fake) once per call."""
    requests, files, entries = fake.requests_to(AUDIT), watch.data_files(), watch.log_entries()
    seen_at: list[float] = []
    pause = rng.uniform(0.005, 0.04)

    def paging() -> bool:  # a few pages answered, nothing written yet
        return fake.requests_to(AUDIT) >= requests + 2  # the API probe and one page

    def staged() -> bool:
        return bool(watch.data_files() - files)

    def committing() -> bool:  # a moment after a file was staged: re-reading, deduplicating, committing
        if not seen_at:
            if not staged():
                return False
            seen_at.append(time.monotonic())
        return time.monotonic() - seen_at[0] >= pause

    def committed() -> bool:
        return watch.log_entries() > entries

    return {STEPS[0]: paging, STEPS[1]: staged, STEPS[2]: committing, STEPS[3]: committed}[step]


def outcome(watch: LakeWatch, staged_before: set[str], unmanifested_before: list[int]) -> str:
    """Where a kill landed, judged from what it left in the lake."""
    if set(watch.unmanifested()) - set(unmanifested_before):
        return "after a commit, before its manifest"
    if watch.staged() - staged_before:
        return "after staging, before the commit"
    return "before anything was written, or between slices"


def test_a_kill_at_each_commit_step_on_s3_then_a_rerun_stores_everything_once_and_verifies(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path, s3_lake: str
) -> None:
    fake = start_fake(fake_config(days=2, events_per_day=1200, faults=FaultConfig(latency_s=0.02), seed=9))
    sim = fake.simulator
    # The s3_lake fixture put the AWS_* variables of moto's server in this process's environment;
    # cli_env copies it, so every killed child reaches the bucket the same way.
    env = {**cli_env(fake, tmp_path / "home"), "RUNAI_LEDGER_LAKE": s3_lake, "RUNAI_SLICE_MINUTES": "720"}
    until = sim.now
    everything = sim.audit_ids(sim.start, until - ONE_US)
    watch = LakeWatch(s3_lake)
    cli_in_process(env, "backfill", "audit", "--start", format_utc(sim.start - timedelta(hours=1)),
                   "--end", format_utc(sim.start))  # fmt: skip
    assert watermark(s3_lake) == sim.start

    rng = random.Random(SEED)
    landed: list[tuple[str, str]] = []
    for step in STEPS:
        staged_before, unmanifested_before = watch.staged(), watch.unmanifested()
        child = subprocess.Popen(
            [*CLI, "sync", "audit", "--until", format_utc(until)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        killed = kill_when(child, delay=60.0, trigger=step_trigger(step, watch, fake, rng))
        assert killed, f"the run finished before the kill {step}"
        landed.append((step, outcome(watch, staged_before, unmanifested_before)))
        check_after_kill(s3_lake, lambda a, b: sim.audit_ids(a, min(b, until - ONE_US)), everything)
    outcomes = {o for _, o in landed}
    # The two states a kill can leave that a reader or verify could trip over were both reached.
    assert {"after staging, before the commit", "after a commit, before its manifest"} <= outcomes, landed

    cli_in_process(env, "sync", "audit", "--until", format_utc(until))
    ids = stored_ids(s3_lake)
    assert len(ids) == len(set(ids)) and set(ids) == everything
    assert watermark(s3_lake) == until
    # The commit whose run died before its manifest got one (and its run record) from the rerun.
    assert watch.unmanifested() == []
    recovered = [orjson.loads(m.raw) for m in read_chain(watch.lake, "audit")]
    assert any(doc.get("recovered_by") for doc in recovered)
    # Staged objects the kills left in the bucket are in no view: each event is counted once.
    assert watch.staged()
    the_user_sees_everything_once(env, len(everything))
    print(f"\ns3: kills {landed}; final events: {len(everything)}")
