"""The DuckDB side of runai-ledger: SQL views over the lake's Parquet files, and read-only queries.

The warehouse file holds definitions only (views, two macros, two small bookkeeping tables); the
rows stay in the lake. That keeps the file tiny, rebuildable at any time, and safe to open from any
working directory with a stock DuckDB client (the views use absolute lake paths).

    build_views(path, lake)   apply warehouse/sql/** in one transaction
    ensure_views(path, lake)  the same, only when the lake or the SQL changed (after every sync)
    run_query(path, sql, params, limit=)   one read-only SELECT -> pyarrow.Table
    render(table, fmt, out)   table | csv | json (JSON Lines)
    list_views(path)          names, descriptions and columns, for `query --list`
"""

from __future__ import annotations

from warehouse.build import BuildReport, build_views, ensure_views
from warehouse.query import ViewInfo, list_views, render, run_query

__all__ = ["BuildReport", "ViewInfo", "build_views", "ensure_views", "list_views", "render", "run_query"]
