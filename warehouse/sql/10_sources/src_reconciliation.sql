-- One row per recheck record file: how one window's ids in the API compared with the stored ones.
--
-- The files are the current snapshot of the _ops/reconciliation Delta table (lakes migrated from before Delta
-- keep theirs in stream=<stream>/ directories), written by runai_extract/recheck.py.
-- The stream is a column inside the files and also the partition directory; hive_partitioning is
-- on so the view works either way, and the cast keeps it VARCHAR. The file list is a placeholder that
-- build.py replaces with the table's data files as quoted SQL string literals (DDL cannot
-- take prepared parameters). With no reconciliation files yet, build.py substitutes a typed empty
-- relation generated from transforms.schemas.RECONCILIATION.
create or replace view src_reconciliation as

with source as (
    select *
    from read_parquet(
        {{ reconciliation_files }},
        hive_partitioning = true,
        union_by_name = {{ reconciliation_union_by_name }},
        filename = true
    )
),

renamed as (
    select
        cast(run_id as varchar) as run_id,
        cast(stream as varchar) as stream,
        cast(window_start as timestamptz) as window_start,
        cast(window_end as timestamptz) as window_end,
        cast(checked_at as timestamptz) as checked_at,
        cast(api_total as bigint) as api_total,
        cast(api_ids as bigint) as api_ids,
        cast(stored_before as bigint) as stored_before,
        cast(late_rows_added as bigint) as late_rows_added,
        cast(missing_from_api as bigint) as missing_from_api,
        cast(sample_late_ids as varchar[]) as sample_late_ids,
        cast(sample_missing_ids as varchar[]) as sample_missing_ids,
        cast(status as varchar) as status,
        cast(sealed as boolean) as sealed,
        cast(error as varchar) as error,
        cast(filename as varchar) as source_file
    from source
)

select * from renamed
