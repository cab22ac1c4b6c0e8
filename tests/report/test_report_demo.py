"""`runai-ledger demo` ends by writing the report of the simulated days and printing where it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.report.dom import figures


def test_the_demo_ends_with_the_report_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNAI_")}
    done = subprocess.run(
        [sys.executable, "-m", "runai_extract.cli", "demo", "--days", "1", "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"open it in a browser: file://(\S+)", last)
    assert match, last
    page = Path(match.group(1))
    assert page == (tmp_path / "home" / "report.html").resolve()
    text = page.read_text(encoding="utf-8")
    assert "Run:ai ledger report" in text
    found = figures(text).figures
    assert float(found[("total.gpu_hours", None)].value) > 0  # the demo tenant ran GPU workloads
    assert int(found[("total.sign_ins", None)].value) > 0
