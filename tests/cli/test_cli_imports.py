"""What the hot commands import: every CLI call and cron job pays its imports before any work.

Measured with `python -X importtime` (docs/performance.md, start-up): pandas ~0.5 s,
pyarrow.compute ~0.07-0.15 s, httpx ~0.1 s; `status` uses none of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NOT_FOR_STATUS = ("pandas", "pyarrow.compute", "pyarrow.dataset", "httpx")


def test_status_on_an_empty_ledger_imports_no_heavy_module_it_does_not_use(tmp_path: Path) -> None:
    script = (
        "import sys; from runai_extract.cli.main import app\n"
        "try:\n    app(['status'])\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        f"print('imported:', [m for m in {NOT_FOR_STATUS!r} if m in sys.modules])"
    )
    env = {**os.environ, "RUNAI_LEDGER_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "never synced" in result.stdout
    assert result.stdout.splitlines()[-1] == "imported: []"


def _arrow_pool(env: dict[str, str]) -> str:
    script = (
        "import sys; sys.argv = ['runai-ledger', '--help']\n"
        "from runai_extract.cli.main import main\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "import pyarrow; print('pool:', pyarrow.default_memory_pool().backend_name)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def test_the_cli_gives_arrow_the_system_allocator_unless_the_user_chose_one() -> None:
    """mimalloc's per-thread heaps cost ~50 MiB of peak RSS in a backfill (core/arrow_memory.py)."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert _arrow_pool(env) == "pool: system"
    assert _arrow_pool({**env, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}) == "pool: jemalloc"
