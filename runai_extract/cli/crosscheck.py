"""``runai-ledger crosscheck usage``: our GPU-hours for a period beside Run:ai's own report.

Kept apart from main.py like the compliance and report commands; main.py calls :func:`register`
once. Exit 0 when every project and department agrees within the tolerance, 1 naming each that
does not (so a scheduler or a finance team's script can act on it), 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runai_extract.core.errors import LedgerError

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Ledger home (lake + warehouse). Env: RUNAI_LEDGER_HOME.")
]
WHAT = ("usage",)


def register(app: typer.Typer) -> None:
    app.command("crosscheck")(crosscheck)


def crosscheck(
    what: Annotated[str, typer.Argument(help="What to cross-check: usage (GPU-hours vs Run:ai's report).")],
    start: Annotated[str, typer.Option(help="First UTC day of the period (a date, or a midnight).")],
    end: Annotated[str, typer.Option(help="The UTC day after the period (exclusive).")],
    tolerance: Annotated[
        float, typer.Option(help="Largest relative difference accepted per project/department (0.01 = 1%).")
    ] = 0.01,
    home: HomeOpt = None,
) -> None:
    """Request Run:ai's consumption report for [start, end), store it, compare it with our GPU-hours.

    The view usage_crosscheck_runai_report keeps every stored report beside our figures.
    """
    from runai_extract.cli.status import wide_console
    from runai_extract.core.errors import ConfigError
    from runai_extract.core.settings import load_settings
    from runai_extract.core.times import parse_time
    from runai_extract.usage.crosscheck import crosscheck_usage

    if what not in WHAT:
        raise ConfigError(f"unknown crosscheck {what!r}; choose one of: {', '.join(WHAT)}")
    settings = load_settings(home=home)
    result = crosscheck_usage(settings, parse_time(start), parse_time(end), tolerance=tolerance)
    console = wide_console()
    console.print(
        f"crosscheck usage {result.start:%Y-%m-%d} .. {result.end:%Y-%m-%d} against Run:ai report "
        f"{result.report_id} (tolerance {tolerance:.2%})",
        highlight=False,
    )
    for row in result.rows:
        mark = "DIFFERS" if row.relative_difference > tolerance else "ok"
        console.print(
            f"  {row.level:<10} {row.unit_name:<28} ours {row.our_gpu_hours:>12,.2f}  "
            f"Run:ai {row.runai_gpu_hours:>12,.2f}  diff {row.difference:>+10,.2f} "
            f"({row.relative_difference:.2%}) {mark}",
            highlight=False,
        )
    failures = result.failures
    if failures:
        raise LedgerError(
            f"crosscheck failed: {len(failures)} unit(s) beyond {tolerance:.2%}: "
            + "; ".join(row.describe() for row in failures)
        )
    console.print(f"crosscheck passed: {len(result.rows)} projects and departments within {tolerance:.2%}")
