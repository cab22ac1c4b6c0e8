-- One row per audit event (event_id), typed, in UTC: the table every compliance question starts from.
--
-- The pipeline already drops ids stored in other files, so duplicates should never reach the lake.
-- The QUALIFY below is a safety net for files written by two overlapping runs or restored from a
-- backup: the first ingested copy of an event wins (ties broken by run and file, so the choice is
-- deterministic). event_date is the partition directory's date, which is the UTC date of event_time
-- (the pipeline's slices never cross UTC midnight).
create or replace view audit_events as

with events as (
    select * from src_audit_events
),

deduplicated as (
    select *
    from events
    qualify row_number() over (
        partition by event_id
        order by ingested_at, ingest_run_id, source_file
    ) = 1
),

final as (
    select
        event_id,
        event_time,
        event_date,
        tenant_id,
        subject,
        subject_type,
        source_ip,
        action,
        http_method,
        url,
        entity_type,
        entity_name,
        entity_id,
        result,
        http_status_code,
        cluster_id,
        cluster_name,
        request_id,
        metadata,
        event_id_derived,
        ingest_run_id,
        ingested_at
    from deduplicated
)

select * from final
