"""Scenario 6: start-up, which every Airflow task and every CLI call pays before any work."""

from __future__ import annotations

from typing import Any

from harness import PY, ledger_env, scratch, summarise, timed


def startup(repeat: int) -> dict[str, Any]:
    print("-- scenario 6: start-up", flush=True)
    results: dict[str, Any] = {}
    with scratch("startup") as home:
        env = ledger_env(home)
        commands = {"--help": ["--help"], "status": ["status"]}
        for name, args in commands.items():
            runs = [timed([PY, "-m", "runai_extract.cli", *args], env).seconds for _ in range(repeat)]
            results[name] = summarise(runs)
            print(f"   runai-ledger {name:<8} median {results[name]['median']:.2f} s", flush=True)
        python = [timed([PY, "-c", "pass"], env).seconds for _ in range(repeat)]
        results["bare python"] = summarise(python)
    return results
