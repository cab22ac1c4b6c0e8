-- Every action that failed: the API said 'Failed', or answered with an HTTP error status (>= 400).
--
-- Both signals are kept because they disagree in practice: a request can be logged 'Succeeded' with
-- a 5xx from a downstream cluster, or 'Failed' with no status at all. http_status_class groups the
-- status codes ('4xx' is usually a permission or input problem, '5xx' a platform one).
create or replace view compliance_failed_actions as

with events as (
    select * from audit_events
),

failed as (
    select *
    from events
    where lower(result) = 'failed' or http_status_code >= 400
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
        case when http_status_code between 100 and 599 then (http_status_code // 100) || 'xx' end
            as http_status_class,
        cluster_id,
        cluster_name,
        request_id,
        metadata,
        ingest_run_id
    from failed
)

select * from final
order by event_time, event_id
