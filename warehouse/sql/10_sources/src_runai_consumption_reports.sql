-- Run:ai's own consumption reports (POST /api/v1/org-unit/reports), one row per CSV row, as
-- `runai-ledger crosscheck usage` stored them.
--
-- The files are the current snapshot of the Delta table (docs/storage.md); build.py substitutes a
-- typed empty relation while no file exists. Columns: transforms/metric_schemas.py.
create or replace view src_runai_consumption_reports as

select
    * exclude (filename),
    cast(filename as varchar) as source_file
from read_parquet(
    {{ runai_consumption_reports_files }},
    hive_partitioning = false,
    union_by_name = {{ runai_consumption_reports_union_by_name }},
    filename = true
)
