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
    -- Every column of audit_events (whose list is transforms/schemas.py AUDIT_EVENTS, the one
    -- source) but the lineage a reviewer does not need; a column added there shows up here too.
    select
        * exclude (event_id_derived, api_flavour, extra_fields, ingested_at),
        case when http_status_code between 100 and 599 then (http_status_code // 100) || 'xx' end
            as http_status_class
    from failed
)

select * from final
order by event_time, event_id
