"""The report as one HTML document: inline CSS and SVG, no script, no font files, no network.

Every name on the page comes from the views and is HTML-escaped here (``esc``), in text and in
attributes alike; chart SVG is escaped by its renderer. Every figure a reader may check carries
``data-metric``, ``data-key`` and ``data-value`` attributes (the exact value, before rounding for
display), so a test, or an auditor with the DOM, can hold the page to the views. Nothing on the
page depends on when it was rendered: the same data gives the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from runai_extract.report import charts
from runai_extract.report.data import ReportData, StreamVerdict
from warehouse.analytics import COVERAGE_STATUSES, OUTCOMES

# Long tables are cut for reading (and printing); their full length is still a figure on the page.
MAX_TABLE_ROWS = 50

STYLE = """
:root { color-scheme: light; --ink: #1d2329; --muted: #5f6b76; --line: #d8dee4; --ok: #2e7d32;
  --warn: #b26a00; --bad: #c62828; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p { margin: 6px 0; }
.muted { color: var(--muted); }
.period { font-size: 16px; color: var(--muted); margin-bottom: 16px; }
.verdict { border-radius: 6px; padding: 12px 16px; margin: 12px 0 18px; border: 1px solid; }
.verdict.ok { background: #edf7ee; border-color: #a5d6a7; }
.verdict.incomplete { background: #fff4e5; border-color: #ffcc80; }
.verdict strong { font-size: 17px; }
.tiles { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; margin: 12px 0; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.tile .value { display: block; font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.tile .label { color: var(--muted); font-size: 13px; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
.chart { margin: 8px 0; max-width: 100%; overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13.5px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { overflow-wrap: break-word; }
.bad { color: var(--bad); font-weight: 600; }
.ok-text { color: var(--ok); font-weight: 600; }
nav.toc { font-size: 14px; margin: 4px 0 8px; }
nav.toc a { margin-right: 14px; color: #1565c0; text-decoration: none; }
footer { margin-top: 40px; font-size: 12.5px; color: var(--muted); border-top: 1px solid var(--line);
  padding-top: 10px; }
code { font-size: 12.5px; }
@media (max-width: 760px) { .columns { grid-template-columns: 1fr; } .tiles { grid-template-columns: repeat(3, 1fr); }
  main { padding: 16px; } }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2 { break-after: avoid; }
  .chart, .tiles, .verdict, .columns > div { break-inside: avoid; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .verdict, .tile, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def esc(value: object) -> str:
    """Text from the views, safe in an element or a quoted attribute."""
    return html.escape("" if value is None or value is pd.NA else str(value), quote=True)


def _day(t: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d")


def _utc(t: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _exact(value: float | int) -> str:
    return str(int(value)) if isinstance(value, int) else f"{float(value):.6f}"


def figure(
    value: float | int,
    metric: str,
    key: str | None = None,
    *,
    tag: str = "span",
    cls: str = "num",
) -> str:
    """A number as an element carrying its exact value: ``<span data-metric=.. data-value=..>1,234.5</span>``.

    Integers are shown whole; other figures (hours, minutes) to one decimal.
    """
    shown = f"{value:,}" if isinstance(value, int) else f"{float(value):,.1f}"
    key_attr = f' data-key="{esc(key)}"' if key is not None else ""
    return f'<{tag} class="{cls}" data-metric="{esc(metric)}"{key_attr} data-value="{_exact(value)}">{shown}</{tag}>'


def _table(head: Sequence[tuple[str, bool]], rows: Iterable[str]) -> str:
    """``head``: (title, numeric) per column; ``rows``: the <tr> elements, already built."""
    ths = "".join(f'<th class="num">{esc(t)}</th>' if num else f"<th>{esc(t)}</th>" for t, num in head)
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _chart(svg: str) -> str:
    return f'<div class="chart">{svg}</div>'


def _tile(value: float | int, metric: str, label: str, key: str | None = None) -> str:
    shown = figure(value, metric, key, cls="value")
    return f'<div class="tile">{shown}<span class="label">{esc(label)}</span></div>'


# -- sections ------------------------------------------------------------------------------------------
def _header(data: ReportData) -> str:
    last_day = data.end - timedelta(days=1)
    days = (data.end - data.start).days
    title = f"Run:ai ledger report, {_day(data.start)} to {_day(last_day)}"
    return (
        f"<header><h1>{esc(title)}</h1>"
        f'<p class="period" id="period" data-start="{_day(data.start)}" data-end="{_day(data.end)}">'
        f"{days} UTC day{'s' if days != 1 else ''}: {_day(data.start)} 00:00 up to {_day(data.end)} 00:00 (UTC)</p>"
        "</header>"
    )


def _verdict(data: ReportData) -> str:
    hours = data.coverage_hours
    total = int(sum(hours.values()))
    unsealed = total - hours.get("sealed", 0)
    problems = sum(len(v.problems) for v in data.verify)
    if data.complete:
        head = "Complete: every hour of the period is sealed, and every hash chain verifies."
        cls = "ok"
    else:
        head = "Incomplete: read the figures below as a lower bound."
        cls = "incomplete"
    parts = [
        f"{figure(hours.get('sealed', 0), 'coverage.summary', 'sealed')} of {total:,} hours of the audit log sealed",
    ]
    if unsealed:
        detail = ", ".join(
            f"{figure(hours[s], 'coverage.summary', s)} {esc(s)}"
            for s in COVERAGE_STATUSES
            if s != "sealed" and hours.get(s)
        )
        parts.append(f"not sealed: {detail}")
    verify_text = (
        '<span class="ok-text">verify OK</span>'
        if problems == 0
        else f'<span class="bad">verify found {figure(problems, "verify.problems")} problem(s)</span>'
    )
    parts.append(verify_text)
    return (
        f'<div class="verdict {cls}" id="verdict" data-complete="{str(data.complete).lower()}">'
        f"<strong>{esc(head)}</strong><p>{'; '.join(parts)}.</p>"
        '<p class="muted">Sealed: ingested and confirmed by a later re-check against the API. '
        "Provisional: ingested, not re-checked yet. Pending: not read yet. Missing: never ingested "
        '(see <a href="#coverage">Coverage</a>).</p></div>'
    )


def _tiles(data: ReportData) -> str:
    outcomes = data.outcomes.sum()
    tiles = [
        _tile(float(data.gpu_by_department.to_numpy().sum()), "total.gpu_hours", "GPU-hours"),
        _tile(int(outcomes.get("Completed", 0)), "total.outcome", "workloads completed", "Completed"),
        _tile(int(outcomes.get("Failed", 0)), "total.outcome", "workloads failed", "Failed"),
        _tile(int(data.sign_ins.to_numpy().sum()), "total.sign_ins", "sign-in events"),
        _tile(int(data.failed_actions.to_numpy().sum()), "total.failed_actions", "failed actions"),
        _tile(len(data.privileged), "total.privileged_changes", "privileged changes"),
    ]
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _toc() -> str:
    links = [
        ("usage", "GPU-hours"),
        ("consumers", "Top consumers"),
        ("workloads", "Workloads"),
        ("access", "Sign-ins and failures"),
        ("privileged", "Privileged changes"),
        ("entities", "Entity changes"),
        ("coverage", "Coverage and verify"),
    ]
    return '<nav class="toc">' + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in links) + "</nav>"


def _usage(data: ReportData) -> str:
    wide = data.gpu_by_department
    per = "day" if data.freq == "day" else "ISO week (labelled by its Monday)"
    chart = ""
    if len(wide.columns):
        chart = _chart(
            charts.svg(
                charts.stacked_bars(
                    wide,
                    series="department",
                    value="gpu_hours",
                    title=f"GPU-hours per {data.freq} by department",
                    y_title="GPU-hours",
                )
            )
        )
    totals = wide.sum().sort_values(ascending=False, kind="stable")
    grand = float(totals.sum())
    rows = [
        f'<tr><td class="name">{esc(name)}</td>{figure(float(hours), "gpu_hours.department", str(name), tag="td")}'
        f'<td class="num">{(float(hours) / grand if grand else 0):.1%}</td></tr>'
        for name, hours in totals.items()
    ]
    table = _table([("Department", False), ("GPU-hours", True), ("Share", True)], rows) if rows else ""
    empty = "" if rows else '<p class="muted">No GPU time was recorded in this period.</p>'
    return (
        '<section id="usage"><h2>GPU-hours by department</h2>'
        f'<p class="muted">Time in phase Running times the GPUs held, per UTC {esc(per)}; departments under the '
        "names they had at the time (<code>usage_gpu_hours_daily</code>).</p>"
        f"{chart}{table}{empty}</section>"
    )


def _ranking(top: pd.DataFrame, metric: str, title: str) -> str:
    if top.empty:
        return f'<div><h3>{esc(title)}</h3><p class="muted">None in this period.</p></div>'
    chart = _chart(charts.svg(charts.ranked_bars(top, title=title)))
    rows = [
        f'<tr><td class="num">{int(r["rank"])}</td><td class="name">{esc(r["name"])}</td>'
        f'{figure(float(r["gpu_hours"]), metric, str(r["id"]), tag="td")}<td class="num">{float(r["share"]):.1%}</td></tr>'
        for r in _records(top)
    ]
    table = _table([("#", True), ("Name", False), ("GPU-hours", True), ("Share", True)], rows)
    return f"<div>{chart}{table}</div>"


def _consumers(data: ReportData) -> str:
    return (
        '<section id="consumers"><h2>Top projects and submitters</h2>'
        f'<div class="columns">{_ranking(data.top_projects, "top.project", "Top projects")}'
        f"{_ranking(data.top_submitters, 'top.submitter', 'Top submitters')}</div></section>"
    )


def _workloads(data: ReportData) -> str:
    outcomes = data.outcomes
    chart = _chart(
        charts.svg(
            charts.stacked_bars(
                outcomes,
                series="outcome",
                value="workloads",
                title=f"Workload outcomes per {data.freq}",
                y_title="workloads",
                colours=charts.OUTCOME_COLOURS,
                height=200,
            )
        )
    )
    totals = outcomes.sum()
    outcome_rows = [
        f"<tr><td>{esc(o)}</td>{figure(int(totals.get(o, 0)), 'outcome', o, tag='td')}</tr>" for o in OUTCOMES
    ]
    queue_rows = [
        f'<tr><td class="name">{esc(r["workload_type"])}</td>{figure(int(r["spans"]), "queue.spans", str(r["workload_type"]), tag="td")}'
        f"{figure(float(r['median_minutes']), 'queue.median_minutes', str(r['workload_type']), tag='td')}"
        f"{figure(float(r['p90_minutes']), 'queue.p90_minutes', str(r['workload_type']), tag='td')}"
        f"{figure(float(r['max_minutes']), 'queue.max_minutes', str(r['workload_type']), tag='td')}</tr>"
        for r in _records(data.queue)
    ]
    queue = (
        _table(
            [
                ("Workload type", False),
                ("Queued spans", True),
                ("Median min", True),
                ("p90 min", True),
                ("Longest min", True),
            ],
            queue_rows,
        )
        if queue_rows
        else '<p class="muted">No workload left the queue in this period.</p>'
    )
    return (
        '<section id="workloads"><h2>Workload outcomes and queue time</h2>'
        '<p class="muted">Workloads that reached a final phase in the period, and preemptions (Running, then '
        "Pending again). Queue time: Pending spans that ended in the period.</p>"
        f'{chart}<div class="columns"><div><h3>Outcomes</h3>'
        f"{_table([('Outcome', False), ('Workloads', True)], outcome_rows)}</div>"
        f"<div><h3>Queue time</h3>{queue}</div></div></section>"
    )


def _access(data: ReportData) -> str:
    sign_chart = _chart(
        charts.svg(
            charts.stacked_bars(
                data.sign_ins,
                series="outcome",
                value="events",
                title="Sign-in events per day",
                y_title="events",
                colours=charts.SIGN_IN_COLOURS,
                height=180,
            )
        )
    )
    failed_chart = _chart(
        charts.svg(
            charts.stacked_bars(
                data.failed_actions,
                series="status",
                value="actions",
                title="Failed actions per day, by HTTP status class",
                y_title="actions",
                colours={
                    c: charts.FAILURE_COLOURS.get(str(c), "#78909c") for c in data.failed_actions.columns
                },
                height=180,
            )
        )
    )
    failed_per_day = data.failed_actions.sum(axis=1)
    rows = []
    for day in data.sign_ins.index:
        key = _day(day)
        rows.append(
            f"<tr><td>{key}</td>{figure(int(data.sign_ins.loc[day, 'succeeded']), 'sign_ins.succeeded', key, tag='td')}"
            f"{figure(int(data.sign_ins.loc[day, 'failed']), 'sign_ins.failed', key, tag='td')}"
            f"{figure(int(failed_per_day.loc[day]), 'failed_actions', key, tag='td')}</tr>"
        )
    table = _table(
        [
            ("Day (UTC)", False),
            ("Sign-ins succeeded", True),
            ("Sign-ins failed", True),
            ("Failed actions", True),
        ],
        rows,
    )
    return (
        '<section id="access"><h2>Sign-ins and failed actions per day</h2>'
        '<p class="muted">From <code>compliance_sign_ins</code> and <code>compliance_failed_actions</code> '
        "(an action failed when the API said so or answered 4xx/5xx).</p>"
        f"{sign_chart}{failed_chart}{table}</section>"
    )


def _privileged(data: ReportData) -> str:
    frame = data.privileged
    shown = frame.head(MAX_TABLE_ROWS)
    rows = [
        f'<tr><td>{_utc(r["event_time"])}</td><td class="name">{esc(r["subject"])}</td><td>{esc(r["change_category"])}</td>'
        f'<td>{esc(r["action"])}</td><td class="name">{esc(r["entity_name"])}</td>'
        f"<td{_result_class(bool(r['succeeded']))}>{esc(r['result'])}</td></tr>"
        for r in _records(shown)
    ]
    count = figure(len(frame), "privileged.count")
    failed = figure(int((~frame["succeeded"].astype(bool)).sum()), "privileged.failed")
    more = (
        f'<p class="muted">The first {MAX_TABLE_ROWS} are listed; <code>runai-ledger export compliance</code> '
        "hands over all of them.</p>"
        if len(frame) > MAX_TABLE_ROWS
        else ""
    )
    table = (
        _table(
            [
                ("Time (UTC)", False),
                ("Who", False),
                ("Category", False),
                ("Action", False),
                ("Entity", False),
                ("Result", False),
            ],
            rows,
        )
        if rows
        else ""
    )
    return (
        '<section id="privileged"><h2>Privileged changes</h2>'
        f"<p>{count} creates, updates and deletes of access rules, roles, users, applications, settings, "
        f"departments, projects and clusters; {failed} of them did not succeed.</p>{table}{more}</section>"
    )


def _result_class(succeeded: bool) -> str:
    return "" if succeeded else ' class="bad"'


def _entities(data: ReportData) -> str:
    frame = data.entity_changes
    if frame.empty:
        return '<section id="entities"><h2>Entity changes</h2><p class="muted">No entity changed in this period.</p></section>'
    counts = pd.crosstab(frame["entity_kind"].fillna("(unknown)"), frame["action"].str.lower())
    actions = [a for a in ("create", "update", "delete") if a in counts.columns]
    counts = counts.reindex(columns=actions, fill_value=0).sort_index()
    rows = []
    for kind, row in counts.iterrows():
        cells = "".join(figure(int(row[a]), f"entities.{a}", str(kind), tag="td") for a in actions)
        rows.append(
            f"<tr><td>{esc(kind)}</td>{cells}{figure(int(row.sum()), 'entities.total', str(kind), tag='td')}</tr>"
        )
    entities = frame.drop_duplicates(["entity_kind", "entity_id"])
    return (
        '<section id="entities"><h2>Entity changes</h2>'
        f"<p>{figure(len(frame), 'entities.count')} changes to {figure(len(entities), 'entities.distinct')} "
        "entities, by kind (<code>compliance_entity_changes</code>; failed attempts included).</p>"
        + _table([("Kind", False), *[(a.capitalize(), True) for a in actions], ("Total", True)], rows)
        + "</section>"
    )


def _verify_rows(verdicts: Sequence[StreamVerdict]) -> str:
    rows = []
    for v in verdicts:
        result = (
            '<span class="ok-text">OK</span>'
            if v.ok
            else f'<span class="bad">{len(v.problems)} problem(s), {v.problems_in_period} touching this period</span>'
        )
        head = (
            f"#{v.head_seq} <code>{esc((v.head_sha256 or '')[:16])}</code>"
            if v.head_seq is not None
            else "none"
        )
        rows.append(
            f"<tr><td>{esc(v.stream)}</td>{figure(v.manifests, 'verify.manifests', v.stream, tag='td')}"
            f"{figure(v.files_checked, 'verify.files', v.stream, tag='td')}<td>{head}</td><td>{esc(v.signature)}</td>"
            f'<td data-metric="verify.ok" data-key="{esc(v.stream)}" data-value="{str(v.ok).lower()}">{result}</td></tr>'
        )
    return _table(
        [
            ("Stream", False),
            ("Manifests", True),
            ("Files re-hashed", True),
            ("Chain head", False),
            ("Signed head", False),
            ("Result", False),
        ],
        rows,
    )


def _problems(verdicts: Sequence[StreamVerdict]) -> str:
    found = [(v.stream, p) for v in verdicts for p in v.problems][:MAX_TABLE_ROWS]
    if not found:
        return ""
    rows = [
        f'<tr><td>{esc(s)}</td><td>{esc(p.kind)}</td><td class="name">{esc(p.path)}</td><td>{esc(p.window)}</td>'
        f'<td class="name">{esc(p.detail)}</td></tr>'
        for s, p in found
    ]
    return "<h3>What verify found</h3>" + _table(
        [("Stream", False), ("Kind", False), ("File", False), ("Window", False), ("Detail", False)], rows
    )


def _coverage(data: ReportData) -> str:
    hours = data.coverage_hours
    strip = _chart(charts.svg(charts.coverage_strip(data.coverage)))
    rows = [
        f"<tr><td>{esc(s)}</td>{figure(int(hours.get(s, 0)), 'coverage.hours', s, tag='td')}</tr>"
        for s in COVERAGE_STATUSES
    ]
    return (
        '<section id="coverage"><h2>Coverage and verify</h2>'
        '<p class="muted">Is the page complete? Each UTC hour of the audit log graded by the '
        "<code>coverage</code> view, and <code>runai-ledger verify</code>: every stored file re-hashed against "
        "the hash-chained manifests.</p>"
        f'{strip}<div class="columns"><div><h3>Hours by status</h3>'
        f"{_table([('Status', False), ('Hours', True)], rows)}</div>"
        f"<div><h3>Verify</h3>{_verify_rows(data.verify)}</div></div>{_problems(data.verify)}</section>"
    )


def _footer(data: ReportData) -> str:
    return (
        "<footer>Drawn by <code>runai-ledger report</code> from the warehouse views of the ledger's lake "
        "(the same numbers as <code>runai-ledger query</code> and <code>warehouse.analytics</code>). Times are UTC; "
        f"the period is [{_day(data.start)}, {_day(data.end)}). The same lake and period give the same page, "
        "byte for byte.</footer>"
    )


def render_page(data: ReportData) -> str:
    """The whole document as text."""
    body = "".join(
        [
            _header(data),
            _verdict(data),
            _tiles(data),
            _toc(),
            _usage(data),
            _consumers(data),
            _workloads(data),
            _access(data),
            _privileged(data),
            _entities(data),
            _coverage(data),
            _footer(data),
        ]
    )
    title = f"Run:ai ledger report {_day(data.start)} to {_day(data.end - timedelta(days=1))}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
