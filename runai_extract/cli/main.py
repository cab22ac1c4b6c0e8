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
from runai_extract.cli.crosscheck import register as register_crosscheck
from runai_extract.cli.report import register as register_report
from runai_extract.core.arrow_memory import prefer_system_allocator
from runai_extract.core.errors import ConfigError, LedgerError
from runai_extract.core.third_party_warnings import silence_known_noise

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
register_report(app)  # report: the period's HTML page (runai_extract/cli/report.py)
register_crosscheck(
    app
)  # crosscheck usage: our GPU-hours vs Run:ai's report (runai_extract/cli/crosscheck.py)

# usage = org + workloads + metrics + quotas (GPU metrics and quota series, issue 15); all = audit + usage
STREAMS: tuple[str, ...] = ("audit", "workloads", "org", "usage", "all", "metrics", "quotas")

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
WaitOpt = Annotated[
    float | None,
    typer.Option("--wait", help="Seconds to wait for the warehouse file when another process holds it."),
]
RetentionOpt = Annotated[
    str | None,
    typer.Option(
        "--retention-days",
        help="Days the control plane keeps records: 90, or audit=90,workloads=30. Env: RUNAI_LEDGER_RETENTION_DAYS.",
    ),
]


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
    retention_days: RetentionOpt = None,
) -> None:
    """Ingest what is new since the stored watermark, then refresh the warehouse views.

    Streams: audit, workloads, org (clusters, departments, projects, node pools, users),
    usage (org + workloads) or all (audit + usage).
    """
    from runai_extract.audit.sync import sync_audit

    _check_stream(stream)
    upper = _time(until, "--until")
    settings = _api_settings(home, base_url, client_id, client_secret, insecure, wait).with_overrides(
        retention=retention_days
    )
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
    from runai_extract.stream_runner import FAILED, raise_for_failures, run_usage

    try:
        summaries = run_usage(settings, stream, created_between=created_between)
    except BaseException:
        _refresh_after_failure(settings)  # what was stored before a failure is queryable too
        raise
    # A run that failed or stalled without raising is a failure all the same: its error, raised
    # below, is the one the user must see, so the refresh before it must not replace it.
    if any(summary.status in FAILED for summary in summaries):
        _refresh_after_failure(settings)
    else:
        _refresh_views(settings)
    console = wide_console()
    for summary in summaries:
        print_usage_summary(summary, console)
    raise_for_failures(summaries)


@app.command()
def status(home: HomeOpt = None, retention_days: RetentionOpt = None) -> None:
    """Watermarks with their retention risk, stalls, coverage, the last runs, and quarantine counts.

    Exits non-zero when the status could not be computed in full (a view that cannot be built).
    """
    from runai_extract.cli.status import print_status

    print_status(_settings(home, retention=retention_days))


@app.command()
def compact(
    retention: Annotated[
        str, typer.Option(help="Vacuum files retired longer ago than this (e.g. 7d, 36h); at least 1h.")
    ] = "7d",
    home: HomeOpt = None,
) -> None:
    """Compact closed days into one file per table, checkpoint the logs, vacuum retired files."""
    from runai_extract.core.times import parse_duration
    from runai_extract.ledger.maintenance import maintain
    from transforms.storage import Lake

    settings = _settings(home)
    report = maintain(Lake(settings.lake_uri), retention=parse_duration(retention)).to_dict()
    typer.echo(
        f"compacted: {report['files_before']} -> {report['files_after']} live data files; "
        f"{report['vacuumed']} retired file(s) vacuumed"
    )
    _refresh_views(settings)


@app.command()
def migrate(home: HomeOpt = None) -> None:
    """Convert a lake written before Delta Lake into Delta tables, in place (files are kept)."""
    from runai_extract.ledger.migrate import migrate as migrate_lake
    from transforms.storage import Lake

    settings = _settings(home)
    report = migrate_lake(Lake(settings.lake_uri))
    typer.echo(f"migrated {settings.lake_uri}: {report}")
    _refresh_views(settings)


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
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Read every table as it stood at this time (within the vacuum retention)."
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Run read-only SQL against the warehouse (it never blocks a running sync)."""
    from warehouse.query import fetch_rows, render_rows
    from warehouse.query import list_views as views_of

    settings = _settings(home)
    moment = _time(as_of, "--as-of")
    if moment is not None:
        if not sql:
            raise ConfigError("give a SQL query to run as of that time")
        from transforms.storage import Lake
        from warehouse.build import views_as_of
        from warehouse.query import query_connection, render

        con = views_as_of(Lake(settings.lake_uri), moment)
        render(query_connection(con, sql), fmt, sys.stdout)  # type: ignore[arg-type]
        return
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
    render_rows(fetch_rows(settings.warehouse_path, sql), fmt, sys.stdout)  # type: ignore[arg-type]


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
    pre_encode: Annotated[
        bool, typer.Option(help="Encode each audit page once and serve it from memory after (bench).")
    ] = False,
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
    try:
        config = FakeConfig(
            seed=seed,
            days=days,
            events_per_day=events_per_day,
            client_id=client_id,
            client_secret=client_secret,
            faults=faults,
            pre_encode=pre_encode,
            api_version=api_version,
        )
    except ValueError as exc:
        raise ConfigError(f"fake-server: {exc}") from exc
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


def _refresh_after_failure(settings: Settings) -> None:
    """Refresh the views after a failed run without hiding its error: the first error is the user's.

    A refresh that fails too (the warehouse lock held, say) is only logged: replacing the sync's
    error with it would send the user after the wrong problem.
    """
    try:
        _refresh_views(settings)
    except Exception as exc:  # the run's own error is already on its way up
        logging.getLogger(__name__).info("views not refreshed after the failed run: %s", exc)


def main() -> None:
    """Console entry point: one clear line and a non-zero exit for expected failures."""
    silence_known_noise()
    prefer_system_allocator()  # before any command imports pyarrow (core/arrow_memory.py)
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
