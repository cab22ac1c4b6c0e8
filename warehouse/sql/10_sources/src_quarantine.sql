-- Records that failed validation, with the reason and the raw payload (never silently dropped).
--
-- The files are the current snapshot of the quarantine Delta table (lakes migrated from before Delta
-- keep theirs in stream=<stream>/ directories); the stream is also a column in the files
-- (read either way, cast to VARCHAR, as in src_ingest_runs). The file list is a placeholder that build.py replaces with the table's data files as quoted SQL string literals (DDL cannot take prepared parameters). With nothing
-- quarantined yet, build.py substitutes a typed empty relation generated from
-- transforms.schemas.QUARANTINE.
create or replace view src_quarantine as

with source as (
    select *
    from read_parquet(
        {{ quarantine_files }},
        hive_partitioning = true,
        union_by_name = {{ quarantine_union_by_name }},
        filename = true
    )
),

renamed as (
    select
        cast(stream as varchar) as stream,
        cast(run_id as varchar) as run_id,
        cast(window_start as timestamptz) as window_start,
        cast(window_end as timestamptz) as window_end,
        cast(page_offset as bigint) as page_offset,
        cast(record_index as bigint) as record_index,
        cast(reason as varchar) as reason,
        cast(raw as varchar) as raw,
        cast(quarantined_at as timestamptz) as quarantined_at,
        cast(filename as varchar) as source_file
    from source
)

select * from renamed
