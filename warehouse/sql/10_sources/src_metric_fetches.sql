-- The metrics fetch log: per entity and run, the span read ('fetched') or given up because the
-- control plane no longer had it ('gap'). The furthest window_end of an entity is its cursor.
--
-- The files are the current snapshot of the Delta table (docs/storage.md); build.py substitutes a
-- typed empty relation while no file exists. Columns: transforms/metric_schemas.py.
create or replace view src_metric_fetches as

select
    * exclude (filename),
    cast(filename as varchar) as source_file
from read_parquet(
    {{ metric_fetches_files }},
    hive_partitioning = false,
    union_by_name = {{ metric_fetches_union_by_name }},
    filename = true
)
