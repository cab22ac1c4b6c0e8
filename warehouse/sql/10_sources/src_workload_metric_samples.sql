-- One row per stored GPU metric sample of a workload (GET /api/v1/workloads/{id}/metrics):
-- GPU_UTILIZATION (percent), GPU_MEMORY_USAGE_BYTES and GPU_ALLOCATION, each stored once per
-- (workload, metric, labels, sample_time). A sample stands for [sample_time, sample_time + resolution_s).
--
-- The files are the current snapshot of the Delta table (docs/storage.md); build.py substitutes a
-- typed empty relation while no file exists. Columns: transforms/metric_schemas.py.
create or replace view src_workload_metric_samples as

select
    * exclude (filename),
    cast(filename as varchar) as source_file
from read_parquet(
    {{ workload_metric_samples_files }},
    hive_partitioning = false,
    union_by_name = {{ workload_metric_samples_union_by_name }},
    filename = true
)
