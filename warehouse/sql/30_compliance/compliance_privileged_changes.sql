-- Create/update/delete of anything that grants or shapes access: access rules, roles, users,
-- applications (service accounts), settings, departments, projects and clusters.
--
-- change_category is entity_kind(entity_type), so every spelling of a type ('AccessRule',
-- 'access-rule', 'app', 'service-account', ...) lands in one category. Failed attempts are kept
-- (with succeeded = false): an attempt to change access is itself worth reviewing.
create or replace view compliance_privileged_changes as

with events as (
    select * from audit_events
),

changes as (
    select
        *,
        entity_kind(entity_type) as change_category
    from events
    where lower(action) in ('create', 'update', 'delete')
),

privileged as (
    select *
    from changes
    where change_category in (
        'access_rule', 'role', 'user', 'application', 'setting', 'department', 'project', 'cluster'
    )
),

final as (
    -- Every column of audit_events (whose list is transforms/schemas.py AUDIT_EVENTS, the one
    -- source) but the lineage a reviewer does not need; a column added there shows up here too.
    -- change_category stays beside the event's key columns, where a reviewer reads first.
    select
        event_id,
        event_time,
        event_date,
        change_category,
        * exclude (
            event_id, event_time, event_date, change_category,
            event_id_derived, api_flavour, extra_fields, ingested_at
        ),
        coalesce(lower(result) = 'succeeded' and coalesce(http_status_code < 400, true), false)
            as succeeded
    from privileged
)

select * from final
order by event_time, event_id
