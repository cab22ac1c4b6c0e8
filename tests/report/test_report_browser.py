"""The report in a real browser: headless Chromium draws it (not blank) and its DOM holds the views' numbers.

Chromium is Debian's ``chromium`` package; .ci/run installs it when missing. On a developer's
machine without it the test is skipped; under CI (CI=true) a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
from PIL import Image

from runai_extract.core.settings import Settings
from runai_extract.report.render import render_report, write_page
from tests.report.dom import Figure, figures
from tests.synced_ledger import PERIOD

CLOSED_NETWORK_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless run with a fresh profile, so Chromium never waits on the (closed) network."""
    profile.mkdir(parents=True, exist_ok=True)
    command = [_chromium(), *CLOSED_NETWORK_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def page(synced_ledger: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_page(path, render_report(synced_ledger, *PERIOD).html)
    yield path


def _views(settings: Settings, sql: str, *params: object) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_chromium_draws_the_page_and_it_is_not_blank(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _run_chromium(tmp_path / "profile", "--window-size=1100,1400", f"--screenshot={shot}", page.as_uri())
    image = Image.open(shot).convert("RGB")
    assert image.size == (1100, 1400)
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 50, "a blank or single-colour screenshot"
    background = max(colours)[0]
    assert background < image.size[0] * image.size[1] * 0.95, "the page is almost all background"


def test_the_numbers_in_the_browsers_dom_equal_the_views(
    page: Path, synced_ledger: Settings, tmp_path: Path
) -> None:
    dom = _run_chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    found = figures(dom).figures
    lo, hi = PERIOD
    days = (lo.date(), hi.date())

    def check(metric: str, key: str | None, expected: object, *, places: int | None = None) -> None:
        figure: Figure = found.pop((metric, key))
        if places is None:
            assert int(figure.value) == expected, (metric, key)
            assert figure.text == f"{expected:,}", (metric, key)
        else:
            assert float(figure.value) == pytest.approx(float(expected), abs=10**-places), (metric, key)  # type: ignore[arg-type]
            assert figure.text == f"{float(expected):,.1f}", (metric, key)  # type: ignore[arg-type]

    # GPU-hours: the total and every department (usage_gpu_hours_daily).
    usage = "from usage_gpu_hours_daily where usage_date >= ? and usage_date < ?"
    ((total,),) = _views(synced_ledger, f"select sum(gpu_hours) {usage}", *days)
    check("total.gpu_hours", None, total, places=5)
    departments = _views(synced_ledger, f"select department_name, sum(gpu_hours) {usage} group by 1", *days)
    assert len(departments) > 2
    for name, hours in departments:
        check("gpu_hours.department", str(name), hours, places=5)
    # Top 10 projects and submitters.
    for metric, column in (("top.project", "project_id"), ("top.submitter", "submitted_by")):
        ranked = _views(
            synced_ledger,
            f"select {column}, sum(gpu_hours) as h {usage} group by 1 order by h desc limit 10",
            *days,
        )
        for member, hours in ranked:
            check(metric, str(member), hours, places=5)
    # Workload outcomes: final phases and preemptions that began in the period.
    outcomes = dict(
        _views(
            synced_ledger,
            "select phase, count(*) from workload_phase_history where started_at >= ? and started_at < ? "
            "and phase in ('Completed', 'Failed', 'Stopped') group by 1",
            lo,
            hi,
        )
    )
    ((preempted,),) = _views(
        synced_ledger,
        "select count(*) from workload_phase_history where phase = 'Pending' and phase_message like 'Preempted%' "
        "and started_at >= ? and started_at < ?",
        lo,
        hi,
    )
    outcomes["Preempted"] = preempted
    for outcome in ("Completed", "Failed"):
        check("total.outcome", outcome, outcomes.get(outcome, 0))
    for outcome in ("Completed", "Failed", "Stopped", "Preempted"):
        check("outcome", outcome, outcomes.get(outcome, 0))
    # Sign-ins and failed actions per day.
    sign_ins = _views(
        synced_ledger,
        "select event_date, count_if(success), count_if(not success) from compliance_sign_ins "
        "where event_time >= ? and event_time < ? group by 1",
        lo,
        hi,
    )
    per_day = {str(day): (ok, failed) for day, ok, failed in sign_ins}
    failed_actions = dict(
        _views(
            synced_ledger,
            "select cast(event_date as varchar), count(*) from compliance_failed_actions "
            "where event_time >= ? and event_time < ? group by 1",
            lo,
            hi,
        )
    )
    for offset in range((hi - lo).days):
        day = date.fromordinal(lo.date().toordinal() + offset).isoformat()
        check("sign_ins.succeeded", day, per_day.get(day, (0, 0))[0])
        check("sign_ins.failed", day, per_day.get(day, (0, 0))[1])
        check("failed_actions", day, failed_actions.get(day, 0))
    check("total.sign_ins", None, sum(ok + failed for ok, failed in per_day.values()))
    check("total.failed_actions", None, sum(failed_actions.values()))
    # Privileged and entity changes.
    ((privileged, privileged_failed),) = _views(
        synced_ledger,
        "select count(*), count_if(not succeeded) from compliance_privileged_changes "
        "where event_time >= ? and event_time < ?",
        lo,
        hi,
    )
    assert privileged > 0
    check("privileged.count", None, privileged)
    check("total.privileged_changes", None, privileged)
    check("privileged.failed", None, privileged_failed)
    ((changes, entities),) = _views(
        synced_ledger,
        "select count(*), count(distinct (entity_kind, entity_id)) from compliance_entity_changes "
        "where event_time >= ? and event_time < ?",
        lo,
        hi,
    )
    check("entities.count", None, changes)
    check("entities.distinct", None, entities)
    # Coverage: hours per status, from the coverage view.
    hours = dict(
        _views(
            synced_ledger,
            "select status, count(*) from coverage where stream = 'audit' and period_start >= ? and period_start < ? "
            "group by 1",
            lo,
            hi,
        )
    )
    assert sum(hours.values()) == 72 and hours["sealed"] == 24
    for status in ("sealed", "provisional", "pending", "mismatch", "missing"):
        check("coverage.hours", status, hours.get(status, 0))
    # verify: every stream OK; the verdict says incomplete (two of three days are not sealed).
    for stream in ("audit", "ledger", "org", "workloads"):  # ledger: run records, quarantine, rechecks
        assert found.pop(("verify.ok", stream)).value == "true"
    assert 'id="verdict" data-complete="false"' in dom
    checked = {metric for metric, _ in found}
    assert checked <= {
        "coverage.summary",
        "entities.create",
        "entities.update",
        "entities.delete",
        "entities.total",
        "queue.spans",
        "queue.median_minutes",
        "queue.p90_minutes",
        "queue.max_minutes",
        "verify.manifests",
        "verify.files",
    }, "every other figure on the page was compared above"
