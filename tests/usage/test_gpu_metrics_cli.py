"""`runai-ledger sync usage` with GPU metrics as a user runs it: what it prints, gaps included."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from runai_extract.fake import FakeControlPlane
from tests.cli.test_cli import api_env, one_error_line, run_cli
from tests.usage.conftest import usage_config


def test_sync_usage_prints_metrics_runs_and_the_gaps_past_retention(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(replace(usage_config(events_per_day=200), days=3, metrics_retention_days=1))
    env = {
        **api_env(fake),
        "RUNAI_LEDGER_METRICS_RESOLUTION_S": "900",
        "RUNAI_LEDGER_RETENTION_DAYS": "audit=90,workloads=90,metrics=1",
    }
    first = run_cli("sync", "usage", env=env, home=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "GPU metrics sync" in first.stdout and "every 900 s" in first.stdout
    assert "quota series sync" in first.stdout
    assert "gap: workload " in first.stdout and "past the metrics retention" in first.stdout
    gaps = run_cli("query", "select count(*) from metric_gaps", "-f", "csv", home=tmp_path)
    assert int(gaps.stdout.strip().splitlines()[-1]) > 0
    again = run_cli("sync", "metrics", env=env, home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 new samples" in again.stdout and "gap:" not in again.stdout


def test_a_resolution_that_is_not_whole_seconds_is_refused(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(usage_config(events_per_day=200))
    env = {**api_env(fake), "RUNAI_LEDGER_METRICS_RESOLUTION_S": "0"}
    result = run_cli("sync", "metrics", env=env, home=tmp_path)
    assert result.returncode == 2
    assert "metrics resolution must be whole seconds between 1 and 86400" in one_error_line(result)
