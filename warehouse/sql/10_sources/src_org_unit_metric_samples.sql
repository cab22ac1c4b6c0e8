-- One row per stored sample of a project's or department's GPU_QUOTA and GPU_ALLOCATION
-- (GET /api/v1/org-unit/{projects|departments}/{id}/metrics), a closed UTC day at a time.
--
-- The files are the current snapshot of the Delta table (docs/storage.md); build.py substitutes a
-- typed empty relation while no file exists. Columns: transforms/metric_schemas.py.
create or replace view src_org_unit_metric_samples as

select
    * exclude (filename),
    cast(filename as varchar) as source_file
from read_parquet(
    {{ org_unit_metric_samples_files }},
    hive_partitioning = false,
    union_by_name = {{ org_unit_metric_samples_union_by_name }},
    filename = true
)
