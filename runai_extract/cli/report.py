"""``runai-ledger report``: the period's HTML page, written to a file.

Kept apart from main.py like the compliance commands; main.py calls :func:`register` once.
The page is complete or says loudly that it is not; either way the command succeeds, because an
incomplete page is still the best answer there is (the exit code is for failures to render).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from runai_extract.report.data import ReportData

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Ledger home (lake + warehouse). Env: RUNAI_LEDGER_HOME.")
]


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    start: Annotated[str, typer.Option(help="First UTC day of the period (a date, or a midnight).")],
    end: Annotated[str, typer.Option(help="The UTC day after the period (exclusive).")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
    home: HomeOpt = None,
) -> None:
    """Write one self-contained HTML page for [start, end): usage, workloads, audit, coverage, verify."""
    from runai_extract.core.settings import load_settings
    from runai_extract.core.times import parse_time
    from runai_extract.ledger.manifests import SIGNING_KEY_ENV, signing_key
    from runai_extract.report.render import render_report, write_page

    settings = load_settings(home=home)
    rendered = render_report(settings, parse_time(start), parse_time(end), key=signing_key(SIGNING_KEY_ENV))
    write_page(out, rendered.html)
    typer.echo(
        f"report {out} ({len(rendered.html) / 1024:,.0f} KiB) in {rendered.seconds:.1f} s: {summary(rendered.data)}"
    )


def summary(data: ReportData) -> str:
    """One line on completeness, the same verdict the page opens with."""
    hours = data.coverage_hours
    total = sum(hours.values())
    unsealed = total - hours.get("sealed", 0)
    problems = sum(len(v.problems) for v in data.verify)
    coverage = "every hour sealed" if not unsealed else f"{unsealed} of {total} hours not sealed"
    verified = "verify OK" if not problems else f"verify found {problems} problem(s)"
    return f"{'complete' if data.complete else 'INCOMPLETE'}: {coverage}; {verified}"
