-- Records that failed validation, with the reason and the raw payload (never silently dropped).
--
-- Files live at quarantine/stream=<stream>/*.parquet; the stream is also a column in the files
-- (read either way, cast to VARCHAR, as in src_ingest_runs). The glob is a placeholder that build.py replaces with a quoted SQL string
-- literal of the absolute lake location (DDL cannot take prepared parameters). With nothing
-- quarantined yet, build.py substitutes a typed empty relation generated from
-- transforms.schemas.QUARANTINE.
create or replace view src_quarantine as

with source as (
    select *
    from read_parquet(
        {{ quarantine_glob }},
        hive_partitioning = true,
        union_by_name = true,
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
