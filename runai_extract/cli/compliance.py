"""The auditor's commands: ``verify`` (lake or bundle) and ``export compliance``.

Kept apart from cli.py so the compliance surface can grow without touching the ingestion
commands; cli.py calls :func:`register` once. Heavy modules are imported inside the commands,
like the rest of the CLI, so ``--help`` answers at once. verify prints its findings and exits 1
on any problem; an incomplete period refused by ``--refuse-incomplete`` exits 1 and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from runai_extract.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from runai_extract.compliance.export import Bundle
    from runai_extract.ledger.verify import Problem, StreamReport

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Ledger home (lake + warehouse). Env: RUNAI_LEDGER_HOME.")
]

export_app = typer.Typer(
    help="Cut deterministic, checksummed export bundles for auditors.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add ``verify`` and the ``export`` group to the main application."""
    app.command()(verify)
    app.add_typer(export_app, name="export")


def verify(
    stream: Annotated[
        list[str] | None, typer.Option("--stream", help="Stream to verify (repeatable); default: all.")
    ] = None,
    key_env: Annotated[
        str | None,
        typer.Option(
            "--key-env",
            help="Env var holding the HMAC key of the signed chain heads [default: RUNAI_LEDGER_SIGNING_KEY if set].",
        ),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="Check an export bundle directory instead of the lake.")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-hash every file and re-read every manifest, ignoring where the last clean verify ended.",
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Walk the manifest chains and re-hash the stored files; exit 1 naming anything changed.

    Incremental unless --full: what the last clean verify proved is not re-read, files whose
    size and modification time are unchanged are not re-hashed.
    """
    from runai_extract.cli.status import wide_console
    from transforms.storage import Lake

    out = wide_console()
    if bundle is not None:
        from runai_extract.compliance.bundles import verify_bundle

        if not bundle.is_dir():
            raise ConfigError(f"--bundle {bundle} is not a directory")
        problems = verify_bundle(Lake(str(bundle)))
        _print_problems(out, problems)
        out.print(
            f"bundle {bundle}: " + ("[green]OK[/]" if not problems else f"[red]{len(problems)} problem(s)[/]")
        )
        if problems:
            raise typer.Exit(1)
        return
    from runai_extract.core.settings import load_settings
    from runai_extract.ledger.manifests import SIGNING_KEY_ENV, signing_key
    from runai_extract.ledger.verify import verify_lake

    key = signing_key(key_env or SIGNING_KEY_ENV)
    if key_env and key is None:
        raise ConfigError(f"--key-env {key_env}: that environment variable is not set or empty")
    settings = load_settings(home=home)
    reports = verify_lake(Lake(settings.lake_uri), stream or None, key, full=full)
    for report in reports:
        _print_stream(out, report)
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


@export_app.command("compliance")
def export_compliance_cmd(
    start: Annotated[str, typer.Option(help="Period start (inclusive), ISO-8601 or date.")],
    end: Annotated[str, typer.Option(help="Period end (exclusive).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the bundle into.")],
    fmt: Annotated[str, typer.Option("--format", help="csv | jsonl | parquet")] = "csv",
    view: Annotated[
        list[str] | None, typer.Option("--view", help="Compliance view to export (repeatable); default: all.")
    ] = None,
    refuse_incomplete: Annotated[
        bool,
        typer.Option(
            "--refuse-incomplete", help="Fail (exit 1, nothing written) if the period is not sealed."
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Write the compliance views for [start, end) as a bundle with manifest.json and SHA256SUMS."""
    from runai_extract.cli.status import wide_console
    from runai_extract.compliance.export import ExportRequest, export_compliance
    from runai_extract.core.settings import load_settings
    from runai_extract.core.times import parse_time
    from transforms.storage import Lake

    request = ExportRequest(
        start=parse_time(start),
        end=parse_time(end),
        fmt=fmt,
        views=tuple(view or ()),
        refuse_incomplete=refuse_incomplete,
    )
    bundle = export_compliance(load_settings(home=home), request, Lake(str(out_dir)))
    _print_bundle(wide_console(), bundle)


def _print_bundle(out: Console, bundle: Bundle) -> None:
    period = bundle.manifest["period"]
    out.print(f"bundle {bundle.location}: {period['start']} .. {period['end']}")
    for name, rows in sorted(bundle.rows.items()):
        out.print(f"  {name}: {rows:,} rows")
    if bundle.coverage.complete:
        out.print(f"coverage: [green]{bundle.coverage.summary()}[/]")
        return
    out.print(f"[yellow]coverage: {bundle.coverage.summary()}[/]")
    for issue in bundle.coverage.issues[:10]:
        item = issue.to_dict()
        out.print(f"[yellow]  {item['start']} .. {item['end']}: {item['status']}[/]")
    if len(bundle.coverage.issues) > 10:
        out.print(f"[yellow]  ... {len(bundle.coverage.issues) - 10} more in manifest.json[/]")


def _print_stream(out: Console, report: StreamReport) -> None:
    head = f"seq {report.head.seq} sha256 {report.head.sha256[:16]}..." if report.head else "no manifests"
    verdict = "[green]OK[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"
    unchanged = (
        f", {report.files_unchanged} unchanged since the last verify" if report.files_unchanged else ""
    )
    out.print(
        f"{report.stream}: {report.mode}, {report.manifests} manifest(s), {report.files_checked} file(s) "
        f"re-hashed ({report.bytes_checked:,} bytes){unchanged}; head {head}; signature {report.signature}: "
        f"{verdict}"
    )
    if report.note:
        out.print(f"  [yellow]verified in full: {report.note}[/]", highlight=False)
    _print_problems(out, report.problems)


def _print_problems(out: Console, problems: list[Problem]) -> None:
    """One line per problem, never wrapped or folded, so a path can be copied and grepped."""
    from rich.text import Text

    for problem in problems:
        window = f" [window {problem.window}]" if problem.window else ""
        # Paths and details may echo file content: Text() keeps them from being read as markup.
        line = Text(f"  {problem.kind.upper()}: {problem.path}{window}: {problem.detail}", style="red")
        out.print(line, soft_wrap=True)
