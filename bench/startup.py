"""Scenario 6: start-up, which every Airflow task and every CLI call pays before any work."""

from __future__ import annotations

from typing import Any

from harness import PY, ledger_env, scratch, summarise, timed


def startup(repeat: int) -> dict[str, Any]:
    print("-- scenario 6: start-up", flush=True)
    results: dict[str, Any] = {}
    with scratch("startup") as home:
        env = ledger_env(home)
        timed([PY, "-m", "runai_extract.cli", "build-views"], env)  # an empty ledger's warehouse
        commands = {
            "--help": ["--help"],
            "status": ["status"],
            "query": ["query", "select 1", "--format", "json"],  # what cron and scripts run
            "query table": ["query", "select 1"],  # + rich, for a person at a terminal
        }
        for name, args in commands.items():
            runs = [timed([PY, "-m", "runai_extract.cli", *args], env) for _ in range(repeat)]
            results[name] = summarise([run.seconds for run in runs])
            results[f"{name} cpu"] = summarise([run.cpu_seconds for run in runs])
            print(
                f"   runai-ledger {name:<11} median {results[name]['median']:.2f} s "
                f"(cpu {results[f'{name} cpu']['median']:.2f} s)",
                flush=True,
            )
        python = [timed([PY, "-c", "pass"], env).seconds for _ in range(repeat)]
        results["bare python"] = summarise(python)
        # The floor of a query: import duckdb, open the file read-only, select 1 (no CLI at all).
        floor = f"import duckdb; duckdb.connect({str(home / 'warehouse.duckdb')!r}, read_only=True).sql('select 1').fetchall()"
        floors = [timed([PY, "-c", floor], env) for _ in range(repeat)]
        results["duckdb select 1"] = summarise([run.seconds for run in floors])
        results["duckdb select 1 cpu"] = summarise([run.cpu_seconds for run in floors])
        ratio = results["query cpu"]["median"] / results["duckdb select 1 cpu"]["median"]
        results["query / duckdb floor"] = ratio
        print(f"   query / bare duckdb select 1 (cpu): {ratio:.2f}x", flush=True)
    return results
