"""The official Run:ai client of each release, fetched as a wheel and unpacked, never installed.

One process cannot import two versions of the ``runai`` package, so each version's models run in
a subprocess whose PYTHONPATH is that version's unpacked wheel (check_models.py). Wheels are
downloaded once with ``pip download --no-deps`` into ``$RUNAPY_CACHE`` (default
``~/.cache/runai-ledger/runapy``; CI may cache that directory) and unpacked beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

CHECKER = Path(__file__).with_name("check_models.py")


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "runai-ledger" / "runapy"
    return Path(os.environ.get("RUNAPY_CACHE", default))


def unpacked(version: str) -> Path:
    """The directory holding runapy ``version``'s ``runai`` package (downloaded on first use)."""
    root = cache_dir()
    target = root / version
    if (target / "runai" / "__init__.py").exists():
        return target
    wheel = root / f"runapy-{version}-py3-none-any.whl"
    if not wheel.exists():
        root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", "-q", "-d", str(root), f"runapy=={version}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"could not download runapy=={version}: {done.stderr.strip()[-500:]}")
    partial = root / f".{version}.partial"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(partial)
    # Compiled once here: importing runapy's ~1000 model modules from source costs seconds per
    # subprocess, and the test environment does not write bytecode (PYTHONDONTWRITEBYTECODE).
    compiled = subprocess.run([sys.executable, "-m", "compileall", "-q", str(partial)], check=False)
    if compiled.returncode != 0:
        raise RuntimeError(f"could not compile runapy {version}")
    partial.rename(target)  # atomic: a half-unpacked wheel is never taken for a whole one
    return target


def validate(version: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Run ``checks`` against runapy ``version``'s models; returns version, checked, failures."""
    env = {**os.environ, "PYTHONPATH": str(unpacked(version))}
    done = subprocess.run(
        [sys.executable, str(CHECKER)],
        input=json.dumps(checks),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"model check under runapy {version} crashed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
