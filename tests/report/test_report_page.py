"""`runai-ledger report`: one self-contained page, the same bytes for the same data, names escaped."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from runai_extract.core.settings import Settings
from runai_extract.report.data import gather
from runai_extract.report.page import render_page
from runai_extract.report.render import render_report
from tests.report.dom import figures
from tests.synced_ledger import PERIOD
from transforms.storage import Lake
from warehouse.analytics import Ledger

HOSTILE = "<script>alert(\"x\")</script> & 'quoted' <img src=x onerror=alert(1)>"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNAI_")}
    env["RUNAI_LEDGER_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "runai_extract.cli", "report", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_the_cli_writes_the_same_bytes_twice_and_says_whether_the_page_is_complete(
    synced_ledger: Settings, tmp_path: Path
) -> None:
    first, second = tmp_path / "a" / "report.html", tmp_path / "b.html"
    for out in (first, second):
        done = _cli(synced_ledger.home, "--start", "2026-11-18", "--end", "2026-11-21", "--out", str(out))
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    assert f"report {first}" in done.stdout.replace(str(second), str(first))
    assert "INCOMPLETE" in done.stdout and "hours not sealed" in done.stdout and "verify OK" in done.stdout
    in_process = render_report(synced_ledger, *PERIOD).html
    assert in_process == first.read_bytes()


def test_the_page_needs_no_network_and_no_script(synced_ledger: Settings) -> None:
    page = render_report(synced_ledger, *PERIOD).html.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower() and "<link" not in page.lower() and "<iframe" not in page.lower()
    assert not re.search(r"\ssrc\s*=", page, re.I), "nothing is loaded from anywhere"
    assert "url(" not in page and "@import" not in page and "@font-face" not in page
    assert set(re.findall(r'href="([^"]*)"', page)) <= {f"#{s}" for s in figures(page).ids}
    # Charts are inline SVG from vl-convert, one per chart.
    assert page.count("<svg") == 7
    assert "@media print" in page


def test_names_from_the_views_are_escaped_in_text_and_attributes(synced_ledger: Settings) -> None:
    data = gather(
        Ledger(synced_ledger.warehouse_path, single_thread=True), Lake(synced_ledger.lake_uri), *PERIOD
    )
    first_department = data.gpu_by_department.columns[0]
    top = data.top_projects.copy()
    top.loc[0, "name"], top.loc[0, "id"] = HOSTILE, HOSTILE
    privileged = data.privileged.copy()
    privileged.loc[0, "subject"] = HOSTILE
    hostile = dataclasses.replace(
        data,
        gpu_by_department=data.gpu_by_department.rename(columns={first_department: HOSTILE}),
        top_projects=top,
        privileged=privileged,
    )
    page = render_page(hostile)
    assert HOSTILE not in page and "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quoted&#x27;" in page
    found = figures(page).figures
    assert ("gpu_hours.department", HOSTILE) in found  # the attribute holds the name, read back exactly
    assert ("top.project", HOSTILE) in found


def test_a_period_must_be_whole_days_and_forward(synced_ledger: Settings, tmp_path: Path) -> None:
    done = _cli(
        synced_ledger.home,
        "--start",
        "2026-11-18T06:00",
        "--end",
        "2026-11-21",
        "--out",
        str(tmp_path / "r.html"),
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "runai-ledger: error: GPU-hours are kept per UTC day: start must be a midnight (got 2026-11-18T06:00:00.000000Z)"
    )
    done = _cli(
        synced_ledger.home, "--start", "2026-11-21", "--end", "2026-11-18", "--out", str(tmp_path / "r.html")
    )
    assert done.returncode == 2 and "start must be before end" in done.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_long_period_is_charted_per_week(synced_ledger: Settings) -> None:
    data = gather(
        Ledger(synced_ledger.warehouse_path),
        Lake(synced_ledger.lake_uri),
        pd.Timestamp("2026-09-01", tz="UTC").to_pydatetime(),
        PERIOD[1],
    )
    assert data.freq == "week"
    assert all(day.weekday() == 0 for day in data.gpu_by_department.index)
    assert len(data.sign_ins) == (PERIOD[1] - pd.Timestamp("2026-09-01", tz="UTC").to_pydatetime()).days


@pytest.mark.parametrize("name", ["report.html"])
def test_out_may_not_be_a_directory(synced_ledger: Settings, tmp_path: Path, name: str) -> None:
    done = _cli(synced_ledger.home, "--start", "2026-11-18", "--end", "2026-11-21", "--out", str(tmp_path))
    assert done.returncode == 1
    assert f"is a directory; give a file name such as {tmp_path / name}" in done.stderr
