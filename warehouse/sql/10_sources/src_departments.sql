-- One row per observed version of a department (is_deleted marks a unit seen to disappear).
--
-- The files are the current snapshot of the departments Delta table (docs/storage.md); the date is
-- also inside every row (observed_at), so hive partitioning stays off and the columns are exactly
-- those of transforms/usage_schemas.py (build.py substitutes a typed empty relation while no file
-- exists). Rows may repeat after a crash and rerun; the views above deduplicate them.
create or replace view src_departments as

select
    * exclude (filename),
    cast(filename as varchar) as source_file
from read_parquet(
    {{ departments_files }},
    hive_partitioning = false,
    union_by_name = {{ departments_union_by_name }},
    filename = true
)
