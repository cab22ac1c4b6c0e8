"""The ``runai-ledger`` command line: sync, backfill, recheck, status, query, fake-server, demo.

Heavy modules (pyarrow, pandas, duckdb, the pipeline) are imported inside the commands so that
``--help`` and a mistyped option answer at once. Expected failures (bad credentials, an
unreachable server, bad arguments, a held lock) print one line on stderr and exit non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runai_extract.cli.compliance import register as register_compliance
from runai_extract.core.errors import ConfigError, LedgerError

if TYPE_CHECKING:
    from collections.abc import Callable

    from runai_extract.core.settings import Settings
    from runai_extract.ledger.run_records import Progress, SyncSummary

app = typer.Typer(
    name="runai-ledger",
    help="Audit and usage ledger for NVIDIA Run:ai: incremental extraction to Parquet and DuckDB views.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich-formatted help imports ~0.4 s of rich modules before printing a line,
    # and start-up is paid by every CLI call and every Airflow task (docs/performance.md).
    rich_markup_mode=None,
)
register_compliance(app)  # verify, export compliance (runai_extract/cli_compliance.py)

STREAMS = ("audit", "workloads", "org", "usage", "all")  # usage = org + workloads; all = audit + usage

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Ledger home (lake + warehouse). Env: RUNAI_LEDGER_HOME.")
]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="Control-plane URL. Env: RUNAI_BASE_URL.")]
ClientIdOpt = Annotated[
    str | None, typer.Option("--client-id", help="Application client id. Env: RUNAI_CLIENT_ID.")
]
SecretOpt = Annotated[
    str | None,
    typer.Option(
        "--client-secret", help="Client secret (prefer the env var RUNAI_CLIENT_SECRET).", show_default=False
    ),
]
InsecureOpt = Annotated[bool, typer.Option("--insecure", help="Skip TLS verification (never in production).")]
WaitOpt = Annotated[float | None, typer.Option("--wait", help="Seconds to wait for another sync's lock.")]


def _settings(home: Path | None = None, **overrides: Any) -> Settings:
    from runai_extract.core.settings import load_settings

    if overrides.pop("insecure", False):
        overrides["verify_tls"] = False
    return load_settings(home=home, **overrides)


def _api_settings(
    home: Path | None,
    base_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    insecure: bool,
    wait: float | None,
) -> Settings:
    """Settings for a command that talks to the API: the shared flags over the environment."""
    return _settings(
        home,
        base_url=base_url,
        client_id=client_id,
        client_secret=client_secret,
        insecure=insecure,
        lock_wait=wait,
    )


def _check_stream(stream: str, allowed: tuple[str, ...] = STREAMS) -> str:
    if stream not in allowed:
        raise ConfigError(f"unknown stream {stream!r} here; choose one of: {', '.join(allowed)}")
    return stream


def _time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    from runai_extract.core.times import parse_time

    try:
        return parse_time(text)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from exc


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output.")] = 0,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@app.command()
def sync(
    stream: Annotated[str, typer.Argument(help="Stream to sync: audit, workloads, org, usage or all.")],
    until: Annotated[
        str | None, typer.Option(help="Upper bound (ISO-8601, date, or -2h); default now - settle lag.")
    ] = None,
    home: HomeOpt = None,
    base_url: BaseUrlOpt = None,
    client_id: ClientIdOpt = None,
    client_secret: SecretOpt = None,
    insecure: InsecureOpt = False,
    wait: WaitOpt = None,
) -> None:
    """Ingest what is new since the stored watermark, then refresh the warehouse views.

    Streams: audit, workloads, org (clusters, departments, projects, node pools, users),
    usage (org + workloads) or all (audit + usage).
    """
    from runai_extract.audit.sync import sync_audit

    _check_stream(stream)
    upper = _time(until, "--until")
    settings = _api_settings(home, base_url, client_id, client_secret, insecure, wait)
    if stream in ("audit", "all"):
        # With `all`, the usage step below refreshes the views once for both.
        _ingest(
            settings,
            lambda progress: sync_audit(settings, until=upper, progress=progress),
            refresh=stream == "audit",
        )
    if stream != "audit":
        _usage(settings, "usage" if stream == "all" else stream)


@app.command()
def backfill(
    stream: Annotated[
        str, typer.Argument(help="Stream to backfill: audit or workloads (created in the range).")
    ],
    start: Annotated[str, typer.Option(help="Range start (inclusive).")],
    end: Annotated[str, typer.Option(help="Range end (exclusive).")],
    home: HomeOpt = None,
    base_url: BaseUrlOpt = None,
    client_id: ClientIdOpt = None,
    client_secret: SecretOpt = None,
    insecure: InsecureOpt = False,
    wait: WaitOpt = None,
) -> None:
    """Re-read an explicit range; stores only what the lake does not have yet.

    audit: events in [start, end). workloads: every workload created in the range, deleted or
    not, with its history and events (the watermark does not move).
    """
    from runai_extract.audit.sync import backfill_audit

    begin, finish = _range(stream, start, end, ("audit", "workloads"))
    settings = _api_settings(home, base_url, client_id, client_secret, insecure, wait)
    if stream == "workloads":
        _usage(settings, "workloads", created_between=(begin, finish))
        return
    _ingest(settings, lambda progress: backfill_audit(settings, start=begin, end=finish, progress=progress))


@app.command()
def recheck(
    stream: Annotated[str, typer.Argument(help="Stream to re-check: audit.")],
    start: Annotated[str, typer.Option(help="Range start (inclusive).")],
    end: Annotated[str, typer.Option(help="Range end (exclusive).")],
    home: HomeOpt = None,
    base_url: BaseUrlOpt = None,
    client_id: ClientIdOpt = None,
    client_secret: SecretOpt = None,
    insecure: InsecureOpt = False,
    wait: WaitOpt = None,
) -> None:
    """Re-page a synced range: store late rows, record per window what the API and the lake disagree on."""
    from runai_extract.audit.recheck import recheck_audit
    from runai_extract.cli.status import print_recheck

    begin, finish = _range(stream, start, end, ("audit",))
    settings = _api_settings(home, base_url, client_id, client_secret, insecure, wait)
    _ingest(
        settings,
        lambda progress: recheck_audit(settings, start=begin, end=finish, progress=progress),
        print_recheck,  # type: ignore[arg-type]  # it is only ever given the RecheckSummary above
    )


def _range(stream: str, start: str, end: str, allowed: tuple[str, ...]) -> tuple[datetime, datetime]:
    """Check the stream and read --start/--end: one clear line for an unknown, unreadable or inverted range."""
    _check_stream(stream, allowed)
    begin, finish = _time(start, "--start"), _time(end, "--end")
    assert begin is not None and finish is not None
    if finish <= begin:
        raise ConfigError(f"--start must be before --end (got {start} .. {end})")
    return begin, finish


def _ingest(
    settings: Settings,
    run: Callable[[Progress], SyncSummary],
    printer: Callable[[SyncSummary], None] | None = None,
    *,
    refresh: bool = True,
) -> None:
    """Run a sync, backfill or recheck with a progress display, refresh the views, print the summary."""
    from runai_extract.cli.progress import terminal_progress
    from runai_extract.cli.status import print_summary

    with terminal_progress() as progress:
        summary = run(progress)
    if refresh:
        _refresh_views(settings)
    (printer or print_summary)(summary)


def _usage(settings: Settings, stream: str, created_between: tuple[datetime, datetime] | None = None) -> None:
    """Sync org units and/or workloads, refresh the views, print what each run did."""
    from runai_extract.cli.status import wide_console
    from runai_extract.cli.usage_summary import print_usage_summary
    from runai_extract.stream_runner import run_usage

    try:
        summaries = run_usage(settings, stream, created_between=created_between)
    finally:
        _refresh_views(settings)  # what was stored before a failure is queryable too
    console = wide_console()
    for summary in summaries:
        print_usage_summary(summary, console)
    failed = [s.run_id for s in summaries if s.status == "failed"]
    if failed:
        raise LedgerError(
            f"{len(failed)} run(s) did not complete ({', '.join(failed)}); see the messages above"
        )


@app.command()
def status(home: HomeOpt = None) -> None:
    """Watermarks, the last runs, and quarantine counts."""
    from runai_extract.cli.status import print_status

    print_status(_settings(home))


@app.command("build-views")
def build_views_cmd(home: HomeOpt = None) -> None:
    """(Re)create the DuckDB views in warehouse.duckdb from the .sql files."""
    from transforms.storage import Lake
    from warehouse.build import build_views

    settings = _settings(home)
    report = build_views(
        settings.warehouse_path, Lake(settings.lake_uri), pseudonym_key=settings.pseudonym_key
    )
    typer.echo(f"views built in {settings.warehouse_path}: {report}")


@app.command()
def query(
    sql: Annotated[str | None, typer.Argument(help="A read-only SQL query over the views.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
    list_views: Annotated[bool, typer.Option("--list", help="List the views and exit.")] = False,
    home: HomeOpt = None,
) -> None:
    """Run read-only SQL against the warehouse (it never blocks a running sync)."""
    from warehouse.query import list_views as views_of
    from warehouse.query import render, run_query

    settings = _settings(home)
    if not settings.warehouse_path.exists():
        raise ConfigError(f"no warehouse at {settings.warehouse_path}; run `runai-ledger sync audit` first")
    if list_views:
        for name in views_of(settings.warehouse_path):
            typer.echo(name)
        return
    if not sql:
        raise ConfigError('give a SQL query, e.g. runai-ledger query "select count(*) from audit_events"')
    if fmt not in ("table", "csv", "json"):
        raise ConfigError(f"--format must be table, csv or json (got {fmt!r})")
    render(run_query(settings.warehouse_path, sql), fmt, sys.stdout)  # type: ignore[arg-type]


@app.command("fake-server")
def fake_server(
    port: Annotated[int, typer.Option(help="Loopback port (0 picks a free one).")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the tenant simulator.")] = 7,
    days: Annotated[int, typer.Option(help="Days of audit history to simulate, ending now.")] = 3,
    events_per_day: Annotated[int, typer.Option(help="Audit events per simulated day.")] = 2000,
    client_id: Annotated[str, typer.Option(help="Client id the fake accepts.")] = "ledger-demo",
    client_secret: Annotated[
        str, typer.Option(help="Client secret the fake accepts.")
    ] = "ledger-demo-secret",
    error_rate: Annotated[float, typer.Option(help="Fraction of data requests answered 429/5xx.")] = 0.0,
    retry_after: Annotated[
        str, typer.Option(help="Retry-After form: seconds | http-date | none.")
    ] = "seconds",
    latency: Annotated[float, typer.Option(help="Seconds added to every data request.")] = 0.0,
    token_lifetime: Annotated[int, typer.Option(help="Lifetime of issued tokens in seconds.")] = 3600,
    late_arrivals: Annotated[int, typer.Option(help="Rows that appear later with past timestamps.")] = 0,
    insert_during_paging: Annotated[
        int, typer.Option(help="Rows inserted into a window while it is paged.")
    ] = 0,
    reset_rate: Annotated[
        float, typer.Option(help="Fraction of data requests whose connection is cut mid-body.")
    ] = 0.0,
    slow_rate: Annotated[float, typer.Option(help="Fraction of data requests stalled --slow-seconds.")] = 0.0,
    slow_seconds: Annotated[float, typer.Option(help="How long a stalled request waits.")] = 0.0,
    ignore_offset: Annotated[bool, typer.Option(help="Answer every page as if offset were 0.")] = False,
    next_backwards: Annotated[bool, typer.Option(help="Send `next` backwards after the first page.")] = False,
    lying_total: Annotated[int, typer.Option(help="Added to every page's `total` (may be negative).")] = 0,
    bad_body_rate: Annotated[
        float, typer.Option(help="Fraction of 200 answers with an HTML page or truncated JSON.")
    ] = 0.0,
    bad_record_rate: Annotated[
        float, typer.Option(help="Fraction of rows served as corrupt variants.")
    ] = 0.0,
    api_version: Annotated[
        str, typer.Option(help="Control-plane release to speak: 2.18 ... 2.26, 3.0, or latest (SaaS).")
    ] = "latest",
) -> None:
    """Serve the fake Run:ai control plane on 127.0.0.1 until interrupted."""
    from runai_extract.fake import FakeConfig, FaultConfig, serve_forever
    from runai_extract.fake.releases import RELEASES

    if api_version not in RELEASES:
        raise ConfigError(f"--api-version must be one of {', '.join(RELEASES)} (got {api_version!r})")

    if retry_after not in ("seconds", "http-date", "none"):
        raise ConfigError(f"--retry-after must be seconds, http-date or none (got {retry_after!r})")
    if not 0.0 <= error_rate <= 1.0:
        raise ConfigError(f"--error-rate must be between 0 and 1 (got {error_rate})")
    try:
        faults = FaultConfig(
            error_rate=error_rate,
            retry_after=retry_after,
            latency_s=latency,
            token_lifetime_s=token_lifetime,
            late_arrivals=late_arrivals,
            insert_during_paging=insert_during_paging,
            reset_rate=reset_rate,
            slow_rate=slow_rate,
            slow_s=slow_seconds,
            ignore_offset=ignore_offset,
            next_backwards=next_backwards,
            lying_total=lying_total,
            bad_body_rate=bad_body_rate,
            bad_record_rate=bad_record_rate,
        )
    except ValueError as exc:
        raise ConfigError(f"fake-server: {exc}") from exc
    config = FakeConfig(
        seed=seed,
        days=days,
        events_per_day=events_per_day,
        client_id=client_id,
        client_secret=client_secret,
        faults=faults,
        api_version=api_version,
    )
    serve_forever(config, "127.0.0.1", port)


@app.command()
def demo(
    home: HomeOpt = None,
    days: Annotated[int, typer.Option(help="Days of synthetic history.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the tenant simulator.")] = 7,
) -> None:
    """Run the whole pipeline against the embedded fake control plane, without Airflow, and show the result."""
    from runai_extract.cli.demo import run_cli_demo

    run_cli_demo(home or Path(".ledger/demo"), days=days, seed=seed)


def _refresh_views(settings: Settings) -> None:
    from transforms.storage import Lake
    from warehouse.build import ensure_views

    ensure_views(settings.warehouse_path, Lake(settings.lake_uri), pseudonym_key=settings.pseudonym_key)


def main() -> None:
    """Console entry point: one clear line and a non-zero exit for expected failures."""
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"runai-ledger: error: {exc}", err=True)
        raise SystemExit(2) from None
    except LedgerError as exc:
        typer.echo(f"runai-ledger: error: {exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        typer.echo("runai-ledger: interrupted; nothing past the last committed window was kept", err=True)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
