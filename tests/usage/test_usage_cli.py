"""`runai-ledger sync all|usage|workloads|org` and `backfill workloads` as a user runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runai_extract.fake import FakeControlPlane
from tests.cli.test_cli import api_env, one_error_line, run_cli
from tests.usage.conftest import usage_config


def test_sync_all_fills_audit_and_usage_and_a_second_run_adds_nothing(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(usage_config(events_per_day=200))
    env = api_env(fake)
    first = run_cli("sync", "all", env=env, home=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "audit sync" in first.stdout and "org sync" in first.stdout and "workloads sync" in first.stdout
    again = run_cli("sync", "usage", env=env, home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 changed of" in again.stdout and "0 new versions" in again.stdout
    hours = run_cli(
        "query", "select round(sum(gpu_hours), 3) from usage_gpu_hours_daily", "-f", "csv", home=tmp_path
    )
    expected = round(sum(fake.simulator.gpu_hours_truth().values()), 3)
    assert hours.stdout.strip().splitlines()[-1] == str(expected)
    # The audit log's workload creations and the workloads API agree, one for one.
    crosscheck = run_cli(
        "query",
        "select status, count(*) from workload_audit_crosscheck group by all",
        "-f",
        "csv",
        home=tmp_path,
    )
    lines = crosscheck.stdout.strip().splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("matched,"), crosscheck.stdout


def test_streams_that_cannot_do_a_command_say_so(tmp_path: Path) -> None:
    result = run_cli("backfill", "org", "--start", "2026-11-01", "--end", "2026-11-02", home=tmp_path)
    assert result.returncode == 2
    assert "unknown stream 'org' here; choose one of: audit, workloads" in one_error_line(result)
    result = run_cli("recheck", "workloads", "--start", "2026-11-01", "--end", "2026-11-02", home=tmp_path)
    assert result.returncode == 2 and "choose one of: audit" in one_error_line(result)
