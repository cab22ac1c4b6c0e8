"""The DuckDB side of runai-ledger: SQL views over the lake's Parquet files, and read-only queries.

The warehouse file holds definitions only (views, two macros, two small bookkeeping tables); the
rows stay in the lake. That keeps the file tiny, rebuildable at any time, and safe to open from any
working directory with a stock DuckDB client (the views use absolute lake paths).

    warehouse.build:  build_views(path, lake) applies warehouse/sql/** in one transaction;
                      ensure_views(path, lake) only when the lake or the SQL changed
    warehouse.query:  run_query(path, sql, params, limit=) -> pyarrow.Table; fetch_rows (plain
                      rows, no pyarrow); render / render_rows: table | csv | json (JSON Lines);
                      list_views(path) for `query --list`

Import from the modules: this package re-exports nothing, so `runai-ledger query` does not pay
for the build's imports (pyarrow, the lake) on every call.
"""
