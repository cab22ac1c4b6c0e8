"""Scenario 2c: the paging layer alone at +50 ms per page: how far our client overlaps latency.

Whole-process runs (scenario 2) include normalising and writing every row, which on 2 shared
CPUs can cost as much as the latency being hidden. This pages the same window through
RunaiClient + audit_pages only (items counted, nothing stored), against a pre-encoding fake in
its own process, day slices on the slice pool as a sync runs them: serial (concurrency 1) against
parallel slices paging ahead at concurrency 4 and 8 (one limit for both).
Usage: python bench/paging.py [rows] [repeat] [latency seconds, default 0.05]
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any

from harness import CLIENT, fake_server, summarise
from ingest import LATENCY_S

from runai_extract.api.client import RunaiClient
from runai_extract.api.pagination import audit_pages
from runai_extract.audit.slice_pool import in_order
from runai_extract.audit.windows import split_window
from runai_extract.core.settings import load_settings
from runai_extract.core.times import Window


def page_window(base_url: str, window: Window, concurrency: int, *, ahead: bool = True) -> int:
    settings = load_settings(
        {},
        base_url=base_url,
        client_id=CLIENT["RUNAI_CLIENT_ID"],
        client_secret=CLIENT["RUNAI_CLIENT_SECRET"],
        concurrency=concurrency,
    )
    with RunaiClient(settings) as client:
        if not ahead:
            client.page_ahead = 0  # parallel slices only: how paging ran before it paged ahead

        def count(piece: Window) -> int:
            return sum(len(page.items) for page in audit_pages(client, piece.start, piece.end, 1000))

        return sum(n for _, n in in_order(split_window(window, timedelta(days=1)), count, concurrency))


def paging(rows: int, repeat: int, latency: float = LATENCY_S) -> dict[str, Any]:
    print(f"-- scenario 2c: paging only, {rows:,} rows, +{latency * 1000:.0f} ms per page", flush=True)
    results: dict[str, Any] = {"latency_s": latency}
    with fake_server(rows, latency=latency, pre_encode=True) as fake:
        window = Window(fake.start, fake.end)
        page_window(fake.base_url, window, 4)  # warm-up: the fake encodes every page once
        variants = {"c1": (1, False), "c4 slices only": (4, False), "c4": (4, True), "c8": (8, True)}
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(repeat):
            for name, (concurrency, ahead) in variants.items():
                began = time.perf_counter()
                results["rows"] = page_window(fake.base_url, window, concurrency, ahead=ahead)
                runs[name].append(time.perf_counter() - began)
    serial = summarise(runs["c1"])["median"]
    shown = []
    for name, seconds in runs.items():
        results[name] = summarise(seconds)
        results[f"{name} speed-up"] = serial / results[name]["median"]
        shown.append(f"{name} {results[name]['median']:.2f} s ({results[f'{name} speed-up']:.2f}x)")
    print(f"   {results['rows']:,} rows: " + ", ".join(shown), flush=True)
    return results


if __name__ == "__main__":
    args = sys.argv[1:]
    paging(
        int(args[0]) if args else 100_000,
        int(args[1]) if len(args) > 1 else 3,
        float(args[2]) if len(args) > 2 else LATENCY_S,
    )
