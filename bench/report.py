"""Turn a results dict into goal rows (ratio vs goal, met or not) and a Markdown table.

Ratios are always "how many times faster ours is" (the other tool's median seconds over ours),
so >= 0.6 against the floor means ours keeps at least 60 % of the floor's throughput.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _spread(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} s ({s['min']:.2f}-{s['max']:.2f}, n={s['n']})"


def _row(scenario: str, measure: str, value: float, shown: str, goal: str, ok: bool | None) -> dict[str, Any]:
    return {"scenario": scenario, "measure": measure, "value": value, "shown": shown, "goal": goal, "met": ok}


def goal_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for size, tools in results.get("throughput", {}).items():
        ours = tools["ours"]
        label = f"1. ingest {int(size):,} rows"
        rows.append(
            _row(
                label,
                "ours",
                ours["rows_per_s"],
                f"{ours['rows_per_s']:,.0f} rows/s, {_spread(ours['seconds'])}, {ours['peak_rss_mib']:.0f} MiB",
                "",
                None,
            )
        )
        for other, goal in (("floor", 0.6), ("dlt", 3.0)):
            if other in tools:
                them = tools[other]
                ratio = them["seconds"]["median"] / ours["seconds"]["median"]
                shown = f"{ratio:.2f}x ({other}: {them['rows_per_s']:,.0f} rows/s, {_spread(them['seconds'])}, {them['peak_rss_mib']:.0f} MiB)"
                rows.append(_row(label, f"ours/{other}", ratio, shown, f">= {goal}x", ratio >= goal))
        if "floor" in tools:  # issue 13: memory within 1.3x of the minimal httpx+orjson+pyarrow script
            ratio = ours["peak_rss_mib"] / tools["floor"]["peak_rss_mib"]
            shown = f"{ratio:.2f} ({ours['peak_rss_mib']:.0f} MiB vs floor {tools['floor']['peak_rss_mib']:.0f} MiB)"
            rows.append(_row(label, "peak RSS ours/floor", ratio, shown, "<= 1.3", ratio <= 1.3))
    if "latency" in results:
        rows.extend(_latency_rows("2. +50 ms per page", results["latency"]))
        if "pre_encoded" in results["latency"]:
            rows.extend(_latency_rows("2b. +50 ms, pre-encoded fake", results["latency"]["pre_encoded"]))
    if "paging" in results:
        pg = results["paging"]
        shown = (
            f"{pg['c4 speed-up']:.2f}x at c=4 ({_spread(pg['c4'])}; serial {_spread(pg['c1'])}; "
            f"c=4 slices only {pg['c4 slices only speed-up']:.2f}x, c=8 {pg['c8 speed-up']:.2f}x)"
        )
        ok = pg["c4 speed-up"] >= 4
        rows.append(
            _row("2c. +50 ms, paging only", "paging ahead / serial", pg["c4 speed-up"], shown, ">= 4x", ok)
        )
    if "noop" in results:
        noop = results["noop"]
        req = noop["requests"]["max"]
        rows.append(_row("3. no-op sync", "API requests", req, f"{req:.0f}", "<= 3", req <= 3))
        past = noop["past_startup_seconds"]["median"]
        shown = f"{past:.2f} s (wall {_spread(noop['wall_seconds'])}, imports {noop['import_seconds']['median']:.2f} s)"
        rows.append(_row("3. no-op sync", "work past start-up", past, shown, "< 0.5 s", past < 0.5))
    sizes = list(results.get("throughput", {}))
    if len(sizes) >= 2:
        small, big = results["throughput"][sizes[0]]["ours"], results["throughput"][sizes[-1]]["ours"]
        ratio = big["peak_rss_mib"] / small["peak_rss_mib"]
        shown = f"{ratio:.2f} ({small['peak_rss_mib']:.0f} -> {big['peak_rss_mib']:.0f} MiB, {int(sizes[0]):,} -> {int(sizes[-1]):,} rows)"
        rows.append(_row("4. memory", "peak RSS big/small", ratio, shown, "<= 1.3", ratio <= 1.3))
    if "warehouse" in results:
        wh = results["warehouse"]
        n = wh["rows"]
        for name, m in wh.items():
            if not isinstance(m, dict) or "query" not in m:
                continue
            q = m["query"]["median"]
            shown = f"{q:.2f} s query ({n / max(q, 1e-3):,.0f} rows/s); CLI wall {_spread(m['wall'])}"
            if "src_audit_events" in name:  # the reference without the dedupe window: no goal
                rows.append(_row(f"5. {n / 1e6:.0f}M rows", name, q, shown, "(reference)", None))
            else:
                rows.append(_row(f"5. {n / 1e6:.0f}M rows", name, q, shown, "< 1 s", q < 1.0))
    if "startup" in results:
        st = results["startup"]
        h = st["--help"]["median"]
        rows.append(_row("6. start-up", "runai-ledger --help", h, _spread(st["--help"]), "< 0.5 s", h < 0.5))
        s = st["status"]["median"]
        shown = _spread(st["status"]) + (
            f"; cpu {st['status cpu']['median']:.2f} s" if "status cpu" in st else ""
        )
        rows.append(_row("6. start-up", "runai-ledger status", s, shown, "(no goal)", None))
        if "query" in st:  # results from before scenario 6 measured the query
            q = st["query"]["median"]
            shown = (
                f"{_spread(st['query'])}; cpu {st['query cpu']['median']:.2f} s, "
                f"{st['query / duckdb floor']:.2f}x a bare duckdb select 1"
            )
            rows.append(_row("6. start-up", "runai-ledger query -f json", q, shown, "< 0.5 s", q < 0.5))
            t = st["query table"]["median"]
            rows.append(
                _row(
                    "6. start-up",
                    "runai-ledger query (table)",
                    t,
                    _spread(st["query table"]),
                    "(no goal)",
                    None,
                )
            )
    return rows


def _latency_rows(label: str, lat: dict[str, Any]) -> list[dict[str, Any]]:
    """Scenario 2: the best of ours against the serial floor, with every variant's ratio shown."""
    floor = lat["floor"]["seconds"]["median"]
    variants = [name for name in ("ours_c4", "ours_c4_6h", "ours_c8_6h", "ours_serial") if name in lat]
    ratios = {name: floor / lat[name]["seconds"]["median"] for name in variants}
    best = max(ratios, key=lambda name: ratios[name])
    others = ", ".join(f"{name.removeprefix('ours_')} {ratios[name]:.2f}x" for name in variants)
    shown = (
        f"{ratios[best]:.2f}x ({best.removeprefix('ours_')} {_spread(lat[best]['seconds'])}; floor "
        f"{_spread(lat['floor']['seconds'])}; {others})"
    )
    return [_row(label, "ours / serial floor", ratios[best], shown, ">= 4x", ratios[best] >= 4)]


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    head = (
        f"Run {results['started_at']} on {m['platform']}, Python {m['python']}, {m['cpus']} CPUs; "
        f"{results['repeat']} runs each, median (min-max){'; QUICK sizes' if results['quick'] else ''}.\n\n"
    )
    lines = ["| Scenario | Measure | Result | Goal | Met |", "|---|---|---|---|---|"]
    for g in results["goals"]:
        met = {True: "yes", False: "**no**", None: ""}[g["met"]]
        lines.append(f"| {g['scenario']} | {g['measure']} | {g['shown']} | {g['goal']} | {met} |")
    return head + "\n".join(lines)


def update_doc(path: Path, table: str, source: str) -> None:
    """Replace the text between the bench markers (appending them if the doc has none)."""
    text = path.read_text() if path.exists() else "# Performance\n"
    block = f"{BEGIN}\n<!-- generated by `make bench` from {source}; edit bench/, not this table -->\n{table}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
