-- Every stored audit event, exactly as the lake holds it (one row per Parquet row).
--
-- Why a source view: it is the only place that knows where the files live and how they are laid
-- out (the audit_events Delta table, partitioned audit_events/event_date=YYYY-MM-DD/); everything downstream reads
-- this view. The file list below is a placeholder that build.py replaces with the table's current data
-- files as quoted SQL string literals (DDL cannot take prepared parameters, so this is the one
-- value ever put into the SQL text). While the lake has no audit files yet, build.py replaces
-- this whole view by a typed empty relation generated from transforms.schemas.AUDIT_EVENTS plus
-- the two columns added here, so every downstream view exists from day one.
--
-- The columns mirror AUDIT_EVENTS in order, then event_date (from the directory name) and
-- source_file (which file the row came from, for lineage and duplicate hunting).
create or replace view src_audit_events as

with source as (
    select *
    from read_parquet(
        {{ audit_events_files }},
        hive_partitioning = true,
        hive_types = {'event_date': date},
        union_by_name = {{ audit_events_union_by_name }},
        filename = true
    )
    union all by name
    -- files written before these columns existed
    select cast(null as varchar) as api_flavour, cast(null as map(varchar, varchar)) as extra_fields
    where false
),

renamed as (
    select
        cast(event_id as varchar) as event_id,
        cast(event_time as timestamptz) as event_time,
        cast(tenant_id as varchar) as tenant_id,
        cast(subject as varchar) as subject,
        cast(subject_type as varchar) as subject_type,
        cast(source_ip as varchar) as source_ip,
        cast(action as varchar) as action,
        cast(http_method as varchar) as http_method,
        cast(url as varchar) as url,
        cast(entity_type as varchar) as entity_type,
        cast(entity_name as varchar) as entity_name,
        cast(entity_id as varchar) as entity_id,
        cast(result as varchar) as result,
        cast(http_status_code as integer) as http_status_code,
        cast(cluster_id as varchar) as cluster_id,
        cast(cluster_name as varchar) as cluster_name,
        cast(request_id as varchar) as request_id,
        cast(metadata as map(varchar, varchar)) as metadata,
        cast(event_id_derived as boolean) as event_id_derived,
        -- 'audit_log' or 'k8s_audit' (the 2.18/2.19 legacy API); files from before the column: null
        coalesce(cast(api_flavour as varchar), 'audit_log') as api_flavour,
        cast(extra_fields as map(varchar, varchar)) as extra_fields,
        cast(ingest_run_id as varchar) as ingest_run_id,
        cast(ingested_at as timestamptz) as ingested_at,
        cast(event_date as date) as event_date,
        cast(filename as varchar) as source_file
    from source
)

select * from renamed
