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
    select
        event_id,
        event_time,
        event_date,
        change_category,
        action,
        entity_type,
        entity_id,
        entity_name,
        tenant_id,
        subject,
        subject_type,
        source_ip,
        http_method,
        url,
        result,
        http_status_code,
        coalesce(lower(result) = 'succeeded' and coalesce(http_status_code < 400, true), false)
            as succeeded,
        cluster_id,
        cluster_name,
        request_id,
        metadata,
        ingest_run_id
    from privileged
)

select * from final
order by event_time, event_id
