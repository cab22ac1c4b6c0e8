"""`runai-ledger crosscheck usage` as a user runs it: passes on the fake, fails naming the project
when the fake's own report disagrees (FakeConfig.report_skew, the control plane's side)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from runai_extract.fake import FakeControlPlane
from runai_extract.stream_runner import run_usage
from tests.cli.test_cli import api_env, one_error_line, run_cli
from tests.conftest import fake_config, settings_for
from tests.usage.conftest import rows, views

PERIOD = ("--start", "2026-11-19", "--end", "2026-11-20")  # the last closed day of the tenant


def _synced(start_fake: Callable[..., FakeControlPlane], home: Path, **changes: object) -> FakeControlPlane:
    fake = start_fake(replace(fake_config(days=2, events_per_day=300, seed=23), **changes))
    settings = settings_for(fake, home, metrics_resolution=timedelta(minutes=15))
    for stream in ("org", "workloads"):
        assert all(s.status == "committed" for s in run_usage(settings, stream))
    return fake


def test_crosscheck_passes_when_run_ai_agrees(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = _synced(start_fake, tmp_path)
    result = run_cli("crosscheck", "usage", *PERIOD, env=api_env(fake), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "crosscheck passed" in result.stdout and "team-vision" in result.stdout
    con = views(settings_for(fake, tmp_path))
    stored = rows(
        con,
        "select level, count(*), max(relative_difference), sum(runai_gpu_hours) "
        "from usage_crosscheck_runai_report group by level order by level",
    )
    con.close()
    truth = sum(h for (day, _), h in fake.simulator.gpu_hours_truth().items() if str(day) == "2026-11-19")
    assert [level for level, *_ in stored] == ["department", "project"]
    for _, units, worst, runai in stored:
        assert units > 1 and worst < 1e-6 and abs(runai - truth) < 1e-3


def test_crosscheck_fails_naming_the_project_run_ai_counts_differently(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = _synced(start_fake, tmp_path, report_skew=(("team-vision", 1.05),))
    result = run_cli("crosscheck", "usage", *PERIOD, env=api_env(fake), home=tmp_path)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "project team-vision (70003) differs by 4.76%" in line and "team-speech" not in line
    assert "department research" in line  # its department's sum moves too
    looser = run_cli("crosscheck", "usage", *PERIOD, "--tolerance", "0.06", env=api_env(fake), home=tmp_path)
    assert looser.returncode == 0, looser.stderr


def test_crosscheck_refuses_a_period_that_is_not_whole_days(tmp_path: Path) -> None:
    result = run_cli(
        "crosscheck", "usage", "--start", "2026-11-19T06:00:00Z", "--end", "2026-11-20", home=tmp_path
    )
    assert result.returncode == 2
    assert "must be a midnight" in one_error_line(result)
