-- One row per run record file: what each run saw and stored for one window (slice).
--
-- The files are the current snapshot of the _ops/ingest_runs Delta table (lakes migrated from before Delta
-- keep theirs in stream=<stream>/ directories). The stream is a column inside the files
-- and also the partition directory; hive_partitioning is on so the view works whether or not a
-- writer keeps the column in the file, and the cast keeps it VARCHAR either way. The file list is a placeholder that build.py replaces with the table's data files as quoted SQL string literals (DDL cannot take prepared parameters). With no run
-- files yet, build.py substitutes a typed empty relation generated from transforms.schemas.INGEST_RUNS.
-- Columns added later (api_query, id_set_digest, api_features, deprecations) are nullable: the empty select unioned by name
-- below supplies them as NULL while every file on disk predates them.
create or replace view src_ingest_runs as

with source as (
    select *
    from read_parquet(
        {{ ingest_runs_files }},
        hive_partitioning = true,
        union_by_name = {{ ingest_runs_union_by_name }},
        filename = true
    )
    union all by name
    select
        cast(null as varchar) as api_query,
        cast(null as varchar) as id_set_digest,
        cast(null as varchar) as api_features,
        cast(null as varchar[]) as deprecations
    where false
),

renamed as (
    select
        cast(run_id as varchar) as run_id,
        cast(stream as varchar) as stream,
        cast(mode as varchar) as mode,
        cast(window_start as timestamptz) as window_start,
        cast(window_end as timestamptz) as window_end,
        cast(status as varchar) as status,
        cast(pages as bigint) as pages,
        cast(requests as bigint) as requests,
        cast(rows_received as bigint) as rows_received,
        cast(rows_written as bigint) as rows_written,
        cast(rows_new as bigint) as rows_new,
        cast(duplicates_dropped as bigint) as duplicates_dropped,
        cast(out_of_window as bigint) as out_of_window,
        cast(quarantined as bigint) as quarantined,
        cast(retries as bigint) as retries,
        cast(throttled_429 as bigint) as throttled_429,
        cast(token_refreshes as bigint) as token_refreshes,
        cast(api_total as bigint) as api_total,
        cast(total_mismatch as boolean) as total_mismatch,
        cast(repaged as boolean) as repaged,
        cast(drift_fields as map(varchar, bigint)) as drift_fields,
        cast(api_query as varchar) as api_query,
        cast(id_set_digest as varchar) as id_set_digest,
        cast(api_features as varchar) as api_features,
        cast(deprecations as varchar[]) as deprecations,
        cast(files as varchar[]) as files,
        cast(error as varchar) as error,
        cast(started_at as timestamptz) as started_at,
        cast(finished_at as timestamptz) as finished_at,
        cast(duration_s as double) as duration_s,
        cast(schema_version as integer) as schema_version,
        cast(code_version as varchar) as code_version,
        cast(filename as varchar) as source_file
    from source
)

select * from renamed
